/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* remote-key and key-op: a worker's stand-in for a private key. Software
 * keys (RSA-2048, EC P-256) play the token; a thread plays smimed, serving
 * WORKER_CALL_KEY_OP over a real socketpair with key_op_perform(). The
 * worker side is what smimed-worker runs: smime_sign(), smime_encrypt() /
 * smime_decrypt() with worker_session_remote_key(). Each result is checked
 * by OpenSSL with the software key's certificate, each private operation
 * must have crossed the socket exactly once per signature or recipient with
 * the parameters OpenSSL chose (PKCS#1 v1.5, PSS, OAEP, ECDH), and no
 * request may ever ask for raw RSA. Ordinary keys in the same process keep
 * working. In this process. */

/* The test makes an ordinary legacy RSA key (EVP_PKEY_assign_RSA()). */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "key-op-peer.h"
#include "key-op.h"
#include "smime-roundtrip.h"
#include "pki.h"
#include "remote-key.h"
#include "smime-open.h"
#include "smime-out.h"
#include "worker-protocol.h"
#include "worker-session.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CMS_ContentInfo *, CMS_ContentInfo_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

static const char *const entity = smime_roundtrip_entity;

/* ---- the keys and certificates ---- */

typedef struct Fixture {
        PkiCert *ca, *rsa, *ec, *rsa2;
        KeyOpPeer *rsa_peer, *ec_peer;
        EVP_PKEY *rsa_remote, *ec_remote;
} Fixture;

static PkiCert *leaf(const PkiCert *ca, EVP_PKEY *key, const char *email) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = email;
        o.email = email;
        o.key = key;
        c = pki_cert_new(&o, ca);
        assert_non_null(c);
        return c;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa = pki_key_rsa(2048), *ec = pki_key_ec(), *rsa2 = pki_key_rsa(2048);

        assert_non_null(f);
        assert_non_null(rsa);
        assert_non_null(ec);
        f->ca = pki_root_ca("Remote Key Test CA");
        assert_non_null(f->ca);
        f->rsa = leaf(f->ca, rsa, "rsa@example.com");
        f->ec = leaf(f->ca, ec, "ec@example.com");
        f->rsa2 = leaf(f->ca, rsa2, "other@example.com");

        f->rsa_peer = key_op_peer_new(f->rsa->key);
        f->ec_peer = key_op_peer_new(f->ec->key);
        f->rsa_remote = worker_session_remote_key(f->rsa_peer->session, f->rsa->x509);
        f->ec_remote = worker_session_remote_key(f->ec_peer->session, f->ec->x509);
        assert_non_null(f->rsa_remote);
        assert_non_null(f->ec_remote);
        assert_int_equal(worker_session_key_op_error(f->rsa_peer->session), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        EVP_PKEY_free(f->rsa_remote);
        EVP_PKEY_free(f->ec_remote);
        key_op_peer_free(f->rsa_peer);
        key_op_peer_free(f->ec_peer);
        pki_cert_free(f->ca);
        pki_cert_free(f->rsa);
        pki_cert_free(f->ec);
        pki_cert_free(f->rsa2);
        free(f);
        return 0;
}

static void test_sign_rsa_pkcs1(void **state) {
        Fixture *f = *state;
        KeyOpLogged l;

        key_op_peer_reset(f->rsa_peer);
        smime_roundtrip_sign(f->rsa->x509, f->rsa_remote, EVP_sha256(), false, false);
        l = key_op_peer_one_call(f->rsa_peer);
        assert_int_equal(l.kind, KEY_OP_SIGN);
        assert_int_equal(l.padding, RSA_PKCS1_PADDING);
        assert_string_equal(l.md, "SHA256");
        assert_string_equal(l.mgf1_md, "");
        assert_int_equal(l.size, 32);

        key_op_peer_reset(f->rsa_peer);
        smime_roundtrip_sign(f->rsa->x509, f->rsa_remote, EVP_sha384(), false, true);
        l = key_op_peer_one_call(f->rsa_peer);
        assert_int_equal(l.padding, RSA_PKCS1_PADDING);
        assert_string_equal(l.md, "SHA384");
        assert_int_equal(l.size, 48);
}

static void test_sign_rsa_pss(void **state) {
        Fixture *f = *state;
        KeyOpLogged l;

        key_op_peer_reset(f->rsa_peer);
        smime_roundtrip_sign(f->rsa->x509, f->rsa_remote, EVP_sha256(), true, false);
        l = key_op_peer_one_call(f->rsa_peer);
        assert_int_equal(l.kind, KEY_OP_SIGN);
        assert_int_equal(l.padding, RSA_PKCS1_PSS_PADDING);
        assert_string_equal(l.md, "SHA256");
        assert_string_equal(l.mgf1_md, "SHA256");
        assert_int_equal(l.saltlen, 32); /* RSA_PSS_SALTLEN_DIGEST, in bytes */

        key_op_peer_reset(f->rsa_peer);
        smime_roundtrip_sign(f->rsa->x509, f->rsa_remote, EVP_sha384(), true, false);
        l = key_op_peer_one_call(f->rsa_peer);
        assert_int_equal(l.padding, RSA_PKCS1_PSS_PADDING);
        assert_string_equal(l.md, "SHA384");
        assert_string_equal(l.mgf1_md, "SHA384");
        assert_int_equal(l.saltlen, 48);

        /* Opaque PSS (not streamed: CMS_final()). */
        key_op_peer_reset(f->rsa_peer);
        smime_roundtrip_sign(f->rsa->x509, f->rsa_remote, EVP_sha256(), true, true);
        assert_int_equal(key_op_peer_one_call(f->rsa_peer).padding, RSA_PKCS1_PSS_PADDING);
}

/* PSS parameters other than smimed's: OpenSSL's salt length codes become
 * the byte counts it writes into the signature's parameters, and the
 * token's signature verifies with them. */
static void test_sign_rsa_pss_parameters(void **state) {
        Fixture *f = *state;
        static const int saltlens[] = { RSA_PSS_SALTLEN_MAX, RSA_PSS_SALTLEN_AUTO, 0, 17 };

        for (size_t i = 0; i < ELEMENTSOF(saltlens); i++) {
                _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->rsa_remote, NULL);
                _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *vctx = EVP_PKEY_CTX_new(f->rsa->key, NULL);
                unsigned char digest[32] = { 9, 8, 7 }, sig[256];
                size_t n = sizeof(sig);
                KeyOpLogged l;

                key_op_peer_reset(f->rsa_peer);
                assert_non_null(ctx);
                assert_true(EVP_PKEY_sign_init(ctx) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0);
                assert_true(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha512()) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, saltlens[i]) > 0);
                assert_true(EVP_PKEY_sign(ctx, sig, &n, digest, sizeof(digest)) > 0);
                l = key_op_peer_one_call(f->rsa_peer);
                assert_string_equal(l.mgf1_md, "SHA512");
                assert_int_equal(l.saltlen, saltlens[i] < 0 ? 256 - 32 - 2 : saltlens[i]);

                assert_true(EVP_PKEY_verify_init(vctx) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_padding(vctx, RSA_PKCS1_PSS_PADDING) > 0);
                assert_true(EVP_PKEY_CTX_set_signature_md(vctx, EVP_sha256()) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(vctx, EVP_sha512()) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(vctx, l.saltlen) > 0);
                assert_int_equal(EVP_PKEY_verify(vctx, sig, n, digest, sizeof(digest)), 1);
        }
}

