/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "format-util.h"
#include "json-writer.h"
#include "io-util.h"
#include "macro.h"
#include "output-file.h"
#include "parse-util.h"
#include "passphrase.h"
#include "smimectl.h"
#include "strv.h"

#define KEY_ID_PREFIX_MIN 8
#define LIST_KEY_ID_DIGITS 16

typedef struct KeyList {
        smimed_key *items;
        size_t n;
} KeyList;

static void key_list_done(KeyList *l) {
        smimed_keys_free(l->items, l->n);
        *l = (KeyList) {};
}

static int key_list_read(smimed *s, KeyList *ret) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        int r;

        r = smimed_list_keys(s, &ret->items, &ret->n, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot list the keys");
        return 0;
}

static void json_keys(const KeyList *l) {
        _cleanup_(json_writer_done) JsonWriter w = {.f = stdout, .pretty = arg_json_pretty};

        json_begin_array(&w);
        for (size_t i = 0; i < l->n; i++) {
                const smimed_key *k = &l->items[i];

                json_begin_object(&w);
                json_key_string(&w, "id", k->id);
                json_key_string(&w, "label", k->label);
                json_key_string(&w, "algorithm", k->algorithm);
                json_key_uint(&w, "bits", k->bits);
                json_key_string(&w, "uri", k->uri);
                json_key_strv(&w, "certificates", k->certificates);
                json_end_object(&w);
        }
        json_end_array(&w);
}

/* "rsa 2048"; just "rsa" when the size is not known. */
static char *key_algorithm(const smimed_key *k) {
        char *s = NULL;

        if (k->bits > 0 ? asprintf(&s, "%s %u", k->algorithm ? k->algorithm : "-", k->bits) < 0
                        : asprintf(&s, "%s", k->algorithm ? k->algorithm : "-") < 0)
                return NULL;
        return s;
}

static size_t max_size(size_t a, size_t b) {
        return a > b ? a : b;
}

static int print_table(const KeyList *l) {
        size_t w_id = strlen("ID"), w_algorithm = strlen("ALGORITHM"), w_label = strlen("LABEL");
        char **algorithms = calloc(l->n + 1, sizeof(char *));

        if (!algorithms)
                return fail("%s", strerror(ENOMEM));
        for (size_t i = 0; i < l->n; i++) {
                algorithms[i] = key_algorithm(&l->items[i]);
                if (!algorithms[i]) {
                        smimed_strv_free(algorithms);
                        return fail("%s", strerror(ENOMEM));
                }
                w_id = max_size(w_id, identifier_width(stdout, l->items[i].id, LIST_KEY_ID_DIGITS));
                w_algorithm = max_size(w_algorithm, text_width(algorithms[i]));
                w_label = max_size(w_label, text_width(l->items[i].label));
        }

        if (arg_legend)
                printf("%-*s  %-*s  %-*s  %s\n", (int) w_id, "ID", (int) w_algorithm, "ALGORITHM", (int) w_label,
                       "LABEL", "CERTIFICATES");
        for (size_t i = 0; i < l->n; i++) {
                const smimed_key *k = &l->items[i];

                print_identifier(stdout, k->id, LIST_KEY_ID_DIGITS, w_id);
                fputs("  ", stdout);
                print_padded(stdout, algorithms[i], w_algorithm);
                fputs("  ", stdout);
                print_padded(stdout, k->label && k->label[0] ? k->label : "-", w_label);
                printf("  %zu\n", strv_length(k->certificates));
        }
        smimed_strv_free(algorithms);
        return 0;
}

int verb_keys(smimed *s, int argc, char *argv[]) {
        _cleanup_(key_list_done) KeyList l = {};
        int r;

        (void) argc, (void) argv;

        r = key_list_read(s, &l);
        if (r != 0)
                return r;
        if (arg_json) {
                json_keys(&l);
                return 0;
        }
        return print_table(&l);
}

static const char *passphrase_strerror(int r) {
        static char too_long[64];

        if (r == -E2BIG) {
                snprintf(too_long, sizeof(too_long), "it is longer than %d bytes", PASSPHRASE_MAX);
                return too_long;
        }
        if (r == -EBADMSG)
                return "it contains a NUL byte";
        if (r == -ENODATA)
                return "it is empty (give the passphrase on its first line, an empty line for none, or use "
                       "--passphrase-file)";
        return strerror(-r);
}

/* From --passphrase-file, else the terminal, else the first line of stdin.
 * Returns 0, or the exit status after saying why. */
