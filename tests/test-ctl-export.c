/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimectl export, trust and untrust against a real smimed: PEM and DER
 * equal to what was imported, by fingerprint, prefix and address, to stdout
 * and to -o FILE (left alone on failure); trust anchors made and taken away,
 * seen on the bus and in a leaf's status, and refused to the unprivileged
 * test user. One smimed for the file; the tests run in order. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"

#define ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"
#define UNKNOWN_OBJECT "org.freedesktop.DBus.Error.UnknownObject"

static Harness *harness;
static PkiCert *ca, *one, *two_a, *two_b;
static char ca_fp[65], one_fp[65], two_a_fp[65], two_b_fp[65];

/* ---- helpers ---- */

/* *out and *err (when given) are replaced: what an earlier run left there is freed. */
static int smimectl(char *const *argv, char **out, char **err) {
        if (out)
                *out = mfree(*out);
        if (err)
                *err = mfree(*err);
        return harness_run(harness, argv, false, out, err);
}

/* Exit 1 with one line on stderr that holds needle (a D-Bus error name, or
 * the words that say why); nothing on stdout. */
static void expect_failure(char *const *argv, bool as_test_user, const char *needle) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        int r = harness_run(harness, argv, as_test_user, &out, &err);

        if (r != 1)
                fail_msg("smimectl %s %s: exit %d, expected 1 (stderr: %s)", argv[1], argv[2], r, err);
        if (!strstr(err, needle))
                fail_msg("smimectl %s %s: stderr does not say \"%s\": \"%s\"", argv[1], argv[2], needle, err);
        if (!strchr(err, '\n') || !streq(strchr(err, '\n'), "\n"))
                fail_msg("smimectl %s %s: stderr is not one line: \"%s\"", argv[1], argv[2], err);
        if (out[0])
                fail_msg("smimectl %s %s: wrote to stdout on failure: \"%s\"", argv[1], argv[2], out);
}

static void expect_usage_error(char *const *argv) {
        _cleanup_free_ char *err = NULL;
        int r = smimectl(argv, NULL, &err);

        if (r != 2 || strstr(err, "unknown command"))
                fail_msg("smimectl %s: exit %d, expected 2 for a usage error: %s", argv[1], r, err);
}

static char *scratch_path(const char *name) {
        char *path;

        assert_true(asprintf(&path, "%s/%s", harness->dir, name) > 0);
        return path;
}

/* A whole file as bytes; NULL when it does not exist. */
static unsigned char *read_bytes(const char *path, size_t *ret_len) {
        _cleanup_free_ unsigned char *data = NULL;
        FILE *f = fopen(path, "re");
        struct stat st;

        if (!f)
                return NULL;
        assert_int_equal(fstat(fileno(f), &st), 0);
        data = malloc((size_t) st.st_size + 1);
        assert_non_null(data);
        assert_int_equal(fread(data, 1, (size_t) st.st_size, f), (size_t) st.st_size);
        fclose(f);
        data[st.st_size] = '\0';
        *ret_len = (size_t) st.st_size;
        return TAKE_PTR(data);
}

/* The export output is exactly the PEM of c (OpenSSL's own encoding). */
static void expect_pem_of(const char *got, const PkiCert *c, const char *what) {
        _cleanup_free_ char *want = pki_cert_pem(c);

        assert_non_null(want);
        if (!streq(got, want))
                fail_msg("%s: not the PEM of the imported certificate:\n--- want ---\n%s--- got ---\n%s", what, want,
                         got);
}

static void expect_der_of(const unsigned char *got, size_t got_len, const PkiCert *c, const char *what) {
        _cleanup_free_ unsigned char *der = NULL;
        size_t len;

        assert_int_equal(pki_cert_der(c, &der, &len), 0);
        if (got_len != len || memcmp(got, der, len) != 0)
                fail_msg("%s: %zu bytes, not the %zu bytes of the imported DER", what, got_len, len);
}

/* The sorted fingerprints of the PEM certificates in text. */
static size_t pem_fingerprints(const char *text, char (*ret)[65], size_t max) {
        BIO *b = BIO_new_mem_buf(text, -1);
        size_t n = 0;
        X509 *x;

        assert_non_null(b);
        while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
                PkiCert c = {.x509 = x};

                assert_true(n < max);
                assert_int_equal(pki_cert_fingerprint(&c, ret[n]), 0);
                n++;
                X509_free(x);
        }
        BIO_free(b);
        qsort(ret, n, sizeof(*ret), (int (*)(const void *, const void *)) strcmp);
        return n;
}

