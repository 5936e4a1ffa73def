/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The certificate store over a real bus: ImportCertificates in every format,
 * ImportCRL, LookupCertificates, GetCapabilities, certificate objects with
 * their properties, Remove and SetTrusted under polkit, the ObjectManager
 * signals, and the smimectl verbs on top. One smimed for the whole file; the
 * tests run in order and build on the store the earlier ones filled. The
 * certificates come from tests/pki.c, made fresh for every run. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>

#include "harness.h"
#include "json-parse.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"
#include "xml-tags.h"

#define ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"

/* Every leaf the status tests look at. Where the private key matters for
 * signing, the leaf is issued for the harness token key, so that the only
 * thing wrong with it is what its name says. */
typedef enum LeafId {
        ALICE,          /* valid, its own key: can sign and encrypt, but the token lacks its key */
        SIGNER,         /* valid, the token key: signing possible */
        NONREP,         /* nonRepudiation (no digitalSignature), the token key: signing possible */
        EXPIRED,
        FUTURE,         /* not yet valid */
        REVOKED,        /* revoked by the intermediate's CRL */
        CLIENTAUTH,     /* extendedKeyUsage clientAuth only */
        KEYENC,         /* keyUsage keyEncipherment only: encrypt yes, sign no */
        UNTRUSTED,      /* issued by a root imported without trust */
        DNONLY,         /* the address only in the subject's emailAddress */
        UPPER,          /* an upper-case address in subjectAltName */
        WEAKRSA,        /* RSA-1024 */
        WEAKSHA1,       /* signed with SHA-1, the token key */
        EC,             /* EC P-256, keyAgreement */
        ANYEKU,         /* extendedKeyUsage anyExtendedKeyUsage */
        NOEKU,          /* no extendedKeyUsage */
        _LEAF_MAX,
} LeafId;

typedef struct Leaf {
        const char *address;        /* as written in the certificate */
        const char *status;         /* expected Status once the CRL is in */
        bool can_sign, can_encrypt;
        const char *sign_reason;    /* GetCapabilities; "" possible, NULL not checked */
        const char *encrypt_reason;
        PkiCert *cert;
        char fp[65];
        char *path;
} Leaf;

static Leaf leaves[_LEAF_MAX] = {
        [ALICE] = { "alice@example.com", "valid", true, true, "no-private-key", "" },
        [SIGNER] = { "signer@example.com", "valid", true, true, "", "" },
        [NONREP] = { "nonrep@example.com", "valid", true, true, "", "" },
        [EXPIRED] = { "expired@example.com", "expired", false, false, "expired", "expired" },
        [FUTURE] = { "future@example.com", "not-yet-valid", false, false, "not-yet-valid", "not-yet-valid" },
        [REVOKED] = { "revoked@example.com", "revoked", false, false, "revoked", "revoked" },
        [CLIENTAUTH] = { "clientauth@example.com", "wrong-usage", false, false, "wrong-usage", "wrong-usage" },
        [KEYENC] = { "keyenc@example.com", "valid", false, true, "wrong-usage", "" },
        [UNTRUSTED] = { "untrusted@example.com", "untrusted", false, false, "untrusted", "untrusted" },
        [DNONLY] = { "dn.only@example.com", "valid", true, true, "no-private-key", "" },
        [UPPER] = { "Carol.Upper@Example.COM", "valid", true, true, "no-private-key", "" },
        [WEAKRSA] = { "weak.rsa@example.com", "weak", false, false, NULL, "weak" },
        [WEAKSHA1] = { "weak.sha1@example.com", "weak", false, false, "weak", "weak" },
        [EC] = { "ec@example.com", "valid", true, true, "no-private-key", "" },
        [ANYEKU] = { "anyeku@example.com", "valid", true, true, "no-private-key", "" },
        [NOEKU] = { "noeku@example.com", "valid", true, true, "no-private-key", "" },
};

static Harness *harness;
static char *config_path;
static EVP_PKEY *token_key;     /* the harness key, public part only */
static PkiCert *root, *intermediate, *other_root;
static char root_fp[65], intermediate_fp[65], other_root_fp[65];
static uint64_t alice_serial = 0x1a2b3c4d5e6f7081ULL;

/* ---- small helpers ---- */

static char *path_of_fp(const char *fp) {
        char *p;

        assert_true(asprintf(&p, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", fp) > 0);
        return p;
}

static char *path_of(const PkiCert *c) {
        char fp[65];

        assert_int_equal(pki_cert_fingerprint(c, fp), 0);
        return path_of_fp(fp);
}

static char *lowercase(const char *s) {
        char *l = strdup(s);

        assert_non_null(l);
        for (char *p = l; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        return l;
}

static sd_bus *bus_open(void) {
        sd_bus *bus = NULL;

        assert_int_equal(harness_bus_open(&bus), 0);
        return bus;
}

static void strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

static void strv_freep(char ***l) {
        strv_free(*l);
}

static size_t strv_length(char **l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static char *strv_join(char **l) {
        size_t len = 1;
        char *s;

        for (char **p = l; p && *p; p++)
                len += strlen(*p) + 1;
        s = calloc(1, len);
        assert_non_null(s);
        for (char **p = l; p && *p; p++) {
                strcat(s, *p);
                strcat(s, "\n");
        }
        return s;
}

/* ---- bus calls ---- */

static void append_options(sd_bus_message *m, const char *purpose, int usable) {
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        if (purpose)
                assert_true(sd_bus_message_append(m, "{sv}", "purpose", "s", purpose) >= 0);
        if (usable >= 0)
                assert_true(sd_bus_message_append(m, "{sv}", "usable", "b", usable) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
}

/* ImportCertificates; returns the sd_bus_call result, the paths on success. */
static int import_data(sd_bus *bus, const void *data, size_t len, bool trust, char ***ret_paths, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', data, len) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust) >= 0);
        r = sd_bus_call(bus, m, 0, e, &reply);
        if (r < 0)
                return r;
        if (ret_paths)
                assert_true(sd_bus_message_read_strv(reply, ret_paths) >= 0);
        return r;
}

/* ImportCertificates that must succeed and return exactly the paths of
 * expected_fps, in order. Also waits for the InterfacesAdded of every new
 * one and for CertificateCount to reach its new value. */
static void import_expect(const void *data, size_t len, bool trust, char (*expected_fps)[65], size_t n) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(object_watch_freep) ObjectWatch *objects = NULL;
        _cleanup_(property_watch_freep) PropertyWatch *count = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(strv_freep) char **paths = NULL;
        _cleanup_free_ char *before = NULL, *after = NULL, *want = NULL;
        unsigned long new_ones = 0;
        bool *is_new = calloc(n + 1, sizeof(bool));
        int r;

        assert_non_null(is_new);

        assert_int_equal(harness_watch_objects(bus, SMIMED_CERTIFICATE_INTERFACE, &objects), 0);
        assert_int_equal(harness_watch_manager_property(bus, "CertificateCount", &count), 0);
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &before), 0);

        /* Which of them are new: Get on an object that is not there fails. */
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = path_of_fp(expected_fps[i]), *fp = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error ge = SD_BUS_ERROR_NULL;
                bool dup = false;

                for (size_t j = 0; j < i; j++)
                        dup = dup || streq(expected_fps[i], expected_fps[j]);
                if (!dup && sd_bus_get_property_string(bus, SMIMED_BUS_NAME, p, SMIMED_CERTIFICATE_INTERFACE,
                                                       "Fingerprint", &ge, &fp) < 0) {
                        is_new[i] = true;
                        new_ones++;
                }
        }

        r = import_data(bus, data, len, trust, &paths, &e);
        if (r < 0)
                fail_msg("ImportCertificates failed: %s: %s", e.name, e.message);
        if (strv_length(paths) != n)
                fail_msg("ImportCertificates returned %zu objects, expected %zu", strv_length(paths), n);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = path_of_fp(expected_fps[i]);
                if (!streq(paths[i], p))
                        fail_msg("ImportCertificates object %zu: expected %s, got %s", i, p, paths[i]);
        }

        assert_true(asprintf(&want, "%lu", strtoul(before, NULL, 10) + new_ones) > 0);
        if (new_ones > 0) {
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *p = NULL;
                        if (!is_new[i])
                                continue;
                        p = path_of_fp(expected_fps[i]);
                        if (harness_objects_wait(objects, p, true) < 0)
                                fail_msg("no InterfacesAdded for %s", p);
                }
                if (harness_watch_wait(count, want) < 0)
                        fail_msg("no PropertiesChanged with CertificateCount=%s (was %s)", want, before);
        }
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &after), 0);
        assert_string_equal(after, want);
        free(is_new);
}

static void import_certs_expect(const PkiCert *const *certs, size_t n, bool trust) {
        _cleanup_free_ char *pem = pki_certs_pem(certs, n);
        char (*fps)[65] = calloc(n, 65);

        assert_non_null(pem);
        assert_non_null(fps);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(pki_cert_fingerprint(certs[i], fps[i]), 0);
        import_expect(pem, strlen(pem), trust, fps, n);
        free(fps);
}

static int import_crl(sd_bus *bus, const void *data, size_t len, uint32_t *ret_count, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCRL") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', data, len) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        r = sd_bus_call(bus, m, 0, e, &reply);
        if (r >= 0 && ret_count)
                assert_true(sd_bus_message_read(reply, "u", ret_count) >= 0);
        return r;
}

static int lookup(sd_bus *bus, const char *address, const char *purpose, int usable, char ***ret, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "LookupCertificates") >= 0);
        assert_true(sd_bus_message_append(m, "s", address) >= 0);
        append_options(m, purpose, usable);
        r = sd_bus_call(bus, m, 0, e, &reply);
        if (r >= 0)
                assert_true(sd_bus_message_read_strv(reply, ret) >= 0);
        return r;
}

static char **lookup_ok(const char *address, const char *purpose, int usable) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        char **paths = NULL;

        if (lookup(bus, address, purpose, usable, &paths, &e) < 0)
                fail_msg("LookupCertificates(\"%s\") failed: %s: %s", address, e.name, e.message);
        return paths;
}

/* The store's fingerprints, sorted, one per line. */
static char *store_contents(void) {
        _cleanup_(strv_freep) char **paths = lookup_ok("", NULL, -1);

        qsort(paths, strv_length(paths), sizeof(char *), cmp_str);
        return strv_join(paths);
}

static void expect_paths(char **got, const char *const *want, const char *what) {
        size_t n = 0;

        while (want[n])
                n++;
        if (strv_length(got) != n) {
                _cleanup_free_ char *g = strv_join(got);
                fail_msg("%s: expected %zu objects, got %zu:\n%s", what, n, strv_length(got), g);
        }
        for (size_t i = 0; i < n; i++)
                if (!streq(got[i], want[i]))
                        fail_msg("%s: object %zu: expected %s, got %s", what, i, want[i], got[i]);
}

static char *get_string(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        char *s = NULL;

        if (sd_bus_get_property_string(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, property, &e, &s) < 0)
                fail_msg("Get %s of %s failed: %s: %s", property, path, e.name, e.message);
        return s;
}

static bool get_bool(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int b = 0;

        if (sd_bus_get_property_trivial(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, property, &e, 'b',
                                        &b) < 0)
                fail_msg("Get %s of %s failed: %s: %s", property, path, e.name, e.message);
        return b;
}

static uint64_t get_u64(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t t = 0;

        if (sd_bus_get_property_trivial(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, property, &e, 't',
                                        &t) < 0)
                fail_msg("Get %s of %s failed: %s: %s", property, path, e.name, e.message);
        return t;
}

