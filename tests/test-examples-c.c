/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The C programs in examples/ run against a real smimed (SoftHSM2,
 * dbus-daemon, polkitd), as a mail application would: they find the bus in
 * DBUS_SYSTEM_BUS_ADDRESS, take the sender and recipient from argv, and
 * print one line per step. smimed-example is blocking; smimed-async-glib
 * does the same steps from a GLib main loop (skipped when glib-2.0 was not
 * there to build it). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "pki.h"
#include "smimed.h"

#define ALICE "alice@example.com"   /* the token key's certificate */
#define BOB "bob@example.com"       /* a certificate without a key in the token */
#define NOBODY "nobody@example.com" /* no certificate at all */

static Harness *harness;
static char leaf_fp[65];

static PkiCert *leaf_for(const char *cn, const char *address, EVP_PKEY *key, const PkiCert *issuer) {
        const char *addresses[] = {address, NULL};
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = cn;
        o.san_emails = addresses;
        o.key = key;
        c = pki_cert_new(&o, issuer);
        EVP_PKEY_free(key);
        return c;
}

static int import(smimed *s, const PkiCert *c, bool trust) {
        _cleanup_free_ char *pem = pki_cert_pem(c);
        smimed_error e = {};
        int r;

        if (!pem)
                return -ENOMEM;
        r = smimed_import_certificates(s, pem, strlen(pem), trust, NULL, &e);
        if (r < 0)
                fprintf(stderr, "import failed: %s: %s\n", strempty(e.name), strempty(e.message));
        smimed_error_done(&e);
        return r;
}

static int setup(void **state) {
        _cleanup_free_ char *config = NULL, *config_path = NULL;
        _cleanup_(pki_cert_freep) PkiCert *root = NULL, *leaf = NULL, *bob = NULL;
        smimed_error e = {};
        smimed *s = NULL;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r < 0)
                return r;
        config = harness_config_text(harness, NULL);
        config_path = config ? harness_write_file(harness, "smimed.conf", config, 0644) : NULL;
        if (!config_path)
                return -EIO;
        r = harness_start_smimed(harness, config_path, NULL);
        if (r < 0)
                return r;

        root = pki_root_ca("Examples Root");
        leaf = root ? leaf_for("Alice Example", ALICE, pki_public_key_from_pem_file(harness->key_pem), root) : NULL;
        bob = root ? leaf_for("Bob Example", BOB, pki_key_rsa(2048), root) : NULL;
        if (!leaf || !bob || pki_cert_fingerprint(leaf, leaf_fp) < 0)
                return -EIO;

        r = smimed_connect(&s, &e);
        smimed_error_done(&e);
        if (r < 0)
                return r;
        r = import(s, root, true);
        if (r >= 0)
                r = import(s, leaf, false);
        if (r >= 0)
                r = import(s, bob, false);
        smimed_close(s);
        return r < 0 ? r : 0;
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        return 0;
}

typedef struct Run {
        int status;
        char *out, *err;
} Run;

static void run_done(Run *r) {
        free(r->out);
        free(r->err);
        *r = (Run){};
}

static Run run(char **argv) {
        Run r = {};

        r.status = harness_run(harness, argv, false, &r.out, &r.err);
        assert_true(r.status >= 0);
        assert_non_null(r.out);
        assert_non_null(r.err);
        return r;
}

static void expect_line(const Run *r, const char *line) {
        _cleanup_free_ char *with_nl = NULL;

        assert_true(asprintf(&with_nl, "%s\n", line) > 0);
        if (!strstr(r->out, with_nl))
                fail_msg("no line \"%s\" in the output:\n--- stdout\n%s--- stderr\n%s---", line, r->out, r->err);
}

