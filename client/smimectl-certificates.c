/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <inttypes.h>

#include "format-util.h"
#include "json-writer.h"
#include "macro.h"
#include "parse-util.h"
#include "smimectl.h"
#include "terminal-util.h"

#define FINGERPRINT_LENGTH 64
#define FINGERPRINT_PREFIX_MIN 8
#define LIST_FINGERPRINT_DIGITS 16

typedef struct CertificateList {
        smimed_certificate *items;
        char **revocations; /* for show: each one's Revocation property, else NULL */
        size_t n;
} CertificateList;

static void certificate_list_done(CertificateList *l) {
        for (size_t i = 0; i < l->n; i++) {
                smimed_certificate_done(&l->items[i]);
                if (l->revocations)
                        free(l->revocations[i]);
        }
        free(l->items);
        free(l->revocations);
        *l = (CertificateList) {};
}

static bool is_unknown_object(const smimed_error *error) {
        return error->name && streq(error->name, "org.freedesktop.DBus.Error.UnknownObject");
}

/* Reads the certificates of fingerprints. One removed since the lookup is
 * left out; any other failure is reported (returns 1). */
static int certificate_list_read(smimed *s, char **fingerprints, bool with_revocation, CertificateList *ret) {
        for (char **f = fingerprints; *f; f++) {
                _cleanup_(smimed_certificate_done) smimed_certificate c = {};
                _cleanup_(smimed_error_done) smimed_error error = {};
                _cleanup_free_ char *revocation = NULL;
                smimed_certificate *grown;
                int r;

                r = smimed_get_certificate(s, *f, &c, &error);
                if (r >= 0 && with_revocation)
                        r = smimed_get_certificate_revocation(s, *f, &revocation, &error);
                if (r < 0 && is_unknown_object(&error))
                        continue;
                if (r < 0)
                        return report_error(r, &error, "Cannot read certificate %s", *f);

                if (with_revocation) {
                        char **more = reallocarray(ret->revocations, ret->n + 1, sizeof(char *));

                        if (!more)
                                return fail("%s", strerror(ENOMEM));
                        ret->revocations = more;
                        ret->revocations[ret->n] = TAKE_PTR(revocation);
                }
                grown = reallocarray(ret->items, ret->n + 1, sizeof(smimed_certificate));
                if (!grown)
                        return fail("%s", strerror(ENOMEM));
                ret->items = grown;
                ret->items[ret->n++] = c;
                c = (smimed_certificate) {};
        }
        return 0;
}

static void json_key_time(JsonWriter *w, const char *key, uint64_t usec) {
        char buf[FORMAT_TIME_MAX];

        json_key_string(w, key, format_iso8601(buf, usec));
}

/* revocation: for show (NULL leaves it out); "" when no answer was had. */
static void json_certificate(JsonWriter *w, const smimed_certificate *c, bool with_chain, const char *revocation) {
        json_begin_object(w);
        json_key_string(w, "fingerprint", c->fingerprint);
        json_key_string(w, "subject", c->subject);
        json_key_string(w, "issuer", c->issuer);
        json_key_string(w, "common_name", c->common_name);
        json_key_string(w, "serial", c->serial);
        json_key_strv(w, "addresses", c->addresses);
        json_key_time(w, "not_before", c->not_before);
        json_key_time(w, "not_after", c->not_after);
        json_key_string(w, "key_algorithm", c->key_algorithm);
        json_key_uint(w, "key_bits", c->key_bits);
        json_key_bool(w, "is_ca", c->is_ca);
        json_key_bool(w, "trusted", c->trusted);
        json_key_bool(w, "has_private_key", c->has_private_key);
        json_key_string(w, "status", c->status);
        json_key_string(w, "status_text", c->status_text);
        if (revocation)
                json_key_string(w, "revocation", revocation[0] ? revocation : NULL);
        json_key_bool(w, "can_sign", c->can_sign);
        json_key_bool(w, "can_encrypt", c->can_encrypt);
        json_key_string(w, "summary", c->summary);
        if (with_chain) {
                json_key(w, "chain");
                json_begin_array(w);
                for (size_t i = 0; i < c->n_chain; i++) {
                        json_begin_object(w);
                        json_key_string(w, "fingerprint", c->chain[i].fingerprint);
                        json_key_string(w, "subject", c->chain[i].subject);
                        json_end_object(w);
                }
                json_end_array(w);
        }
        json_end_object(w);
}

