/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The token layer against a real SoftHSM2 token: login, and a private key in
 * the token used through OpenSSL's EVP API by way of the PKCS#11 engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"
#include "harness.h"
#include "token.h"

#define KEY_URI "pkcs11:token=" HARNESS_TOKEN_LABEL ";id=%" HARNESS_KEY_ID_HEX ";type=private"

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

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN_URI "pkcs11:token=" HARNESS_TOKEN_LABEL

/* A token on the given [Token] settings (NULL: unset), opened; its state must
 * be expected. */
static Token *open_token_with(const char *module, const char *uri, const char *pin_file, TokenState expected) {
        _cleanup_(config_freep) Config *config = NULL;
        Token *token = NULL;

        assert_int_equal(config_new_default(&config), 0);
        assert_int_equal(free_and_strdup(&config->token_module, module), 0);
        assert_int_equal(free_and_strdup(&config->token_uri, uri), 0);
        assert_int_equal(free_and_strdup(&config->token_pin_file, pin_file), 0);

        assert_int_equal(token_new(config, &token), 0);
        assert_int_equal(token_open(token), expected);
        assert_int_equal(token_get_state(token), expected);
        return token;
}

static Token *open_token(const char *pin_file, TokenState expected) {
        return open_token_with(SOFTHSM_MODULE, TOKEN_URI, pin_file, expected);
}

static EVP_PKEY *read_public_key(void) {
        EVP_PKEY *pkey;
        FILE *f;

        f = fopen(harness->key_pem, "re");
        assert_non_null(f);
        pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
        fclose(f);
        assert_non_null(pkey);
        return pkey;
}

static size_t sign(EVP_PKEY *key, const unsigned char *data, size_t size, unsigned char *sig, size_t sig_size) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t len = sig_size;

        assert_non_null(ctx);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &len, data, size), 1);
        EVP_MD_CTX_free(ctx);
        return len;
}

static int verify(EVP_PKEY *key, const unsigned char *data, size_t size, const unsigned char *sig, size_t sig_len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int r;

        assert_non_null(ctx);
        assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
        r = EVP_DigestVerify(ctx, sig, sig_len, data, size);
        EVP_MD_CTX_free(ctx);
        return r;
}