static uint32_t get_u32(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint32_t u = 0;

        if (sd_bus_get_property_trivial(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, property, &e, 'u',
                                        &u) < 0)
                fail_msg("Get %s of %s failed: %s: %s", property, path, e.name, e.message);
        return u;
}

static char **get_strv(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        char **l = NULL;

        if (sd_bus_get_property_strv(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, property, &e, &l) < 0)
                fail_msg("Get %s of %s failed: %s: %s", property, path, e.name, e.message);
        return l;
}

static bool object_exists(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *fp = NULL;

        return sd_bus_get_property_string(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, "Fingerprint", &e,
                                          &fp) >= 0;
}

static int call_cert(sd_bus *bus, const char *path, const char *method, sd_bus_error *e, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        va_list ap;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE,
                                                   method) >= 0);
        if (types) {
                va_start(ap, types);
                assert_true(sd_bus_message_appendv(m, types, ap) >= 0);
                va_end(ap);
        }
        return sd_bus_call(bus, m, 0, e, &reply);
}

/* ---- GetCapabilities ---- */

typedef struct Capability {
        bool present;           /* the dict had any key */
        char *address;
        int possible;
        char *reason;
        char *message;
        char *certificate;
        char *fingerprint;
        char *subject;
        char *issuer;
        char *summary;
        uint64_t not_after;
        bool has_not_after;
} Capability;

static void capability_done(Capability *c) {
        free(c->address);
        free(c->reason);
        free(c->message);
        free(c->certificate);
        free(c->fingerprint);
        free(c->subject);
        free(c->issuer);
        free(c->summary);
        *c = (Capability) {};
}

static void read_capability(sd_bus_message *m, Capability *c) {
        *c = (Capability) { .possible = -1 };
        assert_true(sd_bus_message_enter_container(m, 'a', "{sv}") > 0);
        for (;;) {
                const char *key, *contents;
                char **target = NULL;
                char type;
                int r;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                assert_true(r >= 0);
                if (r == 0)
                        break;
                c->present = true;
                assert_true(sd_bus_message_read(m, "s", &key) > 0);
                assert_true(sd_bus_message_peek_type(m, &type, &contents) > 0);

                if (streq(key, "address"))
                        target = &c->address;
                else if (streq(key, "reason"))
                        target = &c->reason;
                else if (streq(key, "message"))
                        target = &c->message;
                else if (streq(key, "fingerprint"))
                        target = &c->fingerprint;
                else if (streq(key, "subject"))
                        target = &c->subject;
                else if (streq(key, "issuer"))
                        target = &c->issuer;
                else if (streq(key, "summary"))
                        target = &c->summary;

                if (target) {
                        const char *s;
                        if (!streq(contents, "s"))
                                fail_msg("GetCapabilities: \"%s\" has type %s, expected s", key, contents);
                        assert_true(sd_bus_message_read(m, "v", "s", &s) > 0);
                        *target = strdup(s);
                } else if (streq(key, "certificate")) {
                        const char *o;
                        if (!streq(contents, "o"))
                                fail_msg("GetCapabilities: \"certificate\" has type %s, expected o", contents);
                        assert_true(sd_bus_message_read(m, "v", "o", &o) > 0);
                        c->certificate = strdup(o);
                } else if (streq(key, "possible")) {
                        int b;
                        if (!streq(contents, "b"))
                                fail_msg("GetCapabilities: \"possible\" has type %s, expected b", contents);
                        assert_true(sd_bus_message_read(m, "v", "b", &b) > 0);
                        c->possible = b;
                } else if (streq(key, "not_after")) {
                        if (!streq(contents, "t"))
                                fail_msg("GetCapabilities: \"not_after\" has type %s, expected t", contents);
                        assert_true(sd_bus_message_read(m, "v", "t", &c->not_after) > 0);
                        c->has_not_after = true;
                } else
                        assert_true(sd_bus_message_skip(m, "v") >= 0);
                assert_true(sd_bus_message_exit_container(m) >= 0);
        }
        assert_true(sd_bus_message_exit_container(m) >= 0);
}

/* GetCapabilities(sender, recipients); *ret_encrypt gets one entry per
 * recipient (asserted). */
static int get_capabilities(sd_bus *bus, const char *sender, const char *const *recipients, Capability *ret_sign,
                            Capability **ret_encrypt, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        size_t n = 0, i = 0;
        Capability *enc;
        int r;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "GetCapabilities") >= 0);
        assert_true(sd_bus_message_append(m, "s", sender) >= 0);
        assert_true(sd_bus_message_append_strv(m, (char **) recipients) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        r = sd_bus_call(bus, m, 0, e, &reply);
        if (r < 0)
                return r;

        while (recipients[n])
                n++;
        enc = calloc(n + 1, sizeof(Capability));
        assert_non_null(enc);
        read_capability(reply, ret_sign);
        assert_true(sd_bus_message_enter_container(reply, 'a', "a{sv}") > 0);
        while (sd_bus_message_at_end(reply, false) == 0) {
                if (i >= n)
                        fail_msg("GetCapabilities returned more than %zu encrypt entries", n);
                read_capability(reply, &enc[i++]);
        }
        if (i != n)
                fail_msg("GetCapabilities returned %zu encrypt entries for %zu recipients", i, n);
        assert_true(sd_bus_message_exit_container(reply) >= 0);
        *ret_encrypt = enc;
        return r;
}

static void capabilities_ok(const char *sender, const char *const *recipients, Capability *ret_sign,
                            Capability **ret_encrypt) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (get_capabilities(bus, sender, recipients, ret_sign, ret_encrypt, &e) < 0)
                fail_msg("GetCapabilities(\"%s\") failed: %s: %s", sender, e.name, e.message);
}

static void capabilities_free(Capability *enc, size_t n) {
        if (!enc)
                return;
        for (size_t i = 0; i < n; i++)
                capability_done(&enc[i]);
        free(enc);
}

/* ---- what a certificate says about itself, computed here with OpenSSL ---- */

static uint64_t asn1_time_usec(const ASN1_TIME *t) {
        struct tm tm = {};

        assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
        return (uint64_t) timegm(&tm) * 1000000ULL;
}

static char *name_cn(const X509_NAME *name) {
        char cn[256];

        assert_true(X509_NAME_get_text_by_NID((X509_NAME *) name, NID_commonName, cn, sizeof(cn)) > 0);
        return strdup(cn);
}

static char *rfc2253(const X509_NAME *name) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *s;
        long n;

        assert_non_null(bio);
        assert_true(X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0);
        n = BIO_get_mem_data(bio, &data);
        s = strndup(data, (size_t) n);
        BIO_free(bio);
        return s;
}

/* "Alice <alice@example.com> · issued by Example CA · valid until
 * 2034-01-01 · SHA-256 3F:A2:1B:C4:…" */
static char *expected_summary(const PkiCert *c, const char *address) {
        _cleanup_free_ char *cn = name_cn(X509_get_subject_name(c->x509));
        _cleanup_free_ char *issuer_cn = name_cn(X509_get_issuer_name(c->x509));
        _cleanup_free_ char *addr = lowercase(address);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        struct tm tm = {};
        char date[16], *s;

        assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(c->x509), &tm), 1);
        assert_true(strftime(date, sizeof(date), "%Y-%m-%d", &tm) > 0);
        assert_int_equal(X509_digest(c->x509, EVP_sha256(), md, &md_len), 1);
        assert_true(asprintf(&s, "%s <%s> · issued by %s · valid until %s · SHA-256 %02X:%02X:%02X:%02X:…", cn, addr,
                             issuer_cn, date, md[0], md[1], md[2], md[3]) > 0);
        return s;
}

/* ---- fixture ---- */

static PkiCert *make_leaf(LeafId id) {
        const char *san[] = { leaves[id].address, NULL };
        char cn[64];
        PkiCertOptions o;
        const PkiCert *issuer = intermediate;
        EVP_PKEY *own = NULL;
        PkiCert *c;

        pki_cert_options_init(&o);
        snprintf(cn, sizeof(cn), "Leaf %.*s", (int) strcspn(leaves[id].address, "@"), leaves[id].address);
        o.common_name = cn;
        o.san_emails = san;
        o.key = token_key;

        switch (id) {
        case ALICE:
                o.common_name = "Alice";
                o.key = NULL;
                o.serial = alice_serial;
                break;
        case SIGNER:
                o.key_usage = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_ENCIPHERMENT;
                break;
        case NONREP:
                o.key_usage = KU_NON_REPUDIATION | KU_KEY_ENCIPHERMENT;
                break;
        case EXPIRED:
                o.not_before_days = -30;
                o.not_after_days = -1;
                break;
        case FUTURE:
                o.not_before_days = 10;
                o.not_after_days = 400;
                break;
        case REVOKED:
                break;
        case CLIENTAUTH:
                o.eku = PKI_EKU_CLIENT_AUTH;
                break;
        case KEYENC:
                o.key_usage = KU_KEY_ENCIPHERMENT;
                break;
        case UNTRUSTED:
                issuer = other_root;
                break;
        case DNONLY:
                o.san_emails = NULL;
                o.email = leaves[id].address;
                o.key = NULL;
                break;
        case UPPER:
                o.common_name = "Carol Upper";
                o.key = NULL;
                break;
        case WEAKRSA:
                o.key = own = pki_key_rsa(1024);
                break;
        case WEAKSHA1:
                o.digest = "sha1";
                break;
        case EC:
                o.key = own = pki_key_ec();
                break;
        case ANYEKU:
                o.eku = PKI_EKU_ANY;
                o.key = NULL;
                break;
        case NOEKU:
                o.eku = PKI_EKU_NONE;
                o.key = NULL;
                break;
        case _LEAF_MAX:
                break;
        }
        c = pki_cert_new(&o, issuer);
        EVP_PKEY_free(own);
        if (!c)
                fail_msg("cannot make leaf %s: %s", leaves[id].address, ERR_error_string(ERR_get_error(), NULL));
        return c;
}

static PkiCert *cli_cert(const char *address) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = "Cli User";
        o.san_emails = (const char *[]) { address, NULL };
        c = pki_cert_new(&o, intermediate);
        assert_non_null(c);
        return c;
}

static PkiCert *cli_a, *cli_b, *cli_revoked;

static int setup(void **state) {
        _cleanup_free_ char *text = NULL;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r < 0)
                return r;
        r = harness_start_bus(harness);
        if (r < 0)
                return r;

        token_key = pki_public_key_from_pem_file(harness->key_pem);
        root = pki_root_ca("Store Test Root");
        intermediate = root ? pki_intermediate_ca("Store Test Intermediate", root) : NULL;
        other_root = pki_root_ca("Untrusted Root");
        if (!token_key || !intermediate || !other_root)
                return -1;
        if (pki_cert_fingerprint(root, root_fp) < 0 || pki_cert_fingerprint(intermediate, intermediate_fp) < 0 ||
            pki_cert_fingerprint(other_root, other_root_fp) < 0)
                return -1;
        for (LeafId id = 0; id < _LEAF_MAX; id++) {
                leaves[id].cert = make_leaf(id);
                if (pki_cert_fingerprint(leaves[id].cert, leaves[id].fp) < 0)
                        return -1;
                leaves[id].path = path_of_fp(leaves[id].fp);
        }
        cli_a = cli_cert("cli.a@example.com");
        cli_b = cli_cert("cli.b@example.com");
        cli_revoked = cli_cert("cli.revoked@example.com");

        text = harness_config_text(harness, NULL);
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        if (!config_path)
                return -1;
        return harness_start_smimed(harness, config_path, NULL);
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        config_path = mfree(config_path);
        for (LeafId id = 0; id < _LEAF_MAX; id++) {
                leaves[id].cert = pki_cert_free(leaves[id].cert);
                leaves[id].path = mfree(leaves[id].path);
        }
        root = pki_cert_free(root);
        intermediate = pki_cert_free(intermediate);
        other_root = pki_cert_free(other_root);
        EVP_PKEY_free(token_key);
        token_key = NULL;
        cli_a = pki_cert_free(cli_a);
        cli_b = pki_cert_free(cli_b);
        cli_revoked = pki_cert_free(cli_revoked);
        return 0;
}

