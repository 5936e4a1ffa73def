/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimed's command line and bad configuration files: the real binary must
 * refuse to start and name the file, line and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "harness.h"

static Harness *harness;

static int setup(void **state) {
        (void) state;
        return harness_new(&harness);
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        return 0;
}

/* Starts smimed on text; it must exit 1 and its stderr contain FILE:want. */
static void expect_refused(const char *name, const char *text, const char *want) {
        _cleanup_free_ char *path = harness_write_file(harness, name, text, 0644);
        _cleanup_free_ char *err = NULL, *expected = NULL;
        char *const argv[] = { SMIMED_BINARY, "--config", path, NULL };

        assert_non_null(path);
        assert_int_equal(harness_run(harness, argv, false, NULL, &err), 1);
        assert_true(asprintf(&expected, "%s:%s", path, want) > 0);
        if (!strstr(err, expected))
                fail_msg("expected \"%s\" in smimed's output:\n%s", expected, err);
}

static void test_unknown_key(void **state) {
        (void) state;
        expect_refused("unknown-key.conf", "[Token]\nURI=pkcs11:token=x\nSlot=3\n", "3: [Token] Slot=: unknown key");
}

static void test_unknown_section(void **state) {
        (void) state;
        expect_refused("unknown-section.conf", "[Token]\n\n[Keys]\n", "3: unknown section [Keys]");
}

static void test_bad_boolean(void **state) {
        (void) state;
        expect_refused("bad-bool.conf", "[Policy]\nEnabled=sometimes\n", "2: [Policy] Enabled=: expected a boolean");
}

static void test_relative_store_path(void **state) {
        (void) state;
        expect_refused("relative.conf", "# comment\n[Store]\nPath=store.db\n", "3: [Store] Path=: expected an absolute path");
}

static void test_bad_uri(void **state) {
        (void) state;
        expect_refused("bad-uri.conf", "[Token]\nURI=softhsm:token=x\n", "2: [Token] URI=: not a valid RFC 7512 pkcs11: URI");
}

static void test_bad_revocation(void **state) {
        (void) state;
        expect_refused("bad-method.conf", "[Revocation]\nMethod=crl\nMethod=ldap\n",
                       "3: [Revocation] Method=: unknown method \"ldap\"");
        expect_refused("bad-unknown.conf", "[Revocation]\nUnknown=strict\n",
                       "2: [Revocation] Unknown=: expected soft or hard");
        expect_refused("bad-fetch-timeout.conf", "[Revocation]\nFetchTimeoutSec=soon\n",
                       "2: [Revocation] FetchTimeoutSec=: expected a number of seconds");
}

static void test_missing_explicit_config(void **state) {
        _cleanup_free_ char *err = NULL, *path = NULL;
        char *argv[] = { SMIMED_BINARY, "--config", NULL, NULL };

        (void) state;
        assert_true(asprintf(&path, "%s/does-not-exist.conf", harness->dir) > 0);
        argv[2] = path;
        assert_int_equal(harness_run(harness, argv, false, NULL, &err), 1);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "No such file"));
}

static void test_help_and_version(void **state) {
        _cleanup_free_ char *help = NULL, *version = NULL, *err = NULL;
        char *const help_argv[] = { SMIMED_BINARY, "--help", NULL };
        char *const version_argv[] = { SMIMED_BINARY, "--version", NULL };
        char *const bad_argv[] = { SMIMED_BINARY, "--frobnicate", NULL };

        (void) state;
        assert_int_equal(harness_run(harness, help_argv, false, &help, NULL), 0);
        assert_non_null(strstr(help, "--config=FILE"));
        assert_non_null(strstr(help, "/etc/smimed/smimed.conf"));
        assert_int_equal(harness_run(harness, version_argv, false, &version, NULL), 0);
        assert_string_equal(version, "smimed " SMIMED_VERSION "\n");
        assert_int_equal(harness_run(harness, bad_argv, false, NULL, &err), 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unknown_key),
                cmocka_unit_test(test_unknown_section),
                cmocka_unit_test(test_bad_boolean),
                cmocka_unit_test(test_relative_store_path),
                cmocka_unit_test(test_bad_uri),
                cmocka_unit_test(test_bad_revocation),
                cmocka_unit_test(test_missing_explicit_config),
                cmocka_unit_test(test_help_and_version),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
