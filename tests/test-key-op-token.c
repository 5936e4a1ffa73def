/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* key_op_perform() with the token's keys, as smimed will run it for its
 * workers: an RSA-2048 and an EC P-256 key imported into a real SoftHSM2
 * token and used through the PKCS#11 engine (libp11). Each KeyOpRequest a
 * worker sends — PKCS#1 v1.5 and PSS signatures, PKCS#1 v1.5 and OAEP
 * decryption, ECDSA, ECDH — is performed in the token and checked with the
 * public key; then the whole path: smime_sign() and smime_decrypt() with a
 * remote key whose operations cross a socketpair to the token key. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "config.h"
#include "harness.h"
#include "key-op-peer.h"
#include "key-op.h"
#include "pki.h"
#include "smime-roundtrip.h"
#include "token.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

typedef struct Fixture {
        Harness *harness;
        Token *token;
        PkiCert *ca, *rsa, *ec;         /* software keys, for the public halves and the expected results */
        EVP_PKEY *rsa_token, *ec_token; /* the same keys in the token */
} Fixture;

static EVP_PKEY *import(Token *token, PkiCert *cert, const char *label) {
        _cleanup_free_ char *id = NULL, *uri = NULL;
        EVP_PKEY *key = NULL;
        bool created;

        assert_int_equal(token_import_key(token, cert->key, cert->x509, label, &id, &created), 0);
        assert_true(created);
        assert_int_equal(token_key_uri(token, id, &uri), 0);
        assert_int_equal(token_load_private_key(token, uri, &key), 0);
        assert_non_null(key);
        return key;
}

static PkiCert *leaf(PkiCert *ca, EVP_PKEY *key, const char *email) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.email = email;
        o.key = key;
        c = pki_cert_new(&o, ca);
        assert_non_null(c);
        return c;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa = pki_key_rsa(2048), *ec = pki_key_ec();

        assert_non_null(f);
        assert_int_equal(harness_new(&f->harness), 0);
        assert_int_equal(config_new_default(&config), 0);
        assert_int_equal(free_and_strdup(&config->token_module, SOFTHSM_MODULE), 0);
        assert_int_equal(free_and_strdup(&config->token_uri, "pkcs11:token=" HARNESS_TOKEN_LABEL), 0);
        assert_int_equal(free_and_strdup(&config->token_pin_file, f->harness->pin_file), 0);
        assert_int_equal(token_new(config, &f->token), 0);
        assert_int_equal(token_open(f->token), TOKEN_STATE_READY);

        f->ca = pki_root_ca("Token Key Op CA");
        assert_non_null(f->ca);
        f->rsa = leaf(f->ca, rsa, "rsa@example.com");
        f->ec = leaf(f->ca, ec, "ec@example.com");
        f->rsa_token = import(f->token, f->rsa, "key-op-rsa");
        f->ec_token = import(f->token, f->ec, "key-op-ec");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        EVP_PKEY_free(f->rsa_token);
        EVP_PKEY_free(f->ec_token);
        token_free(f->token);
        pki_cert_free(f->ca);
        pki_cert_free(f->rsa);
        pki_cert_free(f->ec);
        harness_free(f->harness);
        free(f);
        return 0;
}

/* ---- the primitives ---- */

static void verify_signature(EVP_PKEY *public, const KeyOpRequest *r, const uint8_t *sig, size_t n) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(public, NULL);

        assert_non_null(ctx);
        assert_true(EVP_PKEY_verify_init(ctx) > 0);
        assert_true(EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(r->md)) > 0);
        if (r->padding) {
                assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, r->padding) > 0);
                if (r->padding == RSA_PKCS1_PSS_PADDING) {
                        assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_get_digestbyname(r->mgf1_md)) > 0);
                        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, r->saltlen) > 0);
                }
        }
        assert_int_equal(EVP_PKEY_verify(ctx, sig, n, r->data, r->size), 1);
}

static void test_sign(void **state) {
        Fixture *f = *state;
        uint8_t digest[64];
        const struct {
                bool ec;
                int padding;
                const char *md, *mgf1;
                int saltlen;
        } cases[] = {
                { false, RSA_PKCS1_PADDING, "SHA256", NULL, 0 },
                { false, RSA_PKCS1_PADDING, "SHA512", NULL, 0 },
                { false, RSA_PKCS1_PSS_PADDING, "SHA256", "SHA256", 32 },
                { false, RSA_PKCS1_PSS_PADDING, "SHA384", "SHA384", 48 },
                { false, RSA_PKCS1_PSS_PADDING, "SHA256", "SHA512", 222 }, /* the largest salt */
                { true, 0, "SHA256", NULL, 0 },
                { true, 0, "SHA384", NULL, 0 },
        };

        for (size_t i = 0; i < sizeof(digest); i++)
                digest[i] = (uint8_t) (i * 5 + 3);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *sig = NULL;
                KeyOpRequest r = {
                        .kind = KEY_OP_SIGN,
                        .padding = cases[i].padding,
                        .md = (char *) cases[i].md,
                        .mgf1_md = (char *) cases[i].mgf1,
                        .saltlen = cases[i].saltlen,
                        .data = digest,
                        .size = (size_t) EVP_MD_get_size(EVP_get_digestbyname(cases[i].md)),
                };
                size_t n = 0;
                int e;

                e = key_op_perform(cases[i].ec ? f->ec_token : f->rsa_token, &r, &sig, &n);
                if (e < 0)
                        print_error("case %zu: %s\n", i, strerror(-e));
                assert_int_equal(e, 0);
                verify_signature(X509_get0_pubkey(cases[i].ec ? f->ec->x509 : f->rsa->x509), &r, sig, n);
        }
}