/* ---- imports ---- */

static void test_store_starts_empty(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(strv_freep) char **all = NULL;
        _cleanup_free_ char *count = NULL;

        (void) state;
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &count), 0);
        assert_string_equal(count, "0");
        all = lookup_ok("", NULL, -1);
        assert_int_equal(strv_length(all), 0);
}

static void test_import_one_pem_trusted_root(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_free_ char *path = path_of(root), *fp = NULL;

        (void) state;
        import_certs_expect((const PkiCert *[]) { root }, 1, true);
        fp = get_string(bus, path, "Fingerprint");
        assert_string_equal(fp, root_fp);
        assert_true(get_bool(bus, path, "Trusted"));
        assert_true(get_bool(bus, path, "IsCA"));
}

static void test_import_several_pem(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_free_ char *ipath = path_of(intermediate);
        const LeafId ids[] = { ALICE, SIGNER, NONREP, EXPIRED, FUTURE, REVOKED, CLIENTAUTH, KEYENC, UPPER, WEAKRSA, WEAKSHA1 };
        const PkiCert *certs[ELEMENTSOF(ids) + 1];

        (void) state;
        certs[0] = intermediate;
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                certs[i + 1] = leaves[ids[i]].cert;
        /* Without "trust": the intermediate is stored, but is no anchor. */
        import_certs_expect(certs, ELEMENTSOF(certs), false);
        assert_true(get_bool(bus, ipath, "IsCA"));
        assert_false(get_bool(bus, ipath, "Trusted"));
}

static void test_import_der(void **state) {
        _cleanup_free_ unsigned char *der = NULL;
        size_t len;

        (void) state;
        assert_int_equal(pki_cert_der(leaves[DNONLY].cert, &der, &len), 0);
        import_expect(der, len, false, &leaves[DNONLY].fp, 1);
}

static void import_pkcs7(const PkiCert *const *certs, size_t n, bool pem) {
        _cleanup_free_ unsigned char *der = NULL;
        _cleanup_free_ char *text = NULL;
        char order[8][65];
        size_t len;
        int k;

        assert_true(n <= 8);
        assert_int_equal(pki_pkcs7_der(certs, n, &der, &len), 0);
        /* The objects come back in the order the bundle holds them. */
        k = pki_pkcs7_order(der, len, order, 8);
        assert_int_equal(k, (int) n);
        if (!pem) {
                import_expect(der, len, false, order, n);
                return;
        }
        text = pki_pkcs7_pem(certs, n);
        assert_non_null(text);
        import_expect(text, strlen(text), false, order, n);
}

static void test_import_pkcs7_der(void **state) {
        (void) state;
        import_pkcs7((const PkiCert *[]) { leaves[EC].cert, leaves[ANYEKU].cert }, 2, false);
}

static void test_import_pkcs7_pem(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_free_ char *opath = path_of(other_root);

        (void) state;
        import_pkcs7((const PkiCert *[]) { leaves[NOEKU].cert, other_root, leaves[UNTRUSTED].cert }, 3, true);
        /* other_root is a CA in a batch without "trust": no anchor. */
        assert_false(get_bool(bus, opath, "Trusted"));
}

static void test_every_certificate_is_in_the_store(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(strv_freep) char **all = lookup_ok("", NULL, -1);
        _cleanup_free_ char *count = NULL;

        (void) state;
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &count), 0);
        assert_int_equal(strv_length(all), 3 + _LEAF_MAX);
        assert_int_equal(strtoul(count, NULL, 10), 3 + _LEAF_MAX);
        for (LeafId id = 0; id < _LEAF_MAX; id++) {
                bool found = false;
                for (char **p = all; *p; p++)
                        found = found || streq(*p, leaves[id].path);
                if (!found)
                        fail_msg("LookupCertificates(\"\") lacks %s (%s)", leaves[id].address, leaves[id].path);
        }
}

static void test_duplicate_import_is_harmless(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(object_watch_freep) ObjectWatch *objects = NULL;
        _cleanup_(pki_cert_freep) PkiCert *marker = NULL;
        _cleanup_free_ char *before = NULL, *after = NULL, *rpath = path_of(root), *ipath = path_of(intermediate),
                            *mpath = NULL;
        PkiCertOptions o;

        (void) state;
        assert_int_equal(harness_watch_objects(bus, SMIMED_CERTIFICATE_INTERFACE, &objects), 0);
        before = store_contents();

        /* Again, without "trust" this time: it only ever adds trust. */
        import_certs_expect((const PkiCert *[]) { root, intermediate, leaves[ALICE].cert }, 3, false);
        after = store_contents();
        assert_string_equal(before, after);
        assert_true(get_bool(bus, rpath, "Trusted"));
        assert_false(get_bool(bus, ipath, "Trusted"));

        /* A new certificate after them: once its InterfacesAdded is here, any
         * signal for the duplicates (sent before it) would be too. */
        pki_cert_options_init(&o);
        o.common_name = "Marker";
        o.san_emails = (const char *[]) { "marker@example.com", NULL };
        marker = pki_cert_new(&o, intermediate);
        assert_non_null(marker);
        mpath = path_of(marker);
        import_certs_expect((const PkiCert *[]) { marker }, 1, false);
        assert_int_equal(harness_objects_wait(objects, mpath, true), 0);
        assert_int_equal(harness_objects_seen(objects, rpath, true), 0);
        assert_int_equal(harness_objects_seen(objects, ipath, true), 0);
        assert_int_equal(harness_objects_seen(objects, leaves[ALICE].path, true), 0);
}

static void expect_import_refused(const void *data, size_t len, const char *item) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *before = store_contents(), *after = NULL, *count_before = NULL, *count_after = NULL;
        int r;

        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &count_before), 0);
        r = import_data(bus, data, len, true, NULL, &e);
        if (r >= 0)
                fail_msg("ImportCertificates took a batch with a bad item (%s)", item ? item : "no certificate");
        if (!sd_bus_error_has_name(&e, SMIMED_ERROR_INVALID_FORMAT))
                fail_msg("expected %s, got %s: %s", SMIMED_ERROR_INVALID_FORMAT, e.name, e.message);
        if (item && !strstr(e.message, item))
                fail_msg("the error does not name \"%s\": \"%s\"", item, e.message);

        after = store_contents();
        if (!streq(before, after))
                fail_msg("the store changed.\n--- before ---\n%s--- after ---\n%s", before, after);
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &count_after), 0);
        assert_string_equal(count_before, count_after);
}

