/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* crl-fetch.c without a server: which distribution points a certificate
 * names, and what a download refuses before the network is involved. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crl-fetch.h"
#include "pki.h"
#include "strv.h"

static PkiCert *ca;

static PkiCert *leaf_with(const char *crl_uri) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = "leaf";
        o.crl_uri = crl_uri;
        c = pki_cert_new(&o, ca);
        assert_non_null(c);
        return c;
}

static void test_http_and_ldap(void **state) {
        /* pki.c writes "URI:" before crl_uri: more names ride along. */
        _cleanup_(pki_cert_freep) PkiCert *leaf =
                leaf_with("http://crl.example.com/ca.crl,URI:ldap://ldap.example.com/cn=CA?certificateRevocationList,"
                          "URI:HTTP://crl2.example.com/ca.crl,URI:http://crl.example.com/ca.crl,URI:https://x/ca.crl,"
                          "URI:LDAPS://ldap.example.com/cn=CA,URI:ftp://x/ca.crl");
        _cleanup_(strv_freep) char **uris = NULL;

        (void) state;
        assert_int_equal(crl_distribution_points(leaf->x509, &uris), 0);
        assert_int_equal(strv_length(uris), 4);
        assert_string_equal(uris[0], "http://crl.example.com/ca.crl");
        assert_string_equal(uris[1], "ldap://ldap.example.com/cn=CA?certificateRevocationList");
        assert_string_equal(uris[2], "HTTP://crl2.example.com/ca.crl");
        assert_string_equal(uris[3], "LDAPS://ldap.example.com/cn=CA");
}

static void test_none(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *leaf = leaf_with(NULL);
        char **uris = (char **) 1;

        (void) state;
        assert_int_equal(crl_distribution_points(leaf->x509, &uris), 0);
        assert_null(uris);
}

/* Nothing listens on port 9 of loopback here, or something refuses: either
 * way a failure within the timeout, with a message naming the URI. */
static void test_unreachable(void **state) {
        X509_CRL *crl = NULL;
        char *message = NULL;
        int r;

        (void) state;
        r = crl_download("http://127.0.0.1:9/ca.crl", ca->x509, 1000000, 65536, &crl, &message);
        assert_true(r < 0);
        assert_null(crl);
        assert_non_null(message);
        assert_non_null(strstr(message, "http://127.0.0.1:9/ca.crl"));
        free(message);
}

/* An LDAP distribution point: one without a server or an entry is refused
 * before the network; one whose server does not answer fails within the
 * timeout; either way with a message naming the URL. */
static void test_ldap_unusable(void **state) {
        static const struct {
                const char *url;
                int error;
        } cases[] = {
                {"ldap:///cn=CA,dc=example,dc=com?certificateRevocationList;binary", -EINVAL},
                {"ldap://127.0.0.1:9/", -EINVAL},
                {"ldap://127.0.0.1:9/cn=CA,dc=example,dc=com?certificateRevocationList;binary", -ECONNREFUSED},
        };

        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                X509_CRL *crl = NULL;
                char *message = NULL;
                int r;

                r = crl_download(cases[i].url, ca->x509, 1000000, 65536, &crl, &message);
                if (r != cases[i].error)
                        fail_msg("%s: %d (%s), expected %d", cases[i].url, r, strempty(message), cases[i].error);
                assert_null(crl);
                assert_non_null(message);
                assert_non_null(strstr(message, cases[i].url));
                free(message);
        }
}

static int setup(void **state) {
        (void) state;
        ca = pki_root_ca("Fetch Test CA");
        return ca ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        ca = pki_cert_free(ca);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http_and_ldap),
                cmocka_unit_test(test_ldap_unusable),
                cmocka_unit_test(test_none),
                cmocka_unit_test(test_unreachable),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