/* ciphertext of secret for the RSA key, made with its public half. */
static size_t rsa_encrypt(Fixture *f, int padding, const EVP_MD *md, const unsigned char *secret, size_t n,
                          uint8_t out[static 256]) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(f->rsa->x509), NULL);
        size_t len = 256;

        assert_non_null(ctx);
        assert_true(EVP_PKEY_encrypt_init(ctx) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, padding) > 0);
        if (md) {
                assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0);
        }
        assert_true(EVP_PKEY_encrypt(ctx, out, &len, secret, n) > 0);
        return len;
}

static void test_decrypt(void **state) {
        Fixture *f = *state;
        static const unsigned char secret[32] = "a content-encryption key, 32 B.";
        const struct {
                int padding;
                const char *md;
        } cases[] = {
                { RSA_PKCS1_PADDING, NULL },
                { RSA_PKCS1_OAEP_PADDING, "SHA1" }, /* smimed's OAEP, and OpenSSL's default */
                { RSA_PKCS1_OAEP_PADDING, "SHA256" },
                { RSA_PKCS1_OAEP_PADDING, "SHA512" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *plain = NULL;
                uint8_t ct[256];
                KeyOpRequest r = {
                        .kind = KEY_OP_DECRYPT,
                        .padding = cases[i].padding,
                        .md = (char *) cases[i].md,
                        .mgf1_md = (char *) cases[i].md,
                        .data = ct,
                };
                size_t n = 0;

                r.size = rsa_encrypt(f, cases[i].padding, cases[i].md ? EVP_get_digestbyname(cases[i].md) : NULL,
                                     secret, sizeof(secret), ct);
                assert_int_equal(key_op_perform(f->rsa_token, &r, &plain, &n), 0);
                assert_int_equal(n, sizeof(secret));
                assert_memory_equal(plain, secret, n);
        }
}

/* ECDH in the token gives what the software key gives. */
static void test_derive(void **state) {
        Fixture *f = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *peer = pki_key_ec();
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->ec->key, NULL);
        _cleanup_free_ uint8_t *point = NULL, *secret = NULL;
        uint8_t expected[64];
        size_t point_size, n = 0, expected_size = sizeof(expected);
        KeyOpRequest r = { .kind = KEY_OP_DERIVE };

        (void) state;
        assert_non_null(peer);
        point_size = EVP_PKEY_get1_encoded_public_key(peer, &point);
        assert_true(point_size > 0);
        r.data = point;
        r.size = point_size;
        assert_int_equal(key_op_perform(f->ec_token, &r, &secret, &n), 0);

        assert_true(EVP_PKEY_derive_init(ctx) > 0);
        assert_true(EVP_PKEY_derive_set_peer(ctx, peer) > 0);
        assert_true(EVP_PKEY_derive(ctx, expected, &expected_size) > 0);
        assert_int_equal(n, expected_size);
        assert_memory_equal(secret, expected, n);
}

/* ---- the whole path ---- */

static void test_remote_key_on_token(void **state) {
        Fixture *f = *state;
        KeyOpPeer *rsa_peer = key_op_peer_new(f->rsa_token), *ec_peer = key_op_peer_new(f->ec_token);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa = worker_session_remote_key(rsa_peer->session, f->rsa->x509),
                                            *ec = worker_session_remote_key(ec_peer->session, f->ec->x509);
        STACK_OF(X509) *to_rsa = x509_stack(f->rsa->x509, NULL, NULL), *to_ec = x509_stack(f->ec->x509, NULL, NULL);

        assert_non_null(rsa);
        assert_non_null(ec);

        key_op_peer_reset(rsa_peer);
        smime_roundtrip_sign(f->rsa->x509, rsa, EVP_sha256(), false, false);
        assert_int_equal(key_op_peer_one_call(rsa_peer).padding, RSA_PKCS1_PADDING);
        key_op_peer_reset(rsa_peer);
        smime_roundtrip_sign(f->rsa->x509, rsa, EVP_sha256(), true, false);
        assert_int_equal(key_op_peer_one_call(rsa_peer).padding, RSA_PKCS1_PSS_PADDING);
        key_op_peer_reset(ec_peer);
        smime_roundtrip_sign(f->ec->x509, ec, EVP_sha256(), false, false);
        assert_int_equal(key_op_peer_one_call(ec_peer).kind, KEY_OP_SIGN);

        key_op_peer_reset(rsa_peer);
        assert_int_equal(smime_roundtrip_decrypt(to_rsa, EVP_aes_256_cbc(), false, f->rsa->x509, rsa), 0);
        assert_int_equal(key_op_peer_one_call(rsa_peer).padding, RSA_PKCS1_PADDING);
        key_op_peer_reset(rsa_peer);
        assert_int_equal(smime_roundtrip_decrypt(to_rsa, EVP_aes_256_gcm(), true, f->rsa->x509, rsa), 0);
        assert_int_equal(key_op_peer_one_call(rsa_peer).padding, RSA_PKCS1_OAEP_PADDING);
        key_op_peer_reset(ec_peer);
        assert_int_equal(smime_roundtrip_decrypt(to_ec, EVP_aes_256_gcm(), false, f->ec->x509, ec), 0);
        assert_int_equal(key_op_peer_one_call(ec_peer).kind, KEY_OP_DERIVE);

        sk_X509_free(to_rsa);
        sk_X509_free(to_ec);
        EVP_PKEY_free(TAKE_PTR(rsa));
        EVP_PKEY_free(TAKE_PTR(ec));
        key_op_peer_free(rsa_peer);
        key_op_peer_free(ec_peer);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sign),
                cmocka_unit_test(test_decrypt),
                cmocka_unit_test(test_derive),
                cmocka_unit_test(test_remote_key_on_token),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