static void json_certificates(const CertificateList *l, bool with_chain) {
        _cleanup_(json_writer_done) JsonWriter w = {.f = stdout, .pretty = arg_json_pretty};

        json_begin_array(&w);
        for (size_t i = 0; i < l->n; i++)
                json_certificate(&w, &l->items[i], with_chain, l->revocations ? l->revocations[i] : NULL);
        json_end_array(&w);
}

static void print_joined(char *const *l, const char *separator) {
        for (char *const *s = l; s && *s; s++) {
                if (s != l)
                        fputs(separator, stdout);
                print_text(stdout, *s);
        }
}

static void print_table(const CertificateList *l) {
        size_t status_width = strlen("STATUS"), fingerprint_width = strlen("FINGERPRINT");

        for (size_t i = 0; i < l->n; i++) {
                status_width = MAX(status_width, text_width(l->items[i].status));
                fingerprint_width = MAX(fingerprint_width,
                                        identifier_width(stdout, l->items[i].fingerprint, LIST_FINGERPRINT_DIGITS));
        }

        if (arg_legend)
                printf("%-*s  %-*s  %-6s  %-3s  %-10s  %s\n", (int) fingerprint_width, "FINGERPRINT",
                       (int) status_width, "STATUS", "TRUST", "KEY", "EXPIRES", "ADDRESSES");
        for (size_t i = 0; i < l->n; i++) {
                const smimed_certificate *c = &l->items[i];
                char buf[FORMAT_TIME_MAX];
                const char *expires = format_date(buf, c->not_after);

                print_identifier(stdout, c->fingerprint, LIST_FINGERPRINT_DIGITS, fingerprint_width);
                fputs("  ", stdout);
                fputs(color_on(stdout, status_color(c->status)), stdout);
                print_padded(stdout, c->status ? c->status : "-", status_width);
                fputs(color_off(stdout), stdout);
                printf("  %-6s  %-3s  %-10s  ", c->trusted ? "anchor" : "-", c->has_private_key ? "yes" : "-",
                       expires ? expires : "-");
                if (c->addresses && c->addresses[0])
                        print_joined(c->addresses, ",");
                else
                        print_text(stdout, c->subject);
                putchar('\n');
        }
}

/* A row as the table prints it. */
static int certificate_from_row(const smimed_certificate_row *row, smimed_certificate *ret) {
        *ret = (smimed_certificate){
                .fingerprint = strdup(row->fingerprint),
                .subject = strdup(row->subject),
                .status = strdup(row->status),
                .not_after = row->not_after,
                .trusted = row->trusted,
                .is_ca = row->is_ca,
                .has_private_key = row->has_private_key,
        };
        if (!ret->fingerprint || !ret->subject || !ret->status)
                return -ENOMEM;
        for (char **a = row->addresses; a && *a; a++) {
                char **more = reallocarray(ret->addresses, (size_t) (a - row->addresses) + 2, sizeof(char *));

                if (!more)
                        return -ENOMEM;
                ret->addresses = more;
                more[a - row->addresses] = strdup(*a);
                more[a - row->addresses + 1] = NULL;
                if (!more[a - row->addresses])
                        return -ENOMEM;
        }
        return 0;
}

static void list_filter_freep(smimed_list_filter **f) {
        smimed_list_filter_free(*f);
}

