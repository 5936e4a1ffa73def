/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of policy.c: [Policy] Enabled=, AllowedDigests=,
 * AllowSHA1Signatures= and DefaultCipher= as every method applies them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/objects.h>

#include "config.h"
#include "policy.h"

static Config *parse(const char *text) {
        ConfigError error = {};
        Config *config = NULL;

        if (config_parse(text, "test.conf", &config, &error) < 0)
                fail_msg("cannot parse: %s", error.message);
        config_error_done(&error);
        return config;
}

static void test_enabled(void **state) {
        _cleanup_(config_freep) Config *on = parse(""), *off = parse("[Policy]\nEnabled=no\n");
        _cleanup_free_ char *message = NULL;

        assert_int_equal(policy_check_enabled(on, &message), 0);
        assert_null(message);
        assert_int_equal(policy_check_enabled(off, &message), -ESHUTDOWN);
        assert_non_null(strstr(message, "Enabled=no"));
}

static void test_sign_digest(void **state) {
        _cleanup_(config_freep) Config *dflt = parse(""), *strong = parse("[Policy]\nAllowedDigests=sha-512\n");
        const EVP_MD *md = NULL;
        char *message = NULL;

        /* None asked: the first usual one allowed. */
        assert_int_equal(policy_sign_digest(dflt, NULL, &md, &message), 0);
        assert_int_equal(EVP_MD_get_type(md), NID_sha256);
        assert_int_equal(policy_sign_digest(strong, NULL, &md, &message), 0);
        assert_int_equal(EVP_MD_get_type(md), NID_sha512);

        assert_int_equal(policy_sign_digest(dflt, "sha-384", &md, &message), 0);
        assert_int_equal(EVP_MD_get_type(md), NID_sha384);

        md = NULL;
        assert_int_equal(policy_sign_digest(strong, "sha-256", &md, &message), -EPERM);
        assert_null(md);
        assert_non_null(strstr(message, "AllowedDigests=sha-512"));
        free(message);
        message = NULL;

        assert_int_equal(policy_sign_digest(dflt, "md5", &md, &message), -EINVAL);
        assert_non_null(strstr(message, "Unknown digest \"md5\""));
        free(message);
}

static void test_cipher(void **state) {
        _cleanup_(config_freep) Config *dflt = parse(""), *gcm = parse("[Policy]\nDefaultCipher=aes-128-gcm\n");
        const EVP_CIPHER *cipher = NULL;
        char *message = NULL;

        assert_int_equal(policy_cipher(dflt, NULL, &cipher, &message), 0);
        assert_int_equal(EVP_CIPHER_get_nid(cipher), NID_aes_256_cbc);
        assert_int_equal(policy_cipher(gcm, NULL, &cipher, &message), 0);
        assert_int_equal(EVP_CIPHER_get_nid(cipher), NID_aes_128_gcm);
        assert_int_equal(policy_cipher(gcm, "aes-256-gcm", &cipher, &message), 0);
        assert_int_equal(EVP_CIPHER_get_nid(cipher), NID_aes_256_gcm);
        assert_int_equal(policy_cipher(dflt, "des-ede3-cbc", &cipher, &message), -EINVAL);
        assert_non_null(strstr(message, "des-ede3-cbc"));
        free(message);
}

static void test_weak_digest(void **state) {
        _cleanup_(config_freep) Config *dflt = parse(""), *sha1 = parse("[Policy]\nAllowSHA1Signatures=yes\n"),
                                       *strong = parse("[Policy]\nAllowedDigests=sha-384 sha-512\n");

        assert_true(policy_digest_is_weak(dflt, NID_md5));
        assert_true(policy_digest_is_weak(sha1, NID_md5));
        assert_true(policy_digest_is_weak(dflt, NID_sha1));
        assert_false(policy_digest_is_weak(sha1, NID_sha1));
        assert_false(policy_digest_is_weak(dflt, NID_sha256));
        assert_true(policy_digest_is_weak(strong, NID_sha256));
        assert_false(policy_digest_is_weak(strong, NID_sha384));
        assert_true(policy_digest_is_weak(dflt, NID_undef));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_enabled),
                cmocka_unit_test(test_sign_digest),
                cmocka_unit_test(test_cipher),
                cmocka_unit_test(test_weak_digest),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