static bool cert_bool(const char *fp, const char *property) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        int b = -1;

        assert_int_equal(harness_bus_open(&bus), 0);
        assert_true(asprintf(&path, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", fp) > 0);
        if (sd_bus_get_property_trivial(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, property, &e, 'b',
                                        &b) < 0)
                fail_msg("Get %s of %s: %s: %s", property, fp, e.name, e.message);
        return b;
}

static char *cert_string(const char *fp, const char *property) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        char *s = NULL;

        assert_int_equal(harness_bus_open(&bus), 0);
        assert_true(asprintf(&path, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", fp) > 0);
        if (sd_bus_get_property_string(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, property, &e, &s) < 0)
                fail_msg("Get %s of %s: %s: %s", property, fp, e.name, e.message);
        return s;
}

static void expect_status(const char *fp, const char *want) {
        _cleanup_free_ char *status = cert_string(fp, "Status");

        if (!streq(status, want))
                fail_msg("Status of %s is \"%s\", expected \"%s\"", fp, status, want);
}

static PkiCert *leaf(const char *common_name, const char *address) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = common_name;
        o.san_emails = (const char *[]){address, NULL};
        c = pki_cert_new(&o, ca);
        assert_non_null(c);
        return c;
}

/* ---- fixture ---- */

static int setup(void **state) {
        _cleanup_free_ char *text = NULL, *config = NULL;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r < 0)
                return r;
        r = harness_start_bus(harness);
        if (r < 0)
                return r;
        text = harness_config_text(harness, NULL);
        config = harness_write_file(harness, "smimed.conf", text, 0644);
        if (!config)
                return -1;
        return harness_start_smimed(harness, config, NULL);
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        ca = pki_cert_free(ca);
        one = pki_cert_free(one);
        two_a = pki_cert_free(two_a);
        two_b = pki_cert_free(two_b);
        return 0;
}

/* A CA imported without trust, and three leaves under it: one for
 * one@example.com, two for two@example.com. */