static int get_passphrase(const char *file, char **ret) {
        _cleanup_free_ char *prompt = NULL;
        int r;

        if (arg_passphrase_file) {
                r = passphrase_from_file(arg_passphrase_file, ret);
                if (r < 0)
                        return fail("Cannot read the passphrase from %s: %s", arg_passphrase_file,
                                    passphrase_strerror(r));
                return 0;
        }
        if (isatty(STDIN_FILENO)) {
                if (asprintf(&prompt, "Passphrase for %s: ", file) < 0)
                        return fail("%s", strerror(ENOMEM));
                r = passphrase_prompt(prompt, ret);
                if (r < 0)
                        return fail("Cannot ask for the passphrase on the terminal: %s", passphrase_strerror(r));
                return 0;
        }
        r = passphrase_from_stdin(ret);
        if (r < 0)
                return fail("Cannot read the passphrase from standard input: %s", passphrase_strerror(r));
        return 0;
}

int verb_import_key(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_strv_freep) char **fingerprints = NULL;
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_(erase_and_freep) char *passphrase = NULL;
        _cleanup_(closep) int opened = -1;
        _cleanup_free_ char *id = NULL;
        const char *file = argv[0], *name = file;
        struct stat st;
        int fd, r;

        (void) argc;

        if (streq(file, "-")) {
                /* stdin is the file, so it cannot also be where the passphrase comes from */
                if (!arg_passphrase_file) {
                        fprintf(stderr, "smimectl: import-key - reads the PKCS#12 file from standard input; "
                                        "give the passphrase with --passphrase-file.\n");
                        return 2;
                }
                if (isatty(STDIN_FILENO)) {
                        fprintf(stderr, "smimectl: import-key - reads the PKCS#12 file from standard input, which is a "
                                        "terminal; name a file or use a pipe.\n");
                        return 2;
                }
                fd = STDIN_FILENO;
                name = "standard input";
        } else {
                fd = opened = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return fail("Cannot open %s: %s", file, strerror(errno));
        }
        if (fstat(fd, &st) < 0)
                return fail("Cannot read %s: %s", name, strerror(errno));
        if (S_ISDIR(st.st_mode))
                return fail("Cannot read %s: %s", name, strerror(EISDIR));

        r = get_passphrase(name, &passphrase);
        if (r != 0)
                return r;

        r = smimed_import_pkcs12_fd(s, fd, passphrase, &id, &fingerprints, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot import %s", name);

        printf("Enrolled key %s\n", id);
        return print_imported(s, fingerprints);
}

/* Opens (or creates, 0644) the output before the key is made, so that an
 * unwritable path costs no key; an existing file is truncated only later. */
static int output_open(const char *path, bool *ret_created) {
        int fd;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd >= 0) {
                *ret_created = true;
                return fd;
        }
        if (errno != EEXIST)
                return -errno;
        *ret_created = false;
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        return fd >= 0 ? fd : -errno;
}

static int output_write(int fd, const char *csr) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode) && ftruncate(fd, 0) < 0)
                return -errno;
        return fd_write_all(fd, csr, strlen(csr));
}

/* GenerateKey, plain (renew NULL) or renewing a certificate; the request
 * to -o FILE (opened first, so that a key is not made for nothing) or
 * stdout, "Generated key ID" on stderr. */
static int generate_key_and_request(smimed *s, const char *address, const char *renew) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_free_ char *id = NULL, *csr = NULL;
        _cleanup_(closep) int fd = -1;
        bool to_file = arg_output && !streq(arg_output, "-"), created = false;
        int r;

        if (to_file) {
                fd = output_open(arg_output, &created);
                if (fd < 0)
                        return fail("Cannot open %s: %s", arg_output, strerror(-fd));
        }

        r = renew ? smimed_renew_key(s, address, renew, arg_key_type, &id, &csr, &error)
                  : smimed_generate_key(s, address, arg_key_type, arg_subject, &id, &csr, &error);
        if (r < 0) {
                if (created)
                        (void) unlink(arg_output);
                return renew ? report_error(r, &error, "Cannot renew certificate %s of %s", renew, address)
                             : report_error(r, &error, "Cannot generate a key for %s", address);
        }

        /* stderr: stdout is the request */
        fprintf(stderr, "Generated key %s\n", id);
        if (renew)
                fprintf(stderr,
                        "Have your CA issue the certificate for the request and import it: signing as %s uses it "
                        "then. The old key stays for decrypting mail sent to %s.\n",
                        address, renew);

        if (!to_file) {
                fputs(csr, stdout);
                return 0;
        }
        r = output_write(fd, csr);
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r < 0)
                return fail("Key %s is in the token, but its request cannot be written to %s: %s", id, arg_output,
                            strerror(-r));
        return 0;
}

int verb_generate_key(smimed *s, int argc, char *argv[]) {
        (void) argc;

        return generate_key_and_request(s, argv[0], NULL);
}

/* The certificate of address that renewal starts from: the newest whose
 * key is in the token. Returns 0, or the exit status after saying why. */