static void test_batch_is_all_or_nothing(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *a = NULL, *b = NULL;
        _cleanup_free_ char *pa = NULL, *pb = NULL, *pc = NULL, *batch = NULL, *truncated = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        const char *garbage = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUgYXQgYWxsLg==\n"
                              "-----END CERTIFICATE-----\n";
        const unsigned char bad_der[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
        PkiCertOptions o;
        size_t len;

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "Batch A";
        o.san_emails = (const char *[]) { "batch.a@example.com", NULL };
        a = pki_cert_new(&o, intermediate);
        o.common_name = "Batch B";
        o.san_emails = (const char *[]) { "batch.b@example.com", NULL };
        b = pki_cert_new(&o, intermediate);
        assert_non_null(a);
        assert_non_null(b);
        pa = pki_cert_pem(a);
        pb = pki_cert_pem(b);
        pc = pki_cert_pem(leaves[ALICE].cert);

        /* The second of three is not a certificate. */
        assert_true(asprintf(&batch, "%s%s%s", pa, garbage, pb) > 0);
        expect_import_refused(batch, strlen(batch), "item 2 of 3");
        batch = mfree(batch);

        /* The third of three is cut short; the first is new, the second known. */
        assert_int_equal(pki_cert_der(b, &der, &len), 0);
        {
                _cleanup_free_ char *half = strndup(pb, strlen(pb) / 2);
                assert_true(asprintf(&truncated, "%s\n-----END CERTIFICATE-----\n", half) > 0);
        }
        assert_true(asprintf(&batch, "%s%s%s", pa, pc, truncated) > 0);
        expect_import_refused(batch, strlen(batch), "item 3 of 3");

        /* Not certificates at all. */
        expect_import_refused("hello, world\n", 13, NULL);
        expect_import_refused(bad_der, sizeof(bad_der), NULL);

        /* Neither A nor B made it in. */
        {
                _cleanup_(strv_freep) char **la = lookup_ok("batch.a@example.com", NULL, -1);
                _cleanup_(strv_freep) char **lb = lookup_ok("batch.b@example.com", NULL, -1);
                assert_int_equal(strv_length(la), 0);
                assert_int_equal(strv_length(lb), 0);
        }
}

/* ---- CRLs ---- */

static PkiCrlOptions crl_options(uint64_t number, int last_update_days) {
        PkiCrlOptions o;

        pki_crl_options_init(&o);
        o.crl_number = number;
        o.last_update_days = last_update_days;
        return o;
}

static void expect_crl_refused(const void *data, size_t len, const char *error_name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (import_crl(bus, data, len, NULL, &e) >= 0)
                fail_msg("ImportCRL took a CRL it must refuse with %s", error_name);
        if (!sd_bus_error_has_name(&e, error_name))
                fail_msg("ImportCRL: expected %s, got %s: %s", error_name, e.name, e.message);
}

static void test_crl_revokes(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *pem = NULL, *status = NULL, *alice = NULL;
        uint64_t serial = pki_cert_serial(leaves[REVOKED].cert);
        PkiCrlOptions o = crl_options(1, -2);
        uint32_t n = 0;

        (void) state;
        status = get_string(bus, leaves[REVOKED].path, "Status");
        assert_string_equal(status, "valid"); /* nothing wrong with it yet */
        status = mfree(status);

        crl = pki_crl_new(intermediate, &serial, 1, &o);
        assert_non_null(crl);
        pem = pki_crl_pem(crl);
        assert_non_null(pem);
        if (import_crl(bus, pem, strlen(pem), &n, &e) < 0)
                fail_msg("ImportCRL failed: %s: %s", e.name, e.message);
        assert_int_equal(n, 1);

        status = get_string(bus, leaves[REVOKED].path, "Status");
        assert_string_equal(status, "revoked");
        assert_false(get_bool(bus, leaves[REVOKED].path, "CanSign"));
        assert_false(get_bool(bus, leaves[REVOKED].path, "CanEncrypt"));
        alice = get_string(bus, leaves[ALICE].path, "Status");
        assert_string_equal(alice, "valid");
}

static void test_crl_unknown_issuer(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *stranger = pki_root_ca("Stranger CA");
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *pem = NULL;
        PkiCrlOptions o = crl_options(1, -1);
        uint64_t serial = alice_serial;

        (void) state;
        assert_non_null(stranger);
        crl = pki_crl_new(stranger, &serial, 1, &o);
        assert_non_null(crl);
        pem = pki_crl_pem(crl);
        assert_non_null(pem);
        expect_crl_refused(pem, strlen(pem), SMIMED_ERROR_NO_CERTIFICATE);
}

static void test_crl_bad_signature(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(X509_CRL_freep) X509_CRL *bad = NULL, *root_crl = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        _cleanup_free_ char *bad_pem = NULL, *root_pem = NULL, *batch = NULL, *status = NULL;
        uint64_t alice = alice_serial, inter = pki_cert_serial(intermediate);
        PkiCrlOptions o = crl_options(3, 0);
        size_t len;

        (void) state;
        /* A newer CRL of the intermediate that would revoke Alice, with its
         * signature's last byte flipped. */
        bad = pki_crl_new(intermediate, &alice, 1, &o);
        assert_non_null(bad);
        assert_int_equal(pki_crl_der(bad, &der, &len), 0);
        der[len - 1] ^= 0x01;
        expect_crl_refused(der, len, SMIMED_ERROR_CERTIFICATE_INVALID);

        /* All or nothing: a good CRL of the root (revoking the intermediate)
         * before a bad one is not stored either. */
        {
                const unsigned char *p = der;
                X509_CRL *parsed = d2i_X509_CRL(NULL, &p, (long) len);
                assert_non_null(parsed);
                bad_pem = pki_crl_pem(parsed);
                X509_CRL_free(parsed);
                assert_non_null(bad_pem);
        }
        o = crl_options(1, -1);
        root_crl = pki_crl_new(root, &inter, 1, &o);
        assert_non_null(root_crl);
        root_pem = pki_crl_pem(root_crl);
        assert_non_null(root_pem);
        assert_true(asprintf(&batch, "%s%s", root_pem, bad_pem) > 0);
        expect_crl_refused(batch, strlen(batch), SMIMED_ERROR_CERTIFICATE_INVALID);

        status = get_string(bus, leaves[ALICE].path, "Status");
        if (!streq(status, "valid"))
                fail_msg("Alice is \"%s\" after two refused CRL imports; one of them was stored", status);
}

/* ---- statuses, properties, capabilities ---- */

static void test_every_status(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();

        (void) state;
        for (LeafId id = 0; id < _LEAF_MAX; id++) {
                const Leaf *l = &leaves[id];
                _cleanup_free_ char *status = get_string(bus, l->path, "Status");
                _cleanup_free_ char *text = get_string(bus, l->path, "StatusText");
                bool can_sign = get_bool(bus, l->path, "CanSign"), can_encrypt = get_bool(bus, l->path, "CanEncrypt");

                if (!streq(status, l->status))
                        fail_msg("%s: Status \"%s\", expected \"%s\" (StatusText \"%s\")", l->address, status,
                                 l->status, text);
                if (can_sign != l->can_sign || can_encrypt != l->can_encrypt)
                        fail_msg("%s: CanSign %d CanEncrypt %d, expected %d %d", l->address, can_sign, can_encrypt,
                                 l->can_sign, l->can_encrypt);
                if (!streq(status, "valid") && strlen(text) == 0)
                        fail_msg("%s: Status \"%s\" with an empty StatusText", l->address, status);
        }
}

static void test_certificate_properties(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ unsigned char *der = NULL;
        const Leaf *l = &leaves[ALICE];
        const X509 *x = l->cert->x509;
        _cleanup_free_ char *fp = get_string(bus, l->path, "Fingerprint"), *subject = get_string(bus, l->path, "Subject"),
                            *issuer = get_string(bus, l->path, "Issuer"), *cn = get_string(bus, l->path, "CommonName"),
                            *serial = get_string(bus, l->path, "SerialNumber"),
                            *alg = get_string(bus, l->path, "KeyAlgorithm"), *summary = get_string(bus, l->path, "Summary"),
                            *want_subject = rfc2253(X509_get_subject_name(x)),
                            *want_issuer = rfc2253(X509_get_issuer_name(x)),
                            *want_summary = expected_summary(l->cert, l->address), *want_serial = NULL;
        _cleanup_(strv_freep) char **addresses = get_strv(bus, l->path, "Addresses");
        const void *bytes;
        size_t len, n_bytes;
        const char *chain_fps[] = { l->fp, intermediate_fp, root_fp };
        const PkiCert *chain_certs[] = { l->cert, intermediate, root };
        unsigned n_chain = 0;

        (void) state;
        assert_string_equal(fp, l->fp);
        assert_string_equal(subject, want_subject);
        assert_string_equal(issuer, want_issuer);
        assert_string_equal(cn, "Alice");
        assert_true(asprintf(&want_serial, "%016" PRIX64, alice_serial) > 0);
        assert_string_equal(serial, want_serial);
        assert_int_equal(strv_length(addresses), 1);
        assert_string_equal(addresses[0], l->address);
        assert_int_equal(get_u64(bus, l->path, "NotBefore"), asn1_time_usec(X509_get0_notBefore(x)));
        assert_int_equal(get_u64(bus, l->path, "NotAfter"), asn1_time_usec(X509_get0_notAfter(x)));
        assert_string_equal(alg, "rsa");
        assert_int_equal(get_u32(bus, l->path, "KeyBits"), 2048);
        assert_false(get_bool(bus, l->path, "IsCA"));
        assert_false(get_bool(bus, l->path, "Trusted"));
        assert_false(get_bool(bus, l->path, "HasPrivateKey"));
        assert_string_equal(summary, want_summary);

        /* DER: the very bytes. */
        assert_int_equal(pki_cert_der(l->cert, &der, &len), 0);
        if (sd_bus_get_property(bus, SMIMED_BUS_NAME, l->path, SMIMED_CERTIFICATE_INTERFACE, "DER", &e, &reply, "ay") <
            0)
                fail_msg("Get DER failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read_array(reply, 'y', &bytes, &n_bytes) >= 0);
        assert_int_equal(n_bytes, len);
        assert_memory_equal(bytes, der, len);
        reply = sd_bus_message_unref(reply);

        /* Chain: Alice, the intermediate, the root. */
        if (sd_bus_get_property(bus, SMIMED_BUS_NAME, l->path, SMIMED_CERTIFICATE_INTERFACE, "Chain", &e, &reply,
                                "a(ss)") < 0)
                fail_msg("Get Chain failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_enter_container(reply, 'a', "(ss)") > 0);
        for (;;) {
                const char *cfp, *csubject;
                _cleanup_free_ char *want = NULL;
                int r = sd_bus_message_read(reply, "(ss)", &cfp, &csubject);

                assert_true(r >= 0);
                if (r == 0)
                        break;
                if (n_chain >= ELEMENTSOF(chain_fps))
                        fail_msg("Chain is longer than 3");
                assert_string_equal(cfp, chain_fps[n_chain]);
                want = rfc2253(X509_get_subject_name(chain_certs[n_chain]->x509));
                assert_string_equal(csubject, want);
                n_chain++;
        }
        assert_int_equal(n_chain, 3);

        /* The others, where they differ. */
        {
                _cleanup_free_ char *ec_alg = get_string(bus, leaves[EC].path, "KeyAlgorithm");
                _cleanup_free_ char *rpath = path_of(root);
                assert_string_equal(ec_alg, "ec");
                assert_int_equal(get_u32(bus, leaves[EC].path, "KeyBits"), 256);
                assert_int_equal(get_u32(bus, leaves[WEAKRSA].path, "KeyBits"), 1024);
                assert_true(get_bool(bus, rpath, "IsCA"));
        }
}

static void test_addresses_from_dn_and_lower_cased(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(strv_freep) char **dn = get_strv(bus, leaves[DNONLY].path, "Addresses");
        _cleanup_(strv_freep) char **upper = get_strv(bus, leaves[UPPER].path, "Addresses");
        _cleanup_free_ char *lower = lowercase(leaves[UPPER].address);

        (void) state;
        assert_int_equal(strv_length(dn), 1);
        assert_string_equal(dn[0], "dn.only@example.com");
        assert_int_equal(strv_length(upper), 1);
        assert_string_equal(upper[0], lower);

        {
                _cleanup_(strv_freep) char **a = lookup_ok("dn.only@example.com", NULL, -1);
                _cleanup_(strv_freep) char **b = lookup_ok(lower, NULL, -1);
                _cleanup_(strv_freep) char **c = lookup_ok("CAROL.UPPER@EXAMPLE.COM", NULL, -1);
                _cleanup_(strv_freep) char **d = lookup_ok("ALICE@Example.Com", NULL, -1);
                expect_paths(a, (const char *[]) { leaves[DNONLY].path, NULL }, "dn.only@example.com");
                expect_paths(b, (const char *[]) { leaves[UPPER].path, NULL }, lower);
                expect_paths(c, (const char *[]) { leaves[UPPER].path, NULL }, "CAROL.UPPER@EXAMPLE.COM");
                expect_paths(d, (const char *[]) { leaves[ALICE].path, NULL }, "ALICE@Example.Com");
        }
}

static void check_capability(const Capability *c, const char *address, const char *reason, const Leaf *l,
                             const char *what) {
        /* Exactly as asked is checked in test_no_certificate; here the case may differ. */
        if (!c->address || strcasecmp(c->address, address) != 0)
                fail_msg("%s %s: address \"%s\"", what, address, strempty(c->address));
        if (!c->reason || !streq(c->reason, reason))
                fail_msg("%s %s: reason \"%s\", expected \"%s\" (message \"%s\")", what, address,
                         strempty(c->reason), reason, strempty(c->message));
        if (c->possible != (int) (reason[0] == '\0'))
                fail_msg("%s %s: possible %d with reason \"%s\"", what, address, c->possible, reason);
        if (!c->message || (reason[0] != '\0' && strlen(c->message) == 0))
                fail_msg("%s %s: no message for reason \"%s\"", what, address, reason);
        if (!l)
                return;
        /* A certificate was chosen or considered: it is described. */
        if (!c->fingerprint || !streq(c->fingerprint, l->fp))
                fail_msg("%s %s: fingerprint \"%s\", expected %s", what, address, strempty(c->fingerprint), l->fp);
        if (!c->certificate || !streq(c->certificate, l->path))
                fail_msg("%s %s: certificate \"%s\", expected %s", what, address, strempty(c->certificate), l->path);
        if (!c->has_not_after || c->not_after != asn1_time_usec(X509_get0_notAfter(l->cert->x509)))
                fail_msg("%s %s: not_after %" PRIu64 " is not the certificate's", what, address, c->not_after);
        if (!c->subject || !c->issuer || !c->summary)
                fail_msg("%s %s: subject, issuer or summary missing", what, address);
        {
                _cleanup_free_ char *s = rfc2253(X509_get_subject_name(l->cert->x509));
                _cleanup_free_ char *i = rfc2253(X509_get_issuer_name(l->cert->x509));
                _cleanup_free_ char *summary = expected_summary(l->cert, l->address);
                assert_string_equal(c->subject, s);
                assert_string_equal(c->issuer, i);
                assert_string_equal(c->summary, summary);
        }
}

static void test_capabilities_for_every_status(void **state) {
        (void) state;
        for (LeafId id = 0; id < _LEAF_MAX; id++) {
                const Leaf *l = &leaves[id];
                const char *recipients[] = { l->address, NULL };
                Capability sign, *enc = NULL;

                capabilities_ok(l->address, recipients, &sign, &enc);
                if (l->sign_reason)
                        check_capability(&sign, l->address, l->sign_reason, l, "sign");
                check_capability(&enc[0], l->address, l->encrypt_reason, l, "encrypt");
                capability_done(&sign);
                capabilities_free(enc, 1);
        }
}

static void test_sign_with_the_token_key(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        Capability sign, *enc = NULL;

        (void) state;
        assert_true(get_bool(bus, leaves[SIGNER].path, "HasPrivateKey"));
        assert_true(get_bool(bus, leaves[NONREP].path, "HasPrivateKey"));
        assert_false(get_bool(bus, leaves[ALICE].path, "HasPrivateKey"));
        assert_false(get_bool(bus, leaves[EC].path, "HasPrivateKey"));

        capabilities_ok(leaves[SIGNER].address, (const char *[]) { NULL }, &sign, &enc);
        check_capability(&sign, leaves[SIGNER].address, "", &leaves[SIGNER], "sign");
        capability_done(&sign);
        capabilities_free(enc, 0);

        /* A valid signing certificate whose key the token does not hold. */
        capabilities_ok(leaves[ALICE].address, (const char *[]) { NULL }, &sign, &enc);
        check_capability(&sign, leaves[ALICE].address, "no-private-key", &leaves[ALICE], "sign");
        if (!strstr(sign.message, "Ask your administrator to enroll it"))
                fail_msg("no-private-key message: \"%s\"", sign.message);
        capability_done(&sign);
        capabilities_free(enc, 0);
}

static void test_no_certificate(void **state) {
        const char *recipients[] = { "alice@example.com", "nobody@example.com", "EC@example.com", NULL };
        Capability sign, *enc = NULL;

        (void) state;
        capabilities_ok("nobody@example.com", recipients, &sign, &enc);
        check_capability(&sign, "nobody@example.com", "no-certificate", NULL, "sign");
        if (!strstr(sign.message, "Ask your administrator to add it"))
                fail_msg("no-certificate message: \"%s\"", sign.message);
        check_capability(&enc[0], "alice@example.com", "", &leaves[ALICE], "encrypt");
        check_capability(&enc[1], "nobody@example.com", "no-certificate", NULL, "encrypt");
        if (!strstr(enc[1].message, "Ask your administrator to add it"))
                fail_msg("no-certificate message: \"%s\"", enc[1].message);
        check_capability(&enc[2], "EC@example.com", "", &leaves[EC], "encrypt");
        /* "address": the address asked about, as it was asked. */
        if (!streq(enc[2].address, "EC@example.com"))
                fail_msg("encrypt: address \"%s\", expected the address asked about, \"EC@example.com\"",
                         enc[2].address);
        capability_done(&sign);
        capabilities_free(enc, 3);

        /* No sender: sign is {}. */
        capabilities_ok("", (const char *[]) { "alice@example.com", NULL }, &sign, &enc);
        assert_false(sign.present);
        check_capability(&enc[0], "alice@example.com", "", &leaves[ALICE], "encrypt");
        capability_done(&sign);
        capabilities_free(enc, 1);
}

static void test_malformed_addresses(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        const char *bad[] = { "not-an-address", "a@", "@b", "a b@c" };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e1 = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL,
                                                          e3 = SD_BUS_ERROR_NULL;
                _cleanup_(strv_freep) char **paths = NULL;
                Capability sign = {}, *enc = NULL;

                if (lookup(bus, bad[i], NULL, -1, &paths, &e1) >= 0 ||
                    !sd_bus_error_has_name(&e1, SMIMED_ERROR_INVALID_ARGUMENT))
                        fail_msg("LookupCertificates(\"%s\"): expected InvalidArgument, got %s", bad[i],
                                 e1.name ? e1.name : "success");
                if (get_capabilities(bus, bad[i], (const char *[]) { NULL }, &sign, &enc, &e2) >= 0 ||
                    !sd_bus_error_has_name(&e2, SMIMED_ERROR_INVALID_ARGUMENT))
                        fail_msg("GetCapabilities(sender \"%s\"): expected InvalidArgument, got %s", bad[i],
                                 e2.name ? e2.name : "success");
                capability_done(&sign);
                capabilities_free(enc, 0);
                enc = NULL;
                if (get_capabilities(bus, "alice@example.com", (const char *[]) { "bob@example.com", bad[i], NULL },
                                     &sign, &enc, &e3) >= 0 ||
                    !sd_bus_error_has_name(&e3, SMIMED_ERROR_INVALID_ARGUMENT))
                        fail_msg("GetCapabilities(recipient \"%s\"): expected InvalidArgument, got %s", bad[i],
                                 e3.name ? e3.name : "success");
                capability_done(&sign);
                capabilities_free(enc, 2);
        }
}

static void test_lookup_filters(void **state) {
        (void) state;
        {
                _cleanup_(strv_freep) char **s = lookup_ok(leaves[KEYENC].address, "sign", true);
                _cleanup_(strv_freep) char **e = lookup_ok(leaves[KEYENC].address, "encrypt", true);
                _cleanup_(strv_freep) char **a = lookup_ok(leaves[KEYENC].address, NULL, -1);
                expect_paths(s, (const char *[]) { NULL }, "keyenc, sign, usable");
                expect_paths(e, (const char *[]) { leaves[KEYENC].path, NULL }, "keyenc, encrypt, usable");
                expect_paths(a, (const char *[]) { leaves[KEYENC].path, NULL }, "keyenc");
        }
        {
                _cleanup_(strv_freep) char **u = lookup_ok(leaves[EXPIRED].address, NULL, true);
                _cleanup_(strv_freep) char **a = lookup_ok(leaves[EXPIRED].address, "any", false);
                expect_paths(u, (const char *[]) { NULL }, "expired, usable");
                expect_paths(a, (const char *[]) { leaves[EXPIRED].path, NULL }, "expired");
        }
        {
                _cleanup_(strv_freep) char **s = lookup_ok(leaves[ALICE].address, "sign", true);
                expect_paths(s, (const char *[]) { leaves[ALICE].path, NULL }, "alice, sign, usable");
        }
}

static void test_lookup_order(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        struct {
                int not_before, not_after;
                const char *label;
                PkiCert *cert;
                char *path;
        } c[] = {
                { -60, -2, "expired, NotBefore -60d" },       /* 0: the oldest */
                { -30, 300, "valid, NotBefore -30d" },        /* 1 */
                { 3, 300, "not-yet-valid, NotBefore +3d" },   /* 2: the newest of all */
                { -5, 300, "valid, NotBefore -5d" },          /* 3: the newest usable */
        };
        const PkiCert *certs[ELEMENTSOF(c)];

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(c); i++) {
                PkiCertOptions o;

                pki_cert_options_init(&o);
                o.common_name = "Order";
                o.san_emails = (const char *[]) { "order@example.com", NULL };
                o.not_before_days = c[i].not_before;
                o.not_after_days = c[i].not_after;
                c[i].cert = pki_cert_new(&o, intermediate);
                assert_non_null(c[i].cert);
                c[i].path = path_of(c[i].cert);
                certs[i] = c[i].cert;
        }
        import_certs_expect(certs, ELEMENTSOF(certs), false);

        {
                _cleanup_(strv_freep) char **all = lookup_ok("order@example.com", NULL, -1);
                _cleanup_(strv_freep) char **usable = lookup_ok("order@example.com", NULL, true);
                uint64_t last = UINT64_MAX;

                const size_t want[] = { 3, 1, 2, 0 };
                bool same = strv_length(all) == ELEMENTSOF(want);

                for (size_t i = 0; same && i < ELEMENTSOF(want); i++)
                        same = streq(all[i], c[want[i]].path);
                if (!same) {
                        char got[512] = "";
                        for (char **p = all; *p; p++) {
                                const char *label = "?";
                                for (size_t j = 0; j < ELEMENTSOF(c); j++)
                                        if (streq(*p, c[j].path))
                                                label = c[j].label;
                                strncat(got, label, sizeof(got) - strlen(got) - 3);
                                strcat(got, "; ");
                        }
                        fail_msg("LookupCertificates(order@example.com): expected usable first, then newest "
                                 "NotBefore first: %s; %s; %s; %s. Got: %s",
                                 c[3].label, c[1].label, c[2].label, c[0].label, got);
                }
                expect_paths(usable, (const char *[]) { c[3].path, c[1].path, NULL }, "order@example.com, usable");
                /* And what the objects say agrees: newest NotBefore first among the usable. */
                for (char **p = usable; *p; p++) {
                        uint64_t nb = get_u64(bus, *p, "NotBefore");
                        assert_true(nb < last);
                        last = nb;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(c); i++) {
                pki_cert_free(c[i].cert);
                free(c[i].path);
        }
}

/* ---- SetTrusted, Remove ---- */

static void test_set_trusted(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *opath = path_of(other_root), *status = NULL;

        (void) state;
        status = get_string(bus, leaves[UNTRUSTED].path, "Status");
        assert_string_equal(status, "untrusted");
        status = mfree(status);

        if (call_cert(bus, opath, "SetTrusted", &e, "b", 1) < 0)
                fail_msg("SetTrusted(true) failed: %s: %s", e.name, e.message);
        assert_true(get_bool(bus, opath, "Trusted"));
        status = get_string(bus, leaves[UNTRUSTED].path, "Status");
        assert_string_equal(status, "valid");
        status = mfree(status);

        if (call_cert(bus, opath, "SetTrusted", &e, "b", 0) < 0)
                fail_msg("SetTrusted(false) failed: %s: %s", e.name, e.message);
        assert_false(get_bool(bus, opath, "Trusted"));
        status = get_string(bus, leaves[UNTRUSTED].path, "Status");
        assert_string_equal(status, "untrusted");
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* userdata: int, -1 until a PropertiesChanged of org.smimed1.Certificate
 * names Trusted; then its value, or 2 when it was only invalidated. */
static int on_trusted_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int *seen = userdata;
        const char *interface, *name;
        char **invalidated = NULL;

        (void) error;
        if (sd_bus_message_read(m, "s", &interface) <= 0 || !streq(interface, SMIMED_CERTIFICATE_INTERFACE) ||
            sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                int b;

                if (sd_bus_message_read(m, "s", &name) <= 0)
                        return 0;
                if (streq(name, "Trusted")) {
                        if (sd_bus_message_read(m, "v", "b", &b) <= 0)
                                return 0;
                        *seen = b;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        if (*seen >= 0 || sd_bus_message_exit_container(m) < 0 || sd_bus_message_read_strv(m, &invalidated) < 0)
                return 0;
        for (char **p = invalidated; p && *p; p++)
                if (streq(*p, "Trusted"))
                        *seen = 2;
        strv_free(invalidated);
        return 0;
}

static void test_set_trusted_emits_properties_changed(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *opath = path_of(other_root);
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        int seen = -1;

        (void) state;
        /* Trusted has no EmitsChangedSignal annotation: the default, true. */
        assert_true(sd_bus_match_signal(bus, &slot, SMIMED_BUS_NAME, opath, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_trusted_changed, &seen) >= 0);
        if (call_cert(bus, opath, "SetTrusted", &e, "b", 1) < 0)
                fail_msg("SetTrusted(true) failed: %s: %s", e.name, e.message);
        while (seen < 0) {
                int r = sd_bus_process(bus, NULL);

                assert_true(r >= 0);
                if (r > 0)
                        continue;
                if (now_usec() >= deadline)
                        fail_msg("no PropertiesChanged for Trusted on %s", opath);
                assert_true(sd_bus_wait(bus, deadline - now_usec()) >= 0);
        }
        /* Invalidated instead of carried is as good: then it reads true. */
        if (seen == 2)
                seen = get_bool(bus, opath, "Trusted");
        assert_int_equal(seen, 1);
        if (call_cert(bus, opath, "SetTrusted", &e, "b", 0) < 0)
                fail_msg("SetTrusted(false) failed: %s: %s", e.name, e.message);
}

static void test_remove(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(object_watch_freep) ObjectWatch *objects = NULL;
        _cleanup_(property_watch_freep) PropertyWatch *count = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(pki_cert_freep) PkiCert *doomed = NULL;
        _cleanup_free_ char *path = NULL, *before = NULL, *want = NULL, *after = NULL;
        PkiCertOptions o;

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "Doomed";
        o.san_emails = (const char *[]) { "doomed@example.com", NULL };
        doomed = pki_cert_new(&o, intermediate);
        assert_non_null(doomed);
        path = path_of(doomed);
        import_certs_expect((const PkiCert *[]) { doomed }, 1, false);

        assert_int_equal(harness_watch_objects(bus, SMIMED_CERTIFICATE_INTERFACE, &objects), 0);
        assert_int_equal(harness_watch_manager_property(bus, "CertificateCount", &count), 0);
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &before), 0);
        assert_true(asprintf(&want, "%lu", strtoul(before, NULL, 10) - 1) > 0);

        if (call_cert(bus, path, "Remove", &e, NULL) < 0)
                fail_msg("Remove failed: %s: %s", e.name, e.message);
        if (harness_objects_wait(objects, path, false) < 0)
                fail_msg("no InterfacesRemoved for %s", path);
        if (harness_watch_wait(count, want) < 0)
                fail_msg("no PropertiesChanged with CertificateCount=%s", want);
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &after), 0);
        assert_string_equal(after, want);

        assert_false(object_exists(bus, path));
        {
                _cleanup_(strv_freep) char **l = lookup_ok("doomed@example.com", NULL, -1);
                _cleanup_free_ char *all = store_contents();
                assert_int_equal(strv_length(l), 0);
                assert_null(strstr(all, path));
        }
        /* Once gone, removing it again fails. */
        sd_bus_error_free(&e);
        assert_true(call_cert(bus, path, "Remove", &e, NULL) < 0);
}