static void test_sign_ec(void **state) {
        Fixture *f = *state;
        KeyOpLogged l;

        key_op_peer_reset(f->ec_peer);
        smime_roundtrip_sign(f->ec->x509, f->ec_remote, EVP_sha256(), false, false);
        l = key_op_peer_one_call(f->ec_peer);
        assert_int_equal(l.kind, KEY_OP_SIGN);
        assert_int_equal(l.padding, 0);
        assert_string_equal(l.md, "SHA256");
        assert_int_equal(l.size, 32);

        key_op_peer_reset(f->ec_peer);
        smime_roundtrip_sign(f->ec->x509, f->ec_remote, EVP_sha384(), false, true);
        l = key_op_peer_one_call(f->ec_peer);
        assert_string_equal(l.md, "SHA384");
        assert_int_equal(l.size, 48);
}

/* ---- decrypting ---- */

static void test_decrypt_rsa_pkcs1(void **state) {
        Fixture *f = *state;
        STACK_OF(X509) *to = x509_stack(f->rsa->x509, NULL, NULL);
        KeyOpLogged l;

        key_op_peer_reset(f->rsa_peer);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_cbc(), false, f->rsa->x509, f->rsa_remote), 0);
        l = key_op_peer_one_call(f->rsa_peer);
        assert_int_equal(l.kind, KEY_OP_DECRYPT);
        assert_int_equal(l.padding, RSA_PKCS1_PADDING);
        assert_string_equal(l.md, "");
        assert_int_equal(l.size, 256);

        key_op_peer_reset(f->rsa_peer);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_gcm(), false, f->rsa->x509, f->rsa_remote), 0);
        assert_int_equal(key_op_peer_one_call(f->rsa_peer).padding, RSA_PKCS1_PADDING);
        sk_X509_free(to);
}