static int current_certificate(smimed *s, const char *address, char **ret_fingerprint) {
        _cleanup_(smimed_strv_freep) char **fingerprints = NULL;
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_free_ char *best = NULL;
        uint64_t best_not_before = 0;
        int r;

        r = smimed_lookup_certificates(s, address, NULL, false, &fingerprints, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot look up the certificates of %s", address);
        for (char **f = fingerprints; f && *f; f++) {
                _cleanup_(smimed_certificate_done) smimed_certificate c = {};

                smimed_error_done(&error);
                r = smimed_get_certificate(s, *f, &c, &error);
                if (r < 0)
                        return report_error(r, &error, "Cannot read certificate %s", *f);
                if (!c.has_private_key || (best && c.not_before <= best_not_before))
                        continue;
                free(best);
                best = strdup(*f);
                if (!best)
                        return fail("%s", strerror(ENOMEM));
                best_not_before = c.not_before;
        }
        if (!best)
                return fail("No certificate of %s has its key in the token: there is nothing to renew "
                            "(smimectl generate-key makes a first key).",
                            address);
        *ret_fingerprint = TAKE_PTR(best);
        return 0;
}

int verb_renew(smimed *s, int argc, char *argv[]) {
        _cleanup_free_ char *fingerprint = NULL;
        int r;

        (void) argc;

        r = current_certificate(s, argv[0], &fingerprint);
        if (r != 0)
                return r;
        return generate_key_and_request(s, argv[0], fingerprint);
}

/* Resolves a full key id or a unique prefix of at least KEY_ID_PREFIX_MIN
 * digits. Returns 0, or the exit status after saying why. */
static int key_id_resolve(smimed *s, const char *arg, char **ret) {
        _cleanup_(key_list_done) KeyList l = {};
        _cleanup_free_ char *hex = NULL;
        const char *match = NULL;
        size_t n, count = 0;
        int r;

        r = parse_hex_id(arg, SIZE_MAX, &hex);
        if (r == -ENOMEM)
                return fail("%s", strerror(ENOMEM));
        if (r < 0)
                return fail("\"%s\" is not a key id (hexadecimal digits, as smimectl keys shows them).", arg);
        n = strlen(hex);

        r = key_list_read(s, &l);
        if (r != 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                if (streq(l.items[i].id, hex)) { /* a whole id wins, whatever its length */
                        match = l.items[i].id;
                        count = 1;
                        break;
                }
                if (n >= KEY_ID_PREFIX_MIN && strncmp(l.items[i].id, hex, n) == 0) {
                        match = l.items[i].id;
                        count++;
                }
        }
        if (count == 0)
                return n >= KEY_ID_PREFIX_MIN
                               ? fail("No key in the token has an id that starts with %s.", arg)
                               : fail("No key in the token has the id %s (a prefix needs at least %d digits).", arg,
                                      KEY_ID_PREFIX_MIN);
        if (count > 1)
                return fail("%s is ambiguous: %zu keys have ids that start with it; give more digits.", arg, count);

        *ret = strdup(match);
        if (!*ret)
                return fail("%s", strerror(ENOMEM));
        return 0;
}

/* A key whose certificate is current is the only one that can decrypt
 * mail sent to that certificate: refused without --force. Returns 0, or
 * the exit status after saying why. */
static int refuse_if_only_key(smimed *s, const char *id) {
        _cleanup_(key_list_done) KeyList l = {};
        uint64_t now = (uint64_t) time(NULL) * 1000000ULL;
        int r;

        r = key_list_read(s, &l);
        if (r != 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                if (!streq(l.items[i].id, id))
                        continue;
                for (char **f = l.items[i].certificates; f && *f; f++) {
                        _cleanup_(smimed_certificate_done) smimed_certificate c = {};
                        _cleanup_(smimed_error_done) smimed_error error = {};
                        char buf[FORMAT_TIME_MAX];

                        r = smimed_get_certificate(s, *f, &c, &error);
                        if (r < 0)
                                return report_error(r, &error, "Cannot read certificate %s of key %s", *f, id);
                        if (c.not_after <= now || streq_ptr(c.status, "revoked"))
                                continue;
                        return fail("Key %s is the only key that can decrypt mail sent to certificate %s (%s, valid "
                                    "until %s): without it such mail cannot be read. Give --force to remove it "
                                    "anyway.",
                                    id, *f, c.addresses && c.addresses[0] ? c.addresses[0] : strempty(c.subject),
                                    strempty(format_date(buf, c.not_after)));
                }
        }
        return 0;
}

int verb_remove_key(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        _cleanup_free_ char *id = NULL;
        int r;

        (void) argc;

        r = key_id_resolve(s, argv[0], &id);
        if (r != 0)
                return r;
        if (!arg_force) {
                r = refuse_if_only_key(s, id);
                if (r != 0)
                        return r;
        }
        r = smimed_remove_key(s, id, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot remove key %s", id);
        return 0;
}