/* What both examples print when every step worked. */
static void expect_every_step(const Run *r, const char *what) {
        _cleanup_free_ char *signed_by = NULL;

        if (r->status != 0)
                fail_msg("%s: exit status %d\n--- stdout\n%s--- stderr\n%s---", what, r->status, r->out, r->err);
        expect_line(r, "can-sign: yes");
        expect_line(r, "can-encrypt " BOB ": yes");
        assert_true(asprintf(&signed_by, " bytes by %s\n", leaf_fp) > 0);
        if (!strstr(r->out, signed_by))
                fail_msg("%s: no signer %s in:\n%s", what, leaf_fp, r->out);
        assert_non_null(strstr(r->out, "sender can read it: yes\n"));
        expect_line(r, "decrypted: encryption=encrypted signature=valid");
        expect_line(r, "content-matches: yes");
}

static void test_c_example(void **state) {
        _cleanup_(run_done) Run r = {};

        (void) state;
        r = run((char *[]){(char *) SMIMED_EXAMPLE_BINARY, (char *) ALICE, (char *) BOB, NULL});
        expect_every_step(&r, "smimed-example");
}

/* A message of 512 KiB, from a file: results far larger than a pipe's
 * buffer come back (the library hands smimed memfds). */
static void test_c_example_large_message(void **state) {
        _cleanup_(run_done) Run r = {};
        _cleanup_free_ char *text = NULL, *file = NULL;
        size_t size = 512 * 1024, n;

        (void) state;
        text = malloc(size + 1024);
        assert_non_null(text);
        n = (size_t) sprintf(text, "From: <" ALICE ">\r\nTo: <" BOB ">\r\nSubject: large\r\nMIME-Version: 1.0\r\n"
                                   "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
        while (n < size) {
                memcpy(text + n, "All work and no play makes a large message, line after line.\r\n", 62);
                n += 62;
        }
        text[n] = '\0';
        file = harness_write_file(harness, "large.eml", text, 0644);
        assert_non_null(file);

        r = run((char *[]){(char *) SMIMED_EXAMPLE_BINARY, (char *) ALICE, (char *) BOB, file, NULL});
        expect_every_step(&r, "smimed-example with 512 KiB");
}

/* No certificate for the recipient: the example says why and stops. */
static void test_c_example_cannot_encrypt(void **state) {
        _cleanup_(run_done) Run r = {};

        (void) state;
        r = run((char *[]){(char *) SMIMED_EXAMPLE_BINARY, (char *) ALICE, (char *) NOBODY, NULL});
        assert_int_equal(r.status, 1);
        expect_line(&r, "can-sign: yes");
        expect_line(&r, "can-encrypt " NOBODY ": no (no-certificate)");
        assert_null(strstr(r.out, "signed:"));
        assert_true(r.err[0] != '\0');
}

static void test_glib_example(void **state) {
#ifdef SMIMED_ASYNC_GLIB_EXAMPLE_BINARY
        _cleanup_(run_done) Run r = {};

        (void) state;
        r = run((char *[]){(char *) SMIMED_ASYNC_GLIB_EXAMPLE_BINARY, (char *) ALICE, (char *) BOB, NULL});
        expect_every_step(&r, "smimed-async-glib");
#else
        (void) state;
        skip();
#endif
}

static void test_glib_example_cannot_encrypt(void **state) {
#ifdef SMIMED_ASYNC_GLIB_EXAMPLE_BINARY
        _cleanup_(run_done) Run r = {};

        (void) state;
        r = run((char *[]){(char *) SMIMED_ASYNC_GLIB_EXAMPLE_BINARY, (char *) ALICE, (char *) NOBODY, NULL});
        assert_int_equal(r.status, 1);
        expect_line(&r, "can-encrypt " NOBODY ": no (no-certificate)");
#else
        (void) state;
        skip();
#endif
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_c_example),
                cmocka_unit_test(test_c_example_large_message),
                cmocka_unit_test(test_c_example_cannot_encrypt),
                cmocka_unit_test(test_glib_example),
                cmocka_unit_test(test_glib_example_cannot_encrypt),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