/* ---- the unprivileged user ---- */

typedef struct Unprivileged {
        const char *pem;
        const char *crl_pem;
        const char *remove_path;
        const char *trust_path;
        const char *lookup_address;
} Unprivileged;

/* Runs in a child as the test user: no cmocka asserts in here (a failed
 * one would jump back into the parent's test runner, in the child). */
static const char *call_result(int r, const sd_bus_error *e) {
        return r >= 0 ? "ok" : strempty(e->name);
}

static int unprivileged_calls(char *out, size_t size, void *userdata) {
        const Unprivileged *u = userdata;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *lookup_reply = NULL, *caps_reply = NULL, *m1 = NULL,
                                                        *m2 = NULL, *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        _cleanup_(strv_freep) char **paths = NULL;
        _cleanup_free_ char *status = NULL;
        sd_bus_error e1 = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL, e3 = SD_BUS_ERROR_NULL, e4 = SD_BUS_ERROR_NULL,
                     e5 = SD_BUS_ERROR_NULL, e6 = SD_BUS_ERROR_NULL, e7 = SD_BUS_ERROR_NULL;
        int rl, rc, rs, ri = -1, rx = -1, rr, rt;

        if (harness_bus_open(&bus) < 0) {
                snprintf(out, size, "cannot connect");
                return 2;
        }
        rl = sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                "LookupCertificates", &e1, &lookup_reply, "sa{sv}", u->lookup_address, 0);
        if (rl >= 0 && sd_bus_message_read_strv(lookup_reply, &paths) < 0)
                rl = -EBADMSG;
        rc = sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GetCapabilities",
                                &e2, &caps_reply, "sasa{sv}", "", 1, u->lookup_address, 0);
        rs = sd_bus_get_property_string(bus, SMIMED_BUS_NAME, u->remove_path, SMIMED_CERTIFICATE_INTERFACE, "Status",
                                        &e7, &status);
        if (sd_bus_message_new_method_call(bus, &m1, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "ImportCertificates") >= 0 &&
            sd_bus_message_append_array(m1, 'y', u->pem, strlen(u->pem)) >= 0 &&
            sd_bus_message_append(m1, "a{sv}", 1, "trust", "b", 1) >= 0)
                ri = sd_bus_call(bus, m1, 0, &e3, &r1);
        if (sd_bus_message_new_method_call(bus, &m2, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "ImportCRL") >= 0 &&
            sd_bus_message_append_array(m2, 'y', u->crl_pem, strlen(u->crl_pem)) >= 0 &&
            sd_bus_message_append(m2, "a{sv}", 0) >= 0)
                rx = sd_bus_call(bus, m2, 0, &e4, &r2);
        rr = sd_bus_call_method(bus, SMIMED_BUS_NAME, u->remove_path, SMIMED_CERTIFICATE_INTERFACE, "Remove", &e5, &r3,
                                NULL);
        rt = sd_bus_call_method(bus, SMIMED_BUS_NAME, u->trust_path, SMIMED_CERTIFICATE_INTERFACE, "SetTrusted", &e6,
                                &r4, "b", 0);

        snprintf(out, size,
                 "lookup=%s %zu\ncapabilities=%s\nstatus=%s %s\nimport=%s\nimportcrl=%s\nremove=%s\n"
                 "settrusted=%s\n",
                 call_result(rl, &e1), strv_length(paths), call_result(rc, &e2), call_result(rs, &e7),
                 strempty(status), call_result(ri, &e3), call_result(rx, &e4), call_result(rr, &e5),
                 call_result(rt, &e6));
        return 0;
}