static void test_import(void **state) {
        _cleanup_free_ char *pem = NULL, *file = NULL, *out = NULL, *err = NULL;
        int r;

        (void) state;
        ca = pki_root_ca("Export Test CA");
        assert_non_null(ca);
        one = leaf("One", "one@example.com");
        two_a = leaf("Two A", "two@example.com");
        two_b = leaf("Two B", "two@example.com");
        assert_int_equal(pki_cert_fingerprint(ca, ca_fp), 0);
        assert_int_equal(pki_cert_fingerprint(one, one_fp), 0);
        assert_int_equal(pki_cert_fingerprint(two_a, two_a_fp), 0);
        assert_int_equal(pki_cert_fingerprint(two_b, two_b_fp), 0);

        pem = pki_certs_pem((const PkiCert *[]){ca, one, two_a, two_b}, 4);
        assert_non_null(pem);
        file = scratch_path("all.pem");
        assert_int_equal(pki_write_file(file, pem, strlen(pem)), 0);
        r = smimectl((char *[]){SMIMECTL_BINARY, "import", file, NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl import: exit %d: %s", r, err);
        assert_false(cert_bool(ca_fp, "Trusted"));
        expect_status(one_fp, "untrusted");
}

/* ---- export ---- */

static void test_export_pem(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL, *prefix = NULL;
        int r;

        (void) state;
        r = smimectl((char *[]){SMIMECTL_BINARY, "export", one_fp, NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl export: exit %d: %s", r, err);
        expect_pem_of(out, one, "export FINGERPRINT");
        assert_string_equal(err, "");

        /* A unique prefix, upper-case with colons, names it as well. */
        out = mfree(out);
        assert_true(asprintf(&prefix, "%.2s:%.2s:%.2s:%.2s:%.2s", one_fp, one_fp + 2, one_fp + 4, one_fp + 6,
                             one_fp + 8) > 0);
        for (char *p = prefix; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char) (*p - 'a' + 'A');
        r = smimectl((char *[]){SMIMECTL_BINARY, "export", prefix, NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl export %s: exit %d: %s", prefix, r, err);
        expect_pem_of(out, one, "export PREFIX");
}

static void test_export_der(void **state) {
        _cleanup_free_ char *file = scratch_path("one.der"), *stdout_file = scratch_path("one-stdout.der"),
                            *cmd = NULL, *out = NULL, *err = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        size_t len = 0;
        int r;

        (void) state;
        r = smimectl((char *[]){SMIMECTL_BINARY, "export", one_fp, "--der", "-o", file, NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl export --der -o: exit %d: %s", r, err);
        assert_string_equal(out, "");
        der = read_bytes(file, &len);
        assert_non_null(der);
        expect_der_of(der, len, one, "export --der -o FILE");

        /* The same bytes on standard output (binary: through a shell's redirection). */
        der = mfree(der);
        assert_true(asprintf(&cmd, "exec '%s' export --der %s > '%s'", SMIMECTL_BINARY, one_fp, stdout_file) > 0);
        r = smimectl((char *[]){(char *) "/bin/sh", (char *) "-c", cmd, NULL}, NULL, &err);
        if (r != 0)
                fail_msg("smimectl export --der > FILE: exit %d: %s", r, err);
        der = read_bytes(stdout_file, &len);
        assert_non_null(der);
        expect_der_of(der, len, one, "export --der to stdout");
}

static void test_export_address(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        char got[4][65], want[2][65];
        int r;

        (void) state;
        r = smimectl((char *[]){SMIMECTL_BINARY, "export", "one@example.com", NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl export one@example.com: exit %d: %s", r, err);
        expect_pem_of(out, one, "export ADDRESS");

        /* Both of an address with two, any case, as concatenated PEM. */
        out = mfree(out);
        r = smimectl((char *[]){SMIMECTL_BINARY, "export", "Two@Example.com", NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl export two@example.com: exit %d: %s", r, err);
        assert_int_equal(pem_fingerprints(out, got, 4), 2);
        memcpy(want[0], two_a_fp, 65);
        memcpy(want[1], two_b_fp, 65);
        qsort(want, 2, sizeof(want[0]), (int (*)(const void *, const void *)) strcmp);
        assert_string_equal(got[0], want[0]);
        assert_string_equal(got[1], want[1]);
        {
                /* Nothing but the two PEM blocks. */
                _cleanup_free_ char *a = pki_cert_pem(two_a), *b = pki_cert_pem(two_b);
                assert_int_equal(strlen(out), strlen(a) + strlen(b));
                assert_true(strstr(out, a) && strstr(out, b));
        }

        /* DER holds one: pick a fingerprint. */
        expect_failure((char *[]){SMIMECTL_BINARY, "export", "two@example.com", "--der", NULL}, false, "fingerprint");
        /* An address without certificates. */
        expect_failure((char *[]){SMIMECTL_BINARY, "export", "nobody@example.com", NULL}, false,
                       "no certificate for nobody@example.com");
}

static bool dir_has_temp_files(void) {
        DIR *d = opendir(harness->dir);
        struct dirent *de;
        bool found = false;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (strncmp(de->d_name, ".kept.pem.", 10) == 0 || strncmp(de->d_name, ".new.pem.", 9) == 0)
                        found = true;
        closedir(d);
        return found;
}

static void test_export_to_file(void **state) {
        _cleanup_free_ char *file = scratch_path("kept.pem"), *fresh = scratch_path("new.pem"), *out = NULL,
                            *err = NULL, *content = NULL;
        char unknown[65];
        const char *old = "what was here before\n";
        int r;

        (void) state;
        r = smimectl((char *[]){SMIMECTL_BINARY, "export", one_fp, "-o", file, NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl export -o: exit %d: %s", r, err);
        assert_string_equal(out, "");
        content = harness_read_file(file);
        assert_non_null(content);
        expect_pem_of(content, one, "export -o FILE");

        /* A fingerprint not in the store: exit 1, the D-Bus error named, the
         * file as it was, a new one never made. */
        memset(unknown, 'e', 64);
        unknown[64] = '\0';
        assert_int_equal(pki_write_file(file, old, strlen(old)), 0);
        expect_failure((char *[]){SMIMECTL_BINARY, "export", unknown, "-o", file, NULL}, false, UNKNOWN_OBJECT);
        content = mfree(content);
        content = harness_read_file(file);
        assert_string_equal(content, old);
        expect_failure((char *[]){SMIMECTL_BINARY, "export", unknown, "--der", "-o", fresh, NULL}, false,
                       UNKNOWN_OBJECT);
        assert_int_equal(access(fresh, F_OK), -1);
        assert_false(dir_has_temp_files());
}

static void test_export_bad_fingerprints(void **state) {
        _cleanup_free_ char *cut = NULL, *dots = NULL;

        (void) state;
        /* As list prints it: 16 digits and "…". */
        assert_true(asprintf(&cut, "%.16s…", one_fp) > 0);
        assert_true(asprintf(&dots, "%.16s...", one_fp) > 0);
        expect_failure((char *[]){SMIMECTL_BINARY, "export", cut, NULL}, false, "cut short");
        expect_failure((char *[]){SMIMECTL_BINARY, "export", dots, NULL}, false, "cut short");
        expect_failure((char *[]){SMIMECTL_BINARY, "trust", cut, NULL}, false, "cut short");
        /* Too short to be a prefix, and not hex. */
        expect_failure((char *[]){SMIMECTL_BINARY, "export", "abc", NULL}, false, "is not a fingerprint");
        expect_failure((char *[]){SMIMECTL_BINARY, "export", "not-hex-at-all", NULL}, false, "is not a fingerprint");
        /* A prefix no certificate has (the first digit changed). */
        {
                char prefix[13];

                memcpy(prefix, one_fp, 12);
                prefix[12] = '\0';
                prefix[0] = prefix[0] == '0' ? '1' : '0';
                /* Only when that makes a prefix nothing else starts with. */
                if (strncmp(prefix, ca_fp, 12) && strncmp(prefix, two_a_fp, 12) && strncmp(prefix, two_b_fp, 12))
                        expect_failure((char *[]){SMIMECTL_BINARY, "export", prefix, NULL}, false,
                                       "No certificate has a fingerprint that starts with");
        }
}

/* ---- trust, untrust ---- */

static void test_trust_untrust(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL, *want = NULL;
        int r;

        (void) state;
        assert_false(cert_bool(ca_fp, "Trusted"));
        expect_status(one_fp, "untrusted");

        r = smimectl((char *[]){SMIMECTL_BINARY, "trust", ca_fp, NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl trust: exit %d: %s", r, err);
        assert_true(asprintf(&want, "%s is now a trust anchor\n", ca_fp) > 0);
        assert_string_equal(out, want);
        assert_true(cert_bool(ca_fp, "Trusted"));
        expect_status(one_fp, "valid");
        expect_status(two_a_fp, "valid");

        out = mfree(out);
        want = mfree(want);
        /* By a prefix too. */
        {
                char prefix[17];

                memcpy(prefix, ca_fp, 16);
                prefix[16] = '\0';
                r = smimectl((char *[]){SMIMECTL_BINARY, "untrust", prefix, NULL}, &out, &err);
        }
        if (r != 0)
                fail_msg("smimectl untrust: exit %d: %s", r, err);
        assert_true(asprintf(&want, "%s is no longer a trust anchor\n", ca_fp) > 0);
        assert_string_equal(out, want);
        assert_false(cert_bool(ca_fp, "Trusted"));
        expect_status(one_fp, "untrusted");

        /* A fingerprint not in the store. */
        {
                char unknown[65];

                memset(unknown, 'd', 64);
                unknown[64] = '\0';
                expect_failure((char *[]){SMIMECTL_BINARY, "trust", unknown, NULL}, false, UNKNOWN_OBJECT);
        }
}

static void test_trust_refused_to_unprivileged_user(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        int r;

        (void) state;
        expect_failure((char *[]){SMIMECTL_BINARY, "trust", ca_fp, NULL}, true, ACCESS_DENIED);
        assert_false(cert_bool(ca_fp, "Trusted"));
        expect_status(one_fp, "untrusted");

        /* And the other way. */
        r = smimectl((char *[]){SMIMECTL_BINARY, "trust", ca_fp, NULL}, &out, &err);
        if (r != 0)
                fail_msg("smimectl trust: exit %d: %s", r, err);
        expect_failure((char *[]){SMIMECTL_BINARY, "untrust", ca_fp, NULL}, true, ACCESS_DENIED);
        assert_true(cert_bool(ca_fp, "Trusted"));
        expect_status(one_fp, "valid");

        /* Export needs no privilege. */
        out = mfree(out);
        err = mfree(err);
        r = harness_run(harness, (char *[]){SMIMECTL_BINARY, "export", one_fp, NULL}, true, &out, &err);
        if (r != 0)
                fail_msg("smimectl export as " HARNESS_TEST_USER ": exit %d: %s", r, err);
        expect_pem_of(out, one, "export as " HARNESS_TEST_USER);
}

static void test_usage_errors(void **state) {
        (void) state;
        expect_usage_error((char *[]){SMIMECTL_BINARY, "export", NULL});
        expect_usage_error((char *[]){SMIMECTL_BINARY, "export", one_fp, two_a_fp, NULL});
        expect_usage_error((char *[]){SMIMECTL_BINARY, "export", one_fp, "--json", NULL});
        expect_usage_error((char *[]){SMIMECTL_BINARY, "trust", NULL});
        expect_usage_error((char *[]){SMIMECTL_BINARY, "trust", ca_fp, "--der", NULL});
        expect_usage_error((char *[]){SMIMECTL_BINARY, "untrust", ca_fp, "-o", "x", NULL});
        expect_usage_error((char *[]){SMIMECTL_BINARY, "show", one_fp, "--der", NULL});
}

static void test_clean_stop(void **state) {
        int status;

        (void) state;
        status = harness_stop_smimed(harness);
        if (status != 0)
                fail_msg("smimed exited with %d, see %s", status, harness->smimed_log);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_import),         cmocka_unit_test(test_export_pem),
                cmocka_unit_test(test_export_der),     cmocka_unit_test(test_export_address),
                cmocka_unit_test(test_export_to_file), cmocka_unit_test(test_export_bad_fingerprints),
                cmocka_unit_test(test_trust_untrust),  cmocka_unit_test(test_trust_refused_to_unprivileged_user),
                cmocka_unit_test(test_usage_errors),   cmocka_unit_test(test_clean_stop),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