static void test_login_and_label(void **state) {
        _cleanup_(token_freep) Token *token = open_token(harness->pin_file, TOKEN_STATE_READY);
        TokenKey *keys = NULL;
        size_t n = 0;

        (void) state;
        assert_string_equal(token_get_label(token), HARNESS_TOKEN_LABEL);
        assert_string_equal(token_get_state_reason(token), "");
        assert_non_null(strstr(token_get_module_path(token), "softhsm2"));
        assert_int_equal(token_list_keys(token, &keys, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(keys[0].id, HARNESS_KEY_ID_HEX);
        assert_string_equal(keys[0].label, HARNESS_KEY_LABEL);
        assert_string_equal(keys[0].algorithm, "rsa");
        assert_int_equal(keys[0].bits, 2048);
        assert_int_equal(strlen(keys[0].spki_sha256), 64);
        token_keys_free(keys, n);
}

static void test_token_key_signs_through_evp(void **state) {
        _cleanup_(token_freep) Token *token = open_token(harness->pin_file, TOKEN_STATE_READY);
        static const unsigned char message[] = "Subject: hello\r\n\r\nsigned inside the token\r\n";
        unsigned char sig[1024];
        EVP_PKEY *private_key = NULL, *public_key;
        BIGNUM *d = NULL;
        size_t sig_len;

        (void) state;
        assert_int_equal(token_load_private_key(token, KEY_URI, &private_key), 0);
        assert_non_null(private_key);
        assert_int_equal(EVP_PKEY_get_base_id(private_key), EVP_PKEY_RSA);
        assert_int_equal(EVP_PKEY_get_bits(private_key), 2048);

        /* The private exponent stays in the token: OpenSSL only holds a handle. */
        assert_int_equal(EVP_PKEY_get_bn_param(private_key, OSSL_PKEY_PARAM_RSA_D, &d), 0);
        assert_null(d);

        sig_len = sign(private_key, message, sizeof(message) - 1, sig, sizeof(sig));
        assert_int_equal(sig_len, 256);

        public_key = read_public_key();
        assert_int_equal(EVP_PKEY_eq(private_key, public_key), 1);
        assert_int_equal(verify(public_key, message, sizeof(message) - 1, sig, sig_len), 1);

        /* The check is real: one changed byte fails it. */
        sig[10] ^= 0x01;
        assert_int_not_equal(verify(public_key, message, sizeof(message) - 1, sig, sig_len), 1);

        EVP_PKEY_free(public_key);
        EVP_PKEY_free(private_key);
}

/* A token opened again (a rescan, a reload, a module loaded anew after a
 * failure) signs as before: the engine must not keep sessions of the module
 * it knew before, which died with its finalization. Twice, with a key
 * forgotten in between, as key removal does. */
static void test_reopened_token_still_signs(void **state) {
        _cleanup_(token_freep) Token *token = open_token(harness->pin_file, TOKEN_STATE_READY);
        static const unsigned char message[] = "signed before and after a reopen";
        EVP_PKEY *public_key = read_public_key();

        (void) state;
        for (int round = 0; round < 3; round++) {
                EVP_PKEY *private_key = NULL;
                unsigned char sig[1024];
                size_t sig_len;

                if (round > 0)
                        assert_int_equal(token_open(token), TOKEN_STATE_READY);
                assert_int_equal(token_load_private_key(token, KEY_URI, &private_key), 0);
                sig_len = sign(private_key, message, sizeof(message) - 1, sig, sizeof(sig));
                assert_int_equal(verify(public_key, message, sizeof(message) - 1, sig, sig_len), 1);
                EVP_PKEY_free(private_key);
                if (round == 1)
                        token_forget_keys(token);
        }
        EVP_PKEY_free(public_key);
}

static void test_unknown_key_uri(void **state) {
        _cleanup_(token_freep) Token *token = open_token(harness->pin_file, TOKEN_STATE_READY);
        EVP_PKEY *pkey = NULL;

        (void) state;
        assert_int_equal(token_load_private_key(token, "pkcs11:token=" HARNESS_TOKEN_LABEL ";id=%7f;type=private",
                                                &pkey),
                         -ENOKEY);
        assert_null(pkey);
}

static void test_wrong_pin_is_locked_and_not_retried(void **state) {
        _cleanup_free_ char *wrong = harness_write_file(harness, "wrong-pin", "not-the-pin\n", 0600);
        _cleanup_(token_freep) Token *token = open_token(wrong, TOKEN_STATE_LOCKED);
        EVP_PKEY *pkey = NULL;

        (void) state;
        assert_non_null(strstr(token_get_state_reason(token), "refused the PIN"));
        assert_null(strstr(token_get_state_reason(token), "not-the-pin"));
        assert_int_equal(token_load_private_key(token, KEY_URI, &pkey), -ENODEV);

        /* A second open does not present the refused PIN again. */
        assert_int_equal(token_open(token), TOKEN_STATE_LOCKED);
        assert_non_null(strstr(token_get_state_reason(token), "fix the PIN file and reload"));
}

static void test_absent_token(void **state) {
        _cleanup_(token_freep) Token *token =
                open_token_with(SOFTHSM_MODULE, "pkcs11:token=no-such-token", NULL, TOKEN_STATE_ABSENT);

        (void) state;
        assert_null(token_get_label(token));
        assert_non_null(strstr(token_get_state_reason(token), "pkcs11:token=no-such-token"));
}

static void test_missing_module(void **state) {
        _cleanup_(token_freep) Token *token =
                open_token_with("/nonexistent/libpkcs11.so", NULL, NULL, TOKEN_STATE_ERROR);

        (void) state;
        assert_non_null(strstr(token_get_state_reason(token), "/nonexistent/libpkcs11.so"));
}

/* Without Module=, the modules p11-kit is configured with (Debian registers
 * SoftHSM2 in /usr/share/p11-kit/modules) are searched for the URI. */
static void test_module_from_p11kit_configuration(void **state) {
        _cleanup_(token_freep) Token *token = open_token_with(NULL, TOKEN_URI, harness->pin_file, TOKEN_STATE_READY);

        (void) state;
        assert_string_equal(token_get_label(token), HARNESS_TOKEN_LABEL);
        assert_non_null(strstr(token_get_module_path(token), "softhsm2"));
}

/* Without URI= either, the first initialised token that needs a login: that
 * skips p11-kit's read-only trust module. */
static void test_no_uri_picks_a_login_token(void **state) {
        _cleanup_(token_freep) Token *token = open_token_with(NULL, NULL, harness->pin_file, TOKEN_STATE_READY);

        (void) state;
        assert_string_equal(token_get_label(token), HARNESS_TOKEN_LABEL);
}

/* URI attributes beyond the token label are matched too. */
static void test_uri_matches_manufacturer(void **state) {
        Token *token;

        (void) state;
        token = open_token_with(SOFTHSM_MODULE, TOKEN_URI ";manufacturer=Not%20SoftHSM", harness->pin_file,
                                TOKEN_STATE_ABSENT);
        token_free(token);
        token = open_token_with(SOFTHSM_MODULE, TOKEN_URI ";manufacturer=SoftHSM%20project", harness->pin_file,
                                TOKEN_STATE_READY);
        token_free(token);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_login_and_label),
                cmocka_unit_test(test_token_key_signs_through_evp),
                cmocka_unit_test(test_reopened_token_still_signs),
                cmocka_unit_test(test_unknown_key_uri),
                cmocka_unit_test(test_wrong_pin_is_locked_and_not_retried),
                cmocka_unit_test(test_absent_token),
                cmocka_unit_test(test_missing_module),
                cmocka_unit_test(test_module_from_p11kit_configuration),
                cmocka_unit_test(test_no_uri_picks_a_login_token),
                cmocka_unit_test(test_uri_matches_manufacturer),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