static void test_unprivileged_user(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *c = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *pem = NULL, *crl_pem = NULL, *out = NULL, *before = NULL, *after = NULL,
                            *rpath = path_of(root), *expect = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        uint64_t serial = alice_serial;
        PkiCrlOptions co = crl_options(9, 0);
        PkiCertOptions o;
        int r;

        (void) state;
        pki_cert_options_init(&o);
        o.common_name = "Sneaky";
        o.san_emails = (const char *[]) { "sneaky@example.com", NULL };
        c = pki_cert_new(&o, intermediate);
        assert_non_null(c);
        pem = pki_cert_pem(c);
        crl = pki_crl_new(intermediate, &serial, 1, &co);
        assert_non_null(crl);
        crl_pem = pki_crl_pem(crl);
        assert_non_null(pem);
        assert_non_null(crl_pem);

        before = store_contents();
        {
                Unprivileged u = { .pem = pem, .crl_pem = crl_pem, .remove_path = leaves[ALICE].path,
                                   .trust_path = rpath, .lookup_address = leaves[ALICE].address };
                r = harness_run_as_test_user(harness, unprivileged_calls, &u, &out);
        }
        assert_int_equal(r, 0);
        assert_true(asprintf(&expect,
                             "lookup=ok 1\ncapabilities=ok\nstatus=ok valid\nimport=%s\nimportcrl=%s\nremove=%s\n"
                             "settrusted=%s\n",
                             ACCESS_DENIED, ACCESS_DENIED, ACCESS_DENIED, ACCESS_DENIED) > 0);
        if (!streq(out, expect))
                fail_msg("as " HARNESS_TEST_USER ":\n--- expected ---\n%s--- got ---\n%s", expect, out);

        /* And nothing changed. */
        after = store_contents();
        assert_string_equal(before, after);
        assert_true(get_bool(bus, rpath, "Trusted"));
        {
                _cleanup_free_ char *status = get_string(bus, leaves[ALICE].path, "Status");
                assert_string_equal(status, "valid"); /* the CRL was not stored */
        }
}

/* ---- introspection ---- */

static void test_certificate_introspection_matches_xml(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *file = NULL, *want = NULL, *have = NULL;
        const char *xml;

        (void) state;
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, leaves[ALICE].path, "org.freedesktop.DBus.Introspectable",
                               "Introspect", &e, &reply, NULL) < 0)
                fail_msg("Introspect %s failed: %s: %s", leaves[ALICE].path, e.name, e.message);
        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);

        file = harness_read_file(SMIMED_SOURCE_ROOT "/dbus/org.smimed1.Certificate.xml");
        assert_non_null(file);
        want = xml_canonical_element(file, "interface", SMIMED_CERTIFICATE_INTERFACE);
        have = xml_canonical_element(xml, "interface", SMIMED_CERTIFICATE_INTERFACE);
        assert_non_null(want);
        if (!have)
                fail_msg("%s does not serve " SMIMED_CERTIFICATE_INTERFACE ":\n%s", leaves[ALICE].path, xml);
        if (!streq(want, have))
                fail_msg("dbus/org.smimed1.Certificate.xml does not match what smimed serves.\n"
                         "--- file ---\n%s--- served ---\n%s",
                         want, have);
}

/* ---- smimectl ---- */

static int smimectl(char *const *argv, char **out, char **err) {
        return harness_run(harness, argv, false, out, err);
}

/* Exit 1 with one line on stderr that names the D-Bus error. */
static void expect_smimectl_failure(char *const *argv, const char *error_name) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        int r = smimectl(argv, &out, &err);

        if (r != 1)
                fail_msg("smimectl %s: exit %d, expected 1 (stderr: %s)", argv[1], r, err);
        if (error_name && !strstr(err, error_name))
                fail_msg("smimectl %s: stderr does not name %s: \"%s\"", argv[1], error_name, err);
        if (!strchr(err, '\n') || !streq(strchr(err, '\n'), "\n"))
                fail_msg("smimectl %s: stderr is not one line: \"%s\"", argv[1], err);
}

static char *write_scratch(const char *name, const void *data, size_t len) {
        char *path;

        assert_true(asprintf(&path, "%s/%s", harness->dir, name) > 0);
        assert_int_equal(pki_write_file(path, data, len), 0);
        return path;
}

static void test_smimectl_import(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(pki_cert_freep) PkiCert *cli_root = pki_root_ca("Cli Root");
        _cleanup_free_ char *pem = NULL, *root_pem = NULL, *a_path = NULL, *b_path = NULL,
                            *root_file = NULL, *out = NULL, *err = NULL, *want = NULL, *sa = NULL, *sb = NULL,
                            *sr = NULL, *bad = NULL, *rootobj = NULL, *bus_summary = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        char fa[65], fb[65], fr[65], froot[65];
        size_t len;
        int r;

        (void) state;
        assert_non_null(cli_root);
        assert_int_equal(pki_cert_fingerprint(cli_a, fa), 0);
        assert_int_equal(pki_cert_fingerprint(cli_b, fb), 0);
        assert_int_equal(pki_cert_fingerprint(cli_revoked, fr), 0);
        assert_int_equal(pki_cert_fingerprint(cli_root, froot), 0);

        /* Two files: a PEM with two certificates, and a DER. */
        pem = pki_certs_pem((const PkiCert *[]) { cli_a, cli_revoked }, 2);
        assert_non_null(pem);
        a_path = write_scratch("cli-a.pem", pem, strlen(pem));
        assert_int_equal(pki_cert_der(cli_b, &der, &len), 0);
        b_path = write_scratch("cli-b.der", der, len);

        r = smimectl((char *[]) { SMIMECTL_BINARY, "import", a_path, b_path, NULL }, &out, &err);
        if (r != 0)
                fail_msg("smimectl import: exit %d: %s", r, err);
        sa = expected_summary(cli_a, "cli.a@example.com");
        sr = expected_summary(cli_revoked, "cli.revoked@example.com");
        sb = expected_summary(cli_b, "cli.b@example.com");
        assert_true(asprintf(&want, "%s  %s\n%s  %s\n%s  %s\n", fa, sa, fr, sr, fb, sb) > 0);
        assert_string_equal(out, want);
        {
                _cleanup_free_ char *p = path_of(cli_a);
                bus_summary = get_string(bus, p, "Summary");
                assert_string_equal(bus_summary, sa);
                assert_false(get_bool(bus, p, "Trusted"));
        }

        /* --trust makes the CA an anchor. */
        root_pem = pki_cert_pem(cli_root);
        root_file = write_scratch("cli-root.pem", root_pem, strlen(root_pem));
        out = mfree(out);
        r = smimectl((char *[]) { SMIMECTL_BINARY, "import", "--trust", root_file, NULL }, &out, NULL);
        assert_int_equal(r, 0);
        assert_int_equal(strncmp(out, froot, 64), 0);
        rootobj = path_of(cli_root);
        assert_true(get_bool(bus, rootobj, "Trusted"));

        /* A bad file: exit 1, the D-Bus error in one line. */
        {
                const char *junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
                bad = write_scratch("cli-bad.pem", junk, strlen(junk));
        }
        expect_smimectl_failure((char *[]) { SMIMECTL_BINARY, "import", bad, NULL }, SMIMED_ERROR_INVALID_FORMAT);
}