static void test_decrypt_rsa_oaep(void **state) {
        Fixture *f = *state;
        STACK_OF(X509) *to = x509_stack(f->rsa->x509, NULL, NULL);
        KeyOpLogged l;

        /* smimed's OAEP: OpenSSL's defaults, SHA-1 and MGF1-SHA-1. */
        key_op_peer_reset(f->rsa_peer);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_cbc(), true, f->rsa->x509, f->rsa_remote), 0);
        l = key_op_peer_one_call(f->rsa_peer);
        assert_int_equal(l.kind, KEY_OP_DECRYPT);
        assert_int_equal(l.padding, RSA_PKCS1_OAEP_PADDING);
        assert_string_equal(l.md, "SHA1");
        assert_string_equal(l.mgf1_md, "SHA1");
        assert_int_equal(l.label_size, 0);

        key_op_peer_reset(f->rsa_peer);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_gcm(), true, f->rsa->x509, f->rsa_remote), 0);
        assert_int_equal(key_op_peer_one_call(f->rsa_peer).padding, RSA_PKCS1_OAEP_PADDING);
        sk_X509_free(to);
}

/* RSAES-OAEP parameters of another sender's choice (SHA-256, MGF1-SHA-384,
 * a label) travel as they are in the message. */
static void test_decrypt_rsa_oaep_parameters(void **state) {
        Fixture *f = *state;
        _cleanup_(CMS_ContentInfo_freep) CMS_ContentInfo *cms = NULL;
        _cleanup_(BIO_freep) BIO *in = BIO_new_mem_buf(entity, -1), *der = BIO_new(BIO_s_mem());
        _cleanup_(closep) int plain = memfd_empty();
        _cleanup_free_ char *message = NULL, *got = NULL;
        unsigned char *label = OPENSSL_memdup("smimed", 6);
        CMS_RecipientInfo *ri;
        EVP_PKEY_CTX *pctx;
        size_t n;
        KeyOpLogged l;

        assert_non_null(in);
        assert_non_null(der);
        assert_non_null(label);
        cms = CMS_encrypt(NULL, in, EVP_aes_128_cbc(), CMS_BINARY | CMS_PARTIAL);
        assert_non_null(cms);
        ri = CMS_add1_recipient_cert(cms, f->rsa->x509, CMS_KEY_PARAM);
        assert_non_null(ri);
        pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) > 0);
        assert_true(EVP_PKEY_CTX_set0_rsa_oaep_label(pctx, label, 6) > 0);
        assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY), 1);

        key_op_peer_reset(f->rsa_peer);
        assert_int_equal(smime_decrypt(cms, f->rsa_remote, f->rsa->x509, plain, &message), 0);
        got = read_all(plain, &n);
        assert_int_equal(n, strlen(entity));
        assert_memory_equal(got, entity, n);
        l = key_op_peer_one_call(f->rsa_peer);
        assert_int_equal(l.padding, RSA_PKCS1_OAEP_PADDING);
        assert_string_equal(l.md, "SHA256");
        assert_string_equal(l.mgf1_md, "SHA384");
        assert_int_equal(l.label_size, 6);
}

static void test_decrypt_ec(void **state) {
        Fixture *f = *state;
        STACK_OF(X509) *to = x509_stack(f->ec->x509, NULL, NULL);
        KeyOpLogged l;

        key_op_peer_reset(f->ec_peer);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_cbc(), false, f->ec->x509, f->ec_remote), 0);
        l = key_op_peer_one_call(f->ec_peer);
        assert_int_equal(l.kind, KEY_OP_DERIVE);
        assert_int_equal(l.padding, 0);
        assert_string_equal(l.md, "");
        assert_int_equal(l.size, 65); /* an uncompressed P-256 point */

        key_op_peer_reset(f->ec_peer);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_gcm(), false, f->ec->x509, f->ec_remote), 0);
        assert_int_equal(key_op_peer_one_call(f->ec_peer).kind, KEY_OP_DERIVE);
        sk_X509_free(to);
}

/* Mail to several: each holder's key is asked once, for its recipient only. */
static void test_decrypt_many_recipients(void **state) {
        Fixture *f = *state;
        STACK_OF(X509) *to = x509_stack(f->rsa2->x509, f->ec->x509, f->rsa->x509);

        key_op_peer_reset(f->rsa_peer);
        key_op_peer_reset(f->ec_peer);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_gcm(), true, f->rsa->x509, f->rsa_remote), 0);
        assert_int_equal(key_op_peer_one_call(f->rsa_peer).padding, RSA_PKCS1_OAEP_PADDING);
        assert_int_equal(key_op_peer_calls(f->ec_peer), 0);

        key_op_peer_reset(f->rsa_peer);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_cbc(), false, f->ec->x509, f->ec_remote), 0);
        assert_int_equal(key_op_peer_one_call(f->ec_peer).kind, KEY_OP_DERIVE);
        assert_int_equal(key_op_peer_calls(f->rsa_peer), 0);
        sk_X509_free(to);
}