static void rows_freep(smimed_certificate_row ***rows) {
        smimed_certificate_rows_free(*rows);
}

static int list_filter_new(smimed_list_filter **ret) {
        smimed_list_filter *f = smimed_list_filter_new();
        int r = f ? 0 : -ENOMEM;

        if (r >= 0 && arg_address && arg_address[0])
                r = smimed_list_filter_set_address(f, arg_address);
        if (r >= 0 && arg_status)
                r = smimed_list_filter_set_status(f, arg_status);
        if (r >= 0 && arg_expiring_days >= 0)
                r = smimed_list_filter_set_expiring_before(
                        f, (uint64_t) time(NULL) * 1000000ULL + (uint64_t) arg_expiring_days * 86400ULL * 1000000ULL);
        if (r < 0) {
                smimed_list_filter_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

/* ListCertificates: the page --offset/--limit ask for, or without --limit
 * every page. Rows go into l (as fingerprints only with want_fingerprints,
 * for --json, which shows every property). */
int verb_list(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(certificate_list_done) CertificateList l = {};
        _cleanup_(list_filter_freep) smimed_list_filter *f = NULL;
        _cleanup_(smimed_strv_freep) char **fingerprints = NULL;
        uint64_t offset = arg_offset, total = 0;
        size_t n = 0;
        int r;

        (void) argc, (void) argv;

        if (list_filter_new(&f) < 0)
                return fail("%s", strerror(ENOMEM));
        for (;;) {
                _cleanup_(rows_freep) smimed_certificate_row **rows = NULL;
                size_t got = 0;

                smimed_list_filter_set_offset(f, offset);
                smimed_list_filter_set_limit(f, arg_limit > 0 ? arg_limit : 1000);
                r = smimed_list_certificates(s, f, &rows, &total, &error);
                if (r < 0)
                        return report_error(r, &error, "Cannot list the certificates");
                for (smimed_certificate_row **row = rows; *row; row++, got++) {
                        smimed_certificate *grown;

                        if (arg_json) {
                                char **more = reallocarray(fingerprints, n + 2, sizeof(char *));

                                if (!more)
                                        return fail("%s", strerror(ENOMEM));
                                fingerprints = more;
                                fingerprints[n + 1] = NULL;
                                fingerprints[n] = strdup((*row)->fingerprint);
                                if (!fingerprints[n])
                                        return fail("%s", strerror(ENOMEM));
                                n++;
                                continue;
                        }
                        grown = reallocarray(l.items, l.n + 1, sizeof(smimed_certificate));
                        if (!grown)
                                return fail("%s", strerror(ENOMEM));
                        l.items = grown;
                        r = certificate_from_row(*row, &l.items[l.n]);
                        l.n++;
                        if (r < 0)
                                return fail("%s", strerror(ENOMEM));
                }
                offset += got;
                if (arg_limit > 0 || got == 0 || offset >= total)
                        break;
        }

        if (arg_json) {
                if (fingerprints) {
                        r = certificate_list_read(s, fingerprints, false, &l);
                        if (r != 0)
                                return r;
                }
                json_certificates(&l, false);
        } else
                print_table(&l);
        if ((arg_limit > 0 || arg_offset > 0) && arg_legend) {
                size_t shown = arg_json ? n : l.n;

                /* A page: how far through the whole it is. Not in the JSON. */
                fprintf(arg_json ? stderr : stdout, "%zu of %" PRIu64 "%s\n", shown, total,
                        shown > 0 ? "" : " (nothing on this page)");
        }
        return 0;
}

#define LABEL_WIDTH 11 /* "Fingerprint", "Valid until", "Private key", "Can encrypt" */

static void print_label(const char *label) {
        printf("%*s: ", LABEL_WIDTH, label);
}

static void print_field(const char *label, const char *value) {
        print_label(label);
        print_text(stdout, value);
        putchar('\n');
}

static void print_time_field(const char *label, uint64_t usec) {
        char buf[FORMAT_TIME_MAX];
        const char *t = format_datetime(buf, usec);

        print_field(label, t ? t : "-");
}

static void print_certificate(const smimed_certificate *c, const char *revocation) {
        print_field("Fingerprint", c->fingerprint);
        print_field("Subject", c->subject);
        print_field("Issuer", c->issuer);
        print_field("Serial", c->serial);
        print_label("Addresses");
        if (c->addresses && c->addresses[0])
                print_joined(c->addresses, ", ");
        else
                putchar('-');
        putchar('\n');
        print_time_field("Valid from", c->not_before);
        print_time_field("Valid until", c->not_after);
        print_label("Key");
        print_text(stdout, c->key_algorithm);
        if (c->key_bits > 0)
                printf(" %u", c->key_bits);
        putchar('\n');
        print_field("CA", c->is_ca ? "yes" : "no");
        print_field("Trusted", c->trusted ? "yes" : "no");
        print_field("Private key", c->has_private_key ? "in token" : "no");
        print_label("Status");
        fputs(color_on(stdout, status_color(c->status)), stdout);
        print_text(stdout, c->status);
        fputs(color_off(stdout), stdout);
        /* A valid certificate's text matters when it says revocation was not checked. */
        if (c->status && c->status_text && c->status_text[0] &&
            (!streq(c->status, "valid") || strstr(c->status_text, "Revocation was not checked"))) {
                fputs(glyph(stdout, GLYPH_DASH), stdout);
                print_text(stdout, c->status_text);
        }
        putchar('\n');
        print_field("Revocation", revocation && revocation[0] ? revocation : "not checked");
        print_field("Can sign", c->can_sign ? "yes" : "no");
        print_field("Can encrypt", c->can_encrypt ? "yes" : "no");
        puts("Chain:");
        for (size_t i = 0; i < c->n_chain; i++) {
                fputs("  ", stdout);
                print_text(stdout, c->chain[i].fingerprint);
                fputs("  ", stdout);
                print_text(stdout, c->chain[i].subject);
                putchar('\n');
        }
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && streq(s + n - m, suffix);
}

int fingerprint_resolve(smimed *s, const char *arg, bool or_address, char **ret) {
        _cleanup_(smimed_strv_freep) char **fingerprints = NULL;
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_free_ char *hex = NULL;
        const char *match = NULL;
        size_t n, count = 0;
        int r;

        /* What list prints ("3fa21bc4d5e6f708…") is cut short: said as such,
         * not as "not a fingerprint". */
        if (ends_with(arg, "…") || ends_with(arg, "..."))
                return fail("\"%s\" is cut short (as list prints it): give the whole fingerprint, or its digits "
                            "without the dots.",
                            arg);
        r = parse_hex_id(arg, FINGERPRINT_LENGTH, &hex);
        if (r == -ENOMEM)
                return fail("%s", strerror(ENOMEM));
        n = r < 0 ? 0 : strlen(hex);
        if (n < FINGERPRINT_PREFIX_MIN)
                return fail("\"%s\" is not a fingerprint (64 hexadecimal digits, or a unique prefix of at least %d)%s.",
                            arg, FINGERPRINT_PREFIX_MIN, or_address ? " nor a mail address" : "");
        if (n == FINGERPRINT_LENGTH) {
                *ret = TAKE_PTR(hex);
                return 0;
        }

        r = smimed_lookup_certificates(s, "", NULL, false, &fingerprints, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot look up fingerprint %s", arg);
        for (char **f = fingerprints; *f; f++)
                if (strncmp(*f, hex, n) == 0) {
                        match = *f;
                        count++;
                }
        if (count == 0)
                return fail("No certificate has a fingerprint that starts with %s.", arg);
        if (count > 1)
                return fail("%s is ambiguous: %zu certificates have fingerprints that start with it; give more digits.",
                            arg, count);

        *ret = strdup(match);
        if (!*ret)
                return fail("%s", strerror(ENOMEM));
        return 0;
}

bool is_address(const char *arg) {
        return strchr(arg, '@');
}

int certificates_resolve(smimed *s, const char *arg, char ***ret) {
        _cleanup_(smimed_strv_freep) char **fingerprints = NULL;
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_free_ char *fingerprint = NULL;
        int r;

        if (!is_address(arg)) {
                r = fingerprint_resolve(s, arg, true, &fingerprint);
                if (r != 0)
                        return r;
                fingerprints = calloc(2, sizeof(char *));
                if (!fingerprints)
                        return fail("%s", strerror(ENOMEM));
                fingerprints[0] = TAKE_PTR(fingerprint);
                *ret = TAKE_PTR(fingerprints);
                return 0;
        }

        r = smimed_lookup_certificates(s, arg, NULL, false, &fingerprints, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot look up the certificates of %s", arg);
        if (!fingerprints[0])
                return fail("no certificate for %s", arg);
        *ret = TAKE_PTR(fingerprints);
        return 0;
}

static int show_fingerprint(smimed *s, const char *fingerprint) {
        _cleanup_(smimed_certificate_done) smimed_certificate c = {};
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_free_ char *revocation = NULL;
        int r;

        r = smimed_get_certificate(s, fingerprint, &c, &error);
        if (r >= 0)
                r = smimed_get_certificate_revocation(s, fingerprint, &revocation, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot show certificate %s", fingerprint);

        if (arg_json) {
                _cleanup_(json_writer_done) JsonWriter w = {.f = stdout, .pretty = arg_json_pretty};

                json_certificate(&w, &c, true, revocation);
        } else
                print_certificate(&c, revocation);
        return 0;
}

static int show_address(smimed *s, const char *address, char **fingerprints) {
        _cleanup_(certificate_list_done) CertificateList l = {};
        int r;

        r = certificate_list_read(s, fingerprints, true, &l);
        if (r != 0)
                return r;
        if (l.n == 0) /* removed since the lookup */
                return fail("no certificate for %s", address);

        if (arg_json)
                json_certificates(&l, true);
        else
                for (size_t i = 0; i < l.n; i++) {
                        if (i > 0)
                                putchar('\n');
                        print_certificate(&l.items[i], l.revocations ? l.revocations[i] : NULL);
                }
        return 0;
}

int verb_show(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_strv_freep) char **fingerprints = NULL;
        int r;

        (void) argc;

        r = certificates_resolve(s, argv[0], &fingerprints);
        if (r != 0)
                return r;
        return is_address(argv[0]) ? show_address(s, argv[0], fingerprints) : show_fingerprint(s, fingerprints[0]);
}

int verb_remove(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_free_ char *fingerprint = NULL;
        int r;

        (void) argc;

        r = fingerprint_resolve(s, argv[0], false, &fingerprint);
        if (r != 0)
                return r;
        r = smimed_remove_certificate(s, fingerprint, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot remove certificate %s", fingerprint);
        return 0;
}

static int set_trusted(smimed *s, const char *arg, bool trusted) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_free_ char *fingerprint = NULL;
        int r;

        r = fingerprint_resolve(s, arg, false, &fingerprint);
        if (r != 0)
                return r;
        r = smimed_set_certificate_trusted(s, fingerprint, trusted, &error);
        if (r < 0)
                return report_error(r, &error, trusted ? "Cannot make %s a trust anchor" : "Cannot untrust %s",
                                    fingerprint);
        printf("%s is %s a trust anchor\n", fingerprint, trusted ? "now" : "no longer");
        return 0;
}

int verb_trust(smimed *s, int argc, char *argv[]) {
        (void) argc;

        return set_trusted(s, argv[0], true);
}

int verb_untrust(smimed *s, int argc, char *argv[]) {
        (void) argc;

        return set_trusted(s, argv[0], false);
}