static void test_smimectl_import_crl(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *pem = NULL, *file = NULL, *out = NULL, *err = NULL, *want = NULL, *status = NULL,
                            *path = NULL, *kept = NULL;
        uint64_t serials[] = { pki_cert_serial(leaves[REVOKED].cert), 0 };
        PkiCrlOptions o = crl_options(2, -1);
        int r;

        (void) state;
        assert_non_null(cli_revoked);
        serials[1] = pki_cert_serial(cli_revoked);
        crl = pki_crl_new(intermediate, serials, 2, &o);
        assert_non_null(crl);
        pem = pki_crl_pem(crl);
        file = write_scratch("cli.crl", pem, strlen(pem));

        r = smimectl((char *[]) { SMIMECTL_BINARY, "import-crl", file, NULL }, &out, &err);
        if (r != 0)
                fail_msg("smimectl import-crl: exit %d: %s", r, err);
        assert_true(asprintf(&want, "Imported 1 CRL(s) from %s\n", file) > 0);
        assert_string_equal(out, want);

        path = path_of(cli_revoked);
        status = get_string(bus, path, "Status");
        assert_string_equal(status, "revoked");
        kept = get_string(bus, leaves[REVOKED].path, "Status");
        assert_string_equal(kept, "revoked");
}

static void test_older_crl_is_ignored(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *newer = NULL, *older = NULL;
        _cleanup_(pki_cert_freep) PkiCert *x = cli_cert("crl.order@example.com");
        _cleanup_free_ char *pem = NULL, *status = NULL, *path = path_of(x);
        uint64_t serials[] = { pki_cert_serial(leaves[REVOKED].cert), pki_cert_serial(x) };
        PkiCrlOptions o = crl_options(6, 0);
        uint32_t n = 99;

        (void) state;
        import_certs_expect((const PkiCert *[]) { x }, 1, false);

        /* The newest CRL of the intermediate so far revokes x... */
        newer = pki_crl_new(intermediate, serials, 2, &o);
        assert_non_null(newer);
        pem = pki_crl_pem(newer);
        if (import_crl(bus, pem, strlen(pem), &n, &e) < 0)
                fail_msg("ImportCRL failed: %s: %s", e.name, e.message);
        assert_int_equal(n, 1);
        status = get_string(bus, path, "Status");
        assert_string_equal(status, "revoked");

        /* ...and an older one without x in it changes nothing. */
        o = crl_options(1, -3);
        older = pki_crl_new(intermediate, serials, 1, &o);
        assert_non_null(older);
        pem = mfree(pem);
        pem = pki_crl_pem(older);
        n = 99;
        if (import_crl(bus, pem, strlen(pem), &n, &e) < 0)
                fail_msg("ImportCRL of an older CRL failed: %s: %s", e.name, e.message);
        assert_int_equal(n, 0);
        status = mfree(status);
        status = get_string(bus, path, "Status");
        assert_string_equal(status, "revoked");
}

static const char *const list_keys[] = {
        "fingerprint", "subject", "issuer", "common_name", "serial", "addresses", "not_before", "not_after",
        "key_algorithm", "key_bits", "is_ca", "trusted", "has_private_key", "status", "status_text", "can_sign",
        "can_encrypt", "summary",
};

static void check_json_certificate(sd_bus *bus, const JsonValue *o, const char *what) {
        _cleanup_free_ char *path = NULL, *status = NULL, *summary = NULL, *subject = NULL;
        const char *fp;
        bool b;

        if (!o || o->type != JSON_OBJECT)
                fail_msg("%s: not an object", what);
        for (size_t i = 0; i < ELEMENTSOF(list_keys); i++)
                if (!json_get(o, list_keys[i]))
                        fail_msg("%s: no key \"%s\"", what, list_keys[i]);
        fp = json_get_string(o, "fingerprint");
        assert_non_null(fp);
        path = path_of_fp(fp);
        status = get_string(bus, path, "Status");
        summary = get_string(bus, path, "Summary");
        subject = get_string(bus, path, "Subject");
        assert_string_equal(strempty(json_get_string(o, "status")), status);
        assert_string_equal(strempty(json_get_string(o, "summary")), summary);
        assert_string_equal(strempty(json_get_string(o, "subject")), subject);
        assert_true(json_get_bool(o, "trusted", &b));
        assert_int_equal(b, get_bool(bus, path, "Trusted"));
        assert_true(json_get_bool(o, "can_sign", &b));
        assert_int_equal(b, get_bool(bus, path, "CanSign"));
        assert_true(json_get_bool(o, "can_encrypt", &b));
        assert_int_equal(b, get_bool(bus, path, "CanEncrypt"));
        assert_true(json_get_bool(o, "has_private_key", &b));
        assert_int_equal(b, get_bool(bus, path, "HasPrivateKey"));
        assert_true(json_get_bool(o, "is_ca", &b));
        assert_int_equal(b, get_bool(bus, path, "IsCA"));
        assert_int_equal(json_get(o, "addresses")->type, JSON_ARRAY);
}

static JsonValue *parse_json_output(const char *out, const char *what) {
        size_t where = 0;
        JsonValue *v = json_parse(out, &where);

        if (!v)
                fail_msg("%s: not JSON (at byte %zu): %s", what, where, out);
        return v;
}

static void test_smimectl_list(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(json_value_freep) JsonValue *all = NULL, *one = NULL, *upper = NULL;
        _cleanup_free_ char *out = NULL, *count = NULL, *text = NULL;
        const JsonValue *alice = NULL;
        int r;

        (void) state;
        r = smimectl((char *[]) { SMIMECTL_BINARY, "list", "--json", NULL }, &out, NULL);
        assert_int_equal(r, 0);
        all = parse_json_output(out, "list --json");
        assert_int_equal(all->type, JSON_ARRAY);
        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &count), 0);
        assert_int_equal(all->n, strtoul(count, NULL, 10));
        for (size_t i = 0; i < all->n; i++) {
                check_json_certificate(bus, all->items[i], "list --json");
                if (streq_ptr(json_get_string(all->items[i], "fingerprint"), leaves[ALICE].fp))
                        alice = all->items[i];
        }
        assert_non_null(alice);
        assert_string_equal(strempty(json_get_string(alice, "common_name")), "Alice");
        {
                const JsonValue *a = json_get(alice, "addresses");
                assert_int_equal(a->n, 1);
                assert_int_equal(a->items[0]->type, JSON_STRING);
                assert_string_equal(a->items[0]->text, "alice@example.com");
                assert_string_equal(strempty(json_get_string(alice, "key_algorithm")), "rsa");
                assert_int_equal(json_get(alice, "key_bits")->type, JSON_NUMBER);
                assert_string_equal(json_get(alice, "key_bits")->text, "2048");
        }

        /* --address picks, case-insensitively. */
        out = mfree(out);
        r = smimectl((char *[]) { SMIMECTL_BINARY, "list", "--address", "alice@example.com", "--json", NULL }, &out,
                     NULL);
        assert_int_equal(r, 0);
        one = parse_json_output(out, "list --address --json");
        assert_int_equal(one->type, JSON_ARRAY);
        assert_int_equal(one->n, 1);
        assert_string_equal(strempty(json_get_string(one->items[0], "fingerprint")), leaves[ALICE].fp);

        out = mfree(out);
        r = smimectl((char *[]) { SMIMECTL_BINARY, "list", "--address", "CAROL.UPPER@example.com", "--json", NULL },
                     &out, NULL);
        assert_int_equal(r, 0);
        upper = parse_json_output(out, "list --address (upper case) --json");
        assert_int_equal(upper->n, 1);
        assert_string_equal(strempty(json_get_string(upper->items[0], "fingerprint")), leaves[UPPER].fp);

        /* For people: that address, not others. */
        r = smimectl((char *[]) { SMIMECTL_BINARY, "list", "--address", "alice@example.com", NULL }, &text, NULL);
        assert_int_equal(r, 0);
        assert_non_null(strstr(text, "alice@example.com"));
        assert_null(strstr(text, "signer@example.com"));

        expect_smimectl_failure((char *[]) { SMIMECTL_BINARY, "list", "--address", "a b@c", NULL },
                                SMIMED_ERROR_INVALID_ARGUMENT);
}

static void test_smimectl_show(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(json_value_freep) JsonValue *by_fp = NULL, *by_address = NULL;
        _cleanup_free_ char *out = NULL, *text = NULL;
        char unknown[65];
        int r;

        (void) state;
        r = smimectl((char *[]) { SMIMECTL_BINARY, "show", leaves[SIGNER].fp, "--json", NULL }, &out, NULL);
        assert_int_equal(r, 0);
        by_fp = parse_json_output(out, "show FINGERPRINT --json");
        check_json_certificate(bus, by_fp, "show --json");
        assert_string_equal(strempty(json_get_string(by_fp, "fingerprint")), leaves[SIGNER].fp);

        out = mfree(out);
        r = smimectl((char *[]) { SMIMECTL_BINARY, "show", "signer@example.com", "--json", NULL }, &out, NULL);
        assert_int_equal(r, 0);
        by_address = parse_json_output(out, "show ADDRESS --json");
        {
                /* The certificate, or the address's certificates (signer has one). */
                const JsonValue *c = by_address;
                if (c->type == JSON_ARRAY) {
                        assert_int_equal(c->n, 1);
                        c = c->items[0];
                }
                check_json_certificate(bus, c, "show ADDRESS --json");
                assert_string_equal(strempty(json_get_string(c, "fingerprint")), leaves[SIGNER].fp);
        }

        r = smimectl((char *[]) { SMIMECTL_BINARY, "show", leaves[SIGNER].fp, NULL }, &text, NULL);
        assert_int_equal(r, 0);
        assert_non_null(strstr(text, "signer@example.com"));

        /* A fingerprint not in the store. */
        memset(unknown, '0', 64);
        unknown[64] = '\0';
        expect_smimectl_failure((char *[]) { SMIMECTL_BINARY, "show", unknown, NULL }, NULL);
}

/* The coverage row for "✅ sign" (mark_verb) and address: the line that
 * starts with mark_verb, then spaces (columns may be padded), then address,
 * then spaces; returns what follows, or NULL. */
static char *coverage_row(const char *out, const char *mark_verb, const char *address) {
        for (const char *l = out; l && *l;) {
                const char *end = strchrnul(l, '\n'), *p = l;

                if (strncmp(p, mark_verb, strlen(mark_verb)) == 0 && p[strlen(mark_verb)] == ' ') {
                        p += strlen(mark_verb);
                        p += strspn(p, " ");
                        if (strncmp(p, address, strlen(address)) == 0 && p[strlen(address)] == ' ') {
                                p += strlen(address);
                                p += strspn(p, " ");
                                return strndup(p, (size_t) (end - p));
                        }
                }
                l = *end ? end + 1 : end;
        }
        return NULL;
}

static bool has_row(const char *out, const char *mark_verb) {
        for (const char *l = out; l && *l;) {
                const char *end = strchrnul(l, '\n');
                if (strncmp(l, mark_verb, strlen(mark_verb)) == 0)
                        return true;
                l = *end ? end + 1 : end;
        }
        return false;
}

static void expect_row(const char *out, const char *mark_verb, const char *address, const char *rest) {
        _cleanup_free_ char *got = coverage_row(out, mark_verb, address);

        if (!got)
                fail_msg("coverage: no row \"%s %s …\" in:\n%s", mark_verb, address, out);
        if (!streq(got, rest))
                fail_msg("coverage: row \"%s %s\": expected \"%s\", got \"%s\"", mark_verb, address, rest, got);
}

