/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the subject parser used by GenerateKey. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "certificate-request.h"
#include "macro.h"
#include "openssl-util.h"

static char *oneline(const char *s) {
        X509_NAME *name = NULL;
        char buf[512];

        assert_int_equal(parse_distinguished_name(s, &name), 0);
        X509_NAME_oneline(name, buf, sizeof(buf));
        X509_NAME_free(name);
        return strdup(buf);
}

static void test_comma_form(void **state) {
        char *s = oneline("CN=Alice Example, O=Example Org,C=DE");

        (void) state;
        assert_string_equal(s, "/CN=Alice Example/O=Example Org/C=DE");
        free(s);
}

static void test_slash_form(void **state) {
        char *s = oneline("/CN=Bob/OU=Mail/emailAddress=bob@example.com");

        (void) state;
        assert_string_equal(s, "/CN=Bob/OU=Mail/emailAddress=bob@example.com");
        free(s);
}

static void test_escapes_and_utf8(void **state) {
        char *s = oneline("CN=Doe\\, Jane,O=Müller GmbH");
        X509_NAME *name = NULL;
        char cn[64];

        (void) state;
        assert_int_equal(parse_distinguished_name("CN=Doe\\, Jane,O=M\xc3\xbcller GmbH", &name), 0);
        assert_true(X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof(cn)) > 0);
        assert_string_equal(cn, "Doe, Jane");
        assert_int_equal(X509_NAME_entry_count(name), 2);
        X509_NAME_free(name);
        free(s);
}

static void test_refused(void **state) {
        static const char *const bad[] = { "", "/", "CN", "=Alice", "CN=", "XX=unknown type", "CN=a,,O=b" };
        X509_NAME *name = NULL;

        (void) state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (parse_distinguished_name(bad[i], &name) != -EINVAL)
                        fail_msg("\"%s\" was accepted", bad[i]);
                assert_null(name);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_comma_form),
                cmocka_unit_test(test_slash_form),
                cmocka_unit_test(test_escapes_and_utf8),
                cmocka_unit_test(test_refused),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