/* ---- refusals ---- */

/* smimed refuses: the operation fails in OpenSSL, nothing crashes. */
static void test_refused(void **state) {
        Fixture *f = *state;
        _cleanup_(closep) int in = memfd_with(entity, strlen(entity)), out = memfd_empty();
        _cleanup_free_ char *message = NULL;
        STACK_OF(X509) *to = x509_stack(f->rsa->x509, NULL, NULL), *to_ec = x509_stack(f->ec->x509, NULL, NULL);
        SignOptions o = { .digest = EVP_sha256() };

        f->rsa_peer->refuse = -EPERM;
        f->ec_peer->refuse = -EPERM;

        key_op_peer_reset(f->rsa_peer);
        assert_true(smime_sign(in, out, f->rsa->x509, f->rsa_remote, NULL, &o, &message) < 0);
        assert_non_null(message);
        assert_int_equal(key_op_peer_calls(f->rsa_peer), 1);

        key_op_peer_reset(f->ec_peer);
        message = mfree(message);
        assert_true(smime_sign(in, out, f->ec->x509, f->ec_remote, NULL, &o, &message) < 0);
        assert_int_equal(key_op_peer_calls(f->ec_peer), 1);

        /* The session remembers the refusal, for the handler: CMS_decrypt()
         * would hide it. */
        assert_int_equal(worker_session_key_op_error(f->rsa_peer->session), -EPERM);

        /* GCM: a wrong content key never passes for the right one. */
        key_op_peer_reset(f->rsa_peer);
        assert_true(smime_roundtrip_decrypt(to, EVP_aes_256_gcm(), false, f->rsa->x509, f->rsa_remote) < 0);
        assert_int_equal(key_op_peer_calls(f->rsa_peer), 1);
        key_op_peer_reset(f->ec_peer);
        assert_true(smime_roundtrip_decrypt(to_ec, EVP_aes_256_gcm(), false, f->ec->x509, f->ec_remote) < 0);
        assert_int_equal(key_op_peer_calls(f->ec_peer), 1);

        f->rsa_peer->refuse = 0;
        f->ec_peer->refuse = 0;
        sk_X509_free(to);
        sk_X509_free(to_ec);
        ERR_clear_error();
}

/* Raw RSA, or a signature without a digest, never leaves the worker. */
static void test_no_raw_rsa(void **state) {
        Fixture *f = *state;
        unsigned char in[256] = { 0, 1, 2 }, out[256], digest[32] = {};
        RSA *rsa = (RSA *) EVP_PKEY_get0_RSA(f->rsa_remote);
        size_t n;

        key_op_peer_reset(f->rsa_peer);
        assert_non_null(rsa);
        {
                _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->rsa_remote, NULL);

                n = sizeof(out);
                assert_true(EVP_PKEY_sign_init(ctx) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) > 0);
                assert_true(EVP_PKEY_sign(ctx, out, &n, in, sizeof(in)) <= 0);
        }
        {
                /* PKCS#1 v1.5 padding, but over any bytes: no digest set. */
                _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->rsa_remote, NULL);

                n = sizeof(out);
                assert_true(EVP_PKEY_sign_init(ctx) > 0);
                assert_true(EVP_PKEY_sign(ctx, out, &n, digest, sizeof(digest)) <= 0);
        }
        {
                _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->rsa_remote, NULL);

                n = sizeof(out);
                assert_true(EVP_PKEY_decrypt_init(ctx) > 0);
                assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) > 0);
                assert_true(EVP_PKEY_decrypt(ctx, out, &n, in, sizeof(in)) <= 0);
        }
        assert_int_equal(RSA_private_encrypt(sizeof(in), in, out, rsa, RSA_NO_PADDING), -1);
        assert_int_equal(RSA_private_encrypt(32, digest, out, rsa, RSA_PKCS1_PADDING), -1);
        assert_int_equal(RSA_private_decrypt(sizeof(in), in, out, rsa, RSA_NO_PADDING), -1);
        assert_int_equal(key_op_peer_calls(f->rsa_peer), 0);
        ERR_clear_error();
}