static void test_smimectl_coverage(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL, *signer_summary = NULL, *alice_summary = NULL,
                            *ec_summary = NULL, *rest = NULL;
        Capability sign, *enc = NULL;
        int r;

        (void) state;
        signer_summary = expected_summary(leaves[SIGNER].cert, leaves[SIGNER].address);
        alice_summary = expected_summary(leaves[ALICE].cert, leaves[ALICE].address);
        ec_summary = expected_summary(leaves[EC].cert, leaves[EC].address);

        r = smimectl((char *[]) { SMIMECTL_BINARY, "coverage", "--from", "signer@example.com", "--to",
                                  "alice@example.com", "--to", "ec@example.com", NULL },
                     &out, &err);
        if (r != 0)
                fail_msg("smimectl coverage (everything possible): exit %d\n%s%s", r, out, err);
        expect_row(out, "✅ sign", "signer@example.com", signer_summary);
        expect_row(out, "✅ encrypt", "alice@example.com", alice_summary);
        expect_row(out, "✅ encrypt", "ec@example.com", ec_summary);

        /* One recipient missing, and a sender without the key: exit 3. */
        out = mfree(out);
        capabilities_ok("alice@example.com", (const char *[]) { "alice@example.com", "nobody@example.com", NULL }, &sign,
                        &enc);
        r = smimectl((char *[]) { SMIMECTL_BINARY, "coverage", "--from", "alice@example.com", "--to",
                                  "alice@example.com", "--to", "nobody@example.com", NULL },
                     &out, NULL);
        assert_int_equal(r, 3);
        assert_true(asprintf(&rest, "no-private-key: %s", sign.message) > 0);
        expect_row(out, "❌ sign", "alice@example.com", rest);
        rest = mfree(rest);
        expect_row(out, "✅ encrypt", "alice@example.com", alice_summary);
        assert_true(asprintf(&rest, "no-certificate: %s", enc[1].message) > 0);
        expect_row(out, "❌ encrypt", "nobody@example.com", rest);
        capability_done(&sign);
        capabilities_free(enc, 2);

        /* Only recipients, one of them expired. */
        out = mfree(out);
        r = smimectl((char *[]) { SMIMECTL_BINARY, "coverage", "--to", "expired@example.com", NULL }, &out, NULL);
        assert_int_equal(r, 3);
        assert_false(has_row(out, "✅ sign"));
        assert_false(has_row(out, "❌ sign"));
        {
                _cleanup_free_ char *row = coverage_row(out, "❌ encrypt", "expired@example.com");
                if (!row || strncmp(row, "expired: ", 9) != 0)
                        fail_msg("coverage: no \"❌ encrypt expired@example.com expired: …\" row in:\n%s", out);
        }
}

static void test_smimectl_coverage_json(void **state) {
        _cleanup_(json_value_freep) JsonValue *v = NULL, *w = NULL;
        _cleanup_free_ char *out = NULL, *summary = NULL;
        const JsonValue *s, *e;
        bool b;
        int r;

        (void) state;
        r = smimectl((char *[]) { SMIMECTL_BINARY, "coverage", "--to", "alice@example.com", "--json", NULL }, &out,
                     NULL);
        assert_int_equal(r, 0);
        v = parse_json_output(out, "coverage --json");
        s = json_get(v, "sign");
        e = json_get(v, "encrypt");
        assert_non_null(s);
        assert_int_equal(s->type, JSON_NULL);
        assert_non_null(e);
        assert_int_equal(e->type, JSON_ARRAY);
        assert_int_equal(e->n, 1);
        assert_string_equal(strempty(json_get_string(e->items[0], "address")), "alice@example.com");
        assert_true(json_get_bool(e->items[0], "possible", &b));
        assert_true(b);
        assert_string_equal(strempty(json_get_string(e->items[0], "reason")), "");
        assert_non_null(json_get_string(e->items[0], "message"));
        assert_string_equal(strempty(json_get_string(e->items[0], "fingerprint")), leaves[ALICE].fp);
        summary = expected_summary(leaves[ALICE].cert, leaves[ALICE].address);
        assert_string_equal(strempty(json_get_string(e->items[0], "summary")), summary);
        assert_non_null(json_get(e->items[0], "not_after"));
        assert_non_null(json_get_string(e->items[0], "subject"));
        assert_non_null(json_get_string(e->items[0], "issuer"));

        out = mfree(out);
        r = smimectl((char *[]) { SMIMECTL_BINARY, "coverage", "--from", "nobody@example.com", "--json", NULL }, &out,
                     NULL);
        assert_int_equal(r, 3);
        w = parse_json_output(out, "coverage --from --json");
        s = json_get(w, "sign");
        assert_non_null(s);
        assert_int_equal(s->type, JSON_OBJECT);
        assert_string_equal(strempty(json_get_string(s, "address")), "nobody@example.com");
        assert_true(json_get_bool(s, "possible", &b));
        assert_false(b);
        assert_string_equal(strempty(json_get_string(s, "reason")), "no-certificate");
        assert_non_null(strstr(strempty(json_get_string(s, "message")), "Ask your administrator to add it"));
        assert_int_equal(json_get(w, "encrypt")->type, JSON_ARRAY);
        assert_int_equal(json_get(w, "encrypt")->n, 0);
}

static void test_smimectl_remove(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_free_ char *out = NULL, *err = NULL, *path = NULL;
        char fp[65];
        int r;

        (void) state;
        assert_non_null(cli_b);
        assert_int_equal(pki_cert_fingerprint(cli_b, fp), 0);
        path = path_of_fp(fp);
        /* Independent of test_smimectl_import. */
        if (!object_exists(bus, path))
                import_certs_expect((const PkiCert *[]) { cli_b }, 1, false);

        r = smimectl((char *[]) { SMIMECTL_BINARY, "remove", fp, NULL }, &out, &err);
        if (r != 0)
                fail_msg("smimectl remove: exit %d: %s", r, err);
        assert_false(object_exists(bus, path));
        {
                _cleanup_(strv_freep) char **l = lookup_ok("cli.b@example.com", NULL, -1);
                assert_int_equal(strv_length(l), 0);
        }
        expect_smimectl_failure((char *[]) { SMIMECTL_BINARY, "remove", fp, NULL }, NULL);
}

static void expect_usage_error(char *const *argv) {
        _cleanup_free_ char *err = NULL;
        int r = smimectl(argv, NULL, &err);

        /* 2, and for the option or argument, not because the verb is unknown. */
        if (r != 2 || strstr(err, "unknown command"))
                fail_msg("smimectl %s %s: exit %d, expected 2 for a usage error: %s", argv[1], strempty(argv[2]), r,
                         err);
}

static void test_smimectl_usage_errors(void **state) {
        (void) state;
        expect_usage_error((char *[]) { SMIMECTL_BINARY, "remove", NULL });
        expect_usage_error((char *[]) { SMIMECTL_BINARY, "show", NULL });
        expect_usage_error((char *[]) { SMIMECTL_BINARY, "coverage", "--frobnicate", NULL });
        expect_usage_error((char *[]) { SMIMECTL_BINARY, "list", "--bogus", NULL });
        expect_usage_error((char *[]) { SMIMECTL_BINARY, "import", "--bogus", NULL });
        expect_usage_error((char *[]) { SMIMECTL_BINARY, "import-crl", "--bogus", NULL });
}

/* ---- token-unavailable, then a clean stop ---- */

static void test_token_unavailable(void **state) {
        _cleanup_free_ char *text = NULL, *absent = NULL, *store = NULL;
        Capability sign, *enc = NULL;
        int status;

        (void) state;
        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);

        /* Same store, a token that is not there. */
        store = harness_store_section(harness);
        assert_non_null(store);
        assert_true(asprintf(&text,
                             "[Token]\nModule=/usr/lib/softhsm/libsofthsm2.so\nURI=pkcs11:token=no-such-token\n"
                             "PINFile=%s\n%s",
                             harness->pin_file, store) > 0);
        absent = harness_write_file(harness, "absent.conf", text, 0644);
        assert_non_null(absent);
        assert_int_equal(harness_start_smimed(harness, absent, NULL), 0);

        capabilities_ok(leaves[SIGNER].address, (const char *[]) { leaves[ALICE].address, NULL }, &sign, &enc);
        check_capability(&sign, leaves[SIGNER].address, "token-unavailable", &leaves[SIGNER], "sign");
        /* Encryption needs no token. */
        check_capability(&enc[0], leaves[ALICE].address, "", &leaves[ALICE], "encrypt");
        capability_done(&sign);
        capabilities_free(enc, 1);

        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
        assert_int_equal(harness_start_smimed(harness, config_path, NULL), 0);
}

static void test_store_survives_restart(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_free_ char *status = NULL, *rpath = path_of(root);

        (void) state;
        assert_true(object_exists(bus, leaves[ALICE].path));
        assert_true(get_bool(bus, rpath, "Trusted"));
        status = get_string(bus, leaves[REVOKED].path, "Status");
        assert_string_equal(status, "revoked");
        assert_true(get_bool(bus, leaves[SIGNER].path, "HasPrivateKey"));
}

static void test_clean_stop(void **state) {
        int status;

        (void) state;
        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
}

int main(void) {
        /* The smimectl these tests run writes to pipes, where it would leave
         * emoji out: these tests check the lines a terminal shows
         * (test-ctl-output checks the choice itself). */
        setenv("SMIMECTL_EMOJI", "yes", 1);
        setenv("LC_ALL", "C.UTF-8", 1);

        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_store_starts_empty),
                cmocka_unit_test(test_import_one_pem_trusted_root),
                cmocka_unit_test(test_import_several_pem),
                cmocka_unit_test(test_import_der),
                cmocka_unit_test(test_import_pkcs7_der),
                cmocka_unit_test(test_import_pkcs7_pem),
                cmocka_unit_test(test_every_certificate_is_in_the_store),
                cmocka_unit_test(test_duplicate_import_is_harmless),
                cmocka_unit_test(test_batch_is_all_or_nothing),
                cmocka_unit_test(test_crl_revokes),
                cmocka_unit_test(test_crl_unknown_issuer),
                cmocka_unit_test(test_crl_bad_signature),
                cmocka_unit_test(test_every_status),
                cmocka_unit_test(test_certificate_properties),
                cmocka_unit_test(test_addresses_from_dn_and_lower_cased),
                cmocka_unit_test(test_capabilities_for_every_status),
                cmocka_unit_test(test_sign_with_the_token_key),
                cmocka_unit_test(test_no_certificate),
                cmocka_unit_test(test_malformed_addresses),
                cmocka_unit_test(test_lookup_filters),
                cmocka_unit_test(test_lookup_order),
                cmocka_unit_test(test_set_trusted),
                cmocka_unit_test(test_set_trusted_emits_properties_changed),
                cmocka_unit_test(test_remove),
                cmocka_unit_test(test_unprivileged_user),
                cmocka_unit_test(test_certificate_introspection_matches_xml),
                cmocka_unit_test(test_smimectl_import),
                cmocka_unit_test(test_smimectl_import_crl),
                cmocka_unit_test(test_older_crl_is_ignored),
                cmocka_unit_test(test_smimectl_list),
                cmocka_unit_test(test_smimectl_show),
                cmocka_unit_test(test_smimectl_coverage),
                cmocka_unit_test(test_smimectl_coverage_json),
                cmocka_unit_test(test_smimectl_remove),
                cmocka_unit_test(test_smimectl_usage_errors),
                cmocka_unit_test(test_token_unavailable),
                cmocka_unit_test(test_store_survives_restart),
                cmocka_unit_test(test_clean_stop),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