/* The method registered for remote RSA keys leaves other keys alone: a
 * provider's key and an ordinary legacy one (EVP_PKEY_assign_RSA(), which
 * now takes that method's path and falls through to OpenSSL's code) sign
 * PSS and decrypt OAEP as before, without a call. */
static void test_other_keys_unaffected(void **state) {
        Fixture *f = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *legacy = EVP_PKEY_new();
        STACK_OF(X509) *to = x509_stack(f->rsa->x509, NULL, NULL);
        RSA *rsa = EVP_PKEY_get1_RSA(f->rsa->key);

        assert_non_null(legacy);
        assert_non_null(rsa);
        assert_int_equal(EVP_PKEY_assign_RSA(legacy, rsa), 1);

        key_op_peer_reset(f->rsa_peer);
        smime_roundtrip_sign(f->rsa->x509, f->rsa->key, EVP_sha256(), true, false);
        smime_roundtrip_sign(f->rsa->x509, legacy, EVP_sha256(), true, false);
        smime_roundtrip_sign(f->rsa->x509, legacy, EVP_sha384(), false, true);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_cbc(), true, f->rsa->x509, f->rsa->key), 0);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_cbc(), true, f->rsa->x509, legacy), 0);
        assert_int_equal(smime_roundtrip_decrypt(to, EVP_aes_256_gcm(), false, f->rsa->x509, legacy), 0);
        assert_int_equal(key_op_peer_calls(f->rsa_peer), 0);
        sk_X509_free(to);
}

/* ---- key_op_perform() on its own ---- */

static void test_key_op_perform_refuses(void **state) {
        Fixture *f = *state;
        uint8_t digest[32] = { 1 }, ct[256] = { 1 }, point[65] = { 4, 1, 2, 3 }, *out = NULL;
        size_t n = 0;
        const struct {
                EVP_PKEY *key;
                KeyOpRequest r;
                int error;
        } cases[] = {
                /* raw RSA, and a signature without a digest */
                { f->rsa->key, { .kind = KEY_OP_DECRYPT, .padding = RSA_NO_PADDING, .data = ct, .size = 256 }, -EOPNOTSUPP },
                { f->rsa->key, { .kind = KEY_OP_SIGN, .padding = RSA_NO_PADDING, .md = (char *) "SHA256", .data = digest, .size = 32 }, -EOPNOTSUPP },
                { f->rsa->key, { .kind = KEY_OP_SIGN, .padding = RSA_PKCS1_PADDING, .data = digest, .size = 32 }, -EOPNOTSUPP },
                /* what does not fit */
                { f->rsa->key, { .kind = KEY_OP_SIGN, .padding = RSA_PKCS1_PADDING, .md = (char *) "SHA384", .data = digest, .size = 32 }, -EINVAL },
                { f->rsa->key, { .kind = KEY_OP_SIGN, .padding = RSA_PKCS1_PSS_PADDING, .md = (char *) "SHA256", .saltlen = 300, .data = digest, .size = 32 }, -EINVAL },
                { f->rsa->key, { .kind = KEY_OP_DERIVE, .data = point, .size = 65 }, -EINVAL },
                { f->rsa->key, { .kind = KEY_OP_DECRYPT, .padding = RSA_PKCS1_OAEP_PADDING, .data = ct, .size = 256 }, -EINVAL },
                { f->ec->key, { .kind = KEY_OP_DECRYPT, .padding = RSA_PKCS1_PADDING, .data = ct, .size = 256 }, -EINVAL },
                { f->ec->key, { .kind = KEY_OP_SIGN, .padding = RSA_PKCS1_PADDING, .md = (char *) "SHA256", .data = digest, .size = 32 }, -EINVAL },
                /* a point not on the curve */
                { f->ec->key, { .kind = KEY_OP_DERIVE, .data = point, .size = 65 }, -EINVAL },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(key_op_perform(cases[i].key, &cases[i].r, &out, &n), cases[i].error);
                assert_null(out);
        }
        ERR_clear_error();
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sign_rsa_pkcs1),
                cmocka_unit_test(test_sign_rsa_pss),
                cmocka_unit_test(test_sign_rsa_pss_parameters),
                cmocka_unit_test(test_sign_ec),
                cmocka_unit_test(test_decrypt_rsa_pkcs1),
                cmocka_unit_test(test_decrypt_rsa_oaep),
                cmocka_unit_test(test_decrypt_rsa_oaep_parameters),
                cmocka_unit_test(test_decrypt_ec),
                cmocka_unit_test(test_decrypt_many_recipients),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_no_raw_rsa),
                cmocka_unit_test(test_other_keys_unaffected),
                cmocka_unit_test(test_key_op_perform_refuses),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
