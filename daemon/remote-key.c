/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* RSA_METHOD, EC_KEY_METHOD and EVP_PKEY_METHOD are deprecated in OpenSSL 3,
 * and the only way to give OpenSSL's CMS a key whose private half is
 * elsewhere without writing a provider (libp11 does the same). */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>

#include "remote-key.h"

typedef struct RemoteKey {
        RemoteKeyCall call;
        void *userdata;
} RemoteKey;

typedef int (*PkeyInit)(EVP_PKEY_CTX *ctx);
typedef int (*PkeyOperation)(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen, const unsigned char *in,
                             size_t inlen);

static struct {
        RSA_METHOD *rsa_method;
        EVP_PKEY_METHOD *rsa_pkey_method;
        ENGINE *engine;         /* holds rsa_pkey_method for remote RSA keys; never registered */
        EC_KEY_METHOD *ec_method;
        int rsa_index, ec_index;
        /* OpenSSL's own RSA EVP_PKEY_METHOD functions, for keys that are not ours. */
        PkeyOperation default_rsa_sign, default_rsa_decrypt;
        bool ready;
} remote;

/* ---- the call ---- */

/* Hands r to the key's owner and copies the result into out (out_size bytes
 * of room). 1, or 0 with an OpenSSL error. */
static int forward(const RemoteKey *k, const KeyOpRequest *r, unsigned char *out, size_t out_size,
                   size_t *ret_size) {
        uint8_t *result = NULL;
        size_t n = 0;
        int e;

        e = k->call(r, &result, &n, k->userdata);
        if (e >= 0 && n > out_size)
                e = -EMSGSIZE;
        if (e < 0) {
                if (result)
                        OPENSSL_cleanse(result, n);
                free(result);
                ERR_raise_data(ERR_LIB_EVP, ERR_R_OPERATION_FAIL, "private-key operation (%s) not done: %s",
                               key_op_kind_to_string(r->kind), strerror(-e));
                return 0;
        }
        memcpy(out, result, n);
        OPENSSL_cleanse(result, n);
        free(result);
        *ret_size = n;
        return 1;
}

static void refuse(const char *what) {
        ERR_raise_data(ERR_LIB_EVP, EVP_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE,
                       "not asked of a remote key: %s", what);
}

/* The name a KeyOpRequest gives md ("SHA256"). */
static char *md_name(const EVP_MD *md) {
        return (char *) OBJ_nid2sn(EVP_MD_get_type(md));
}

static void free_remote_key(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
        free(ptr);
}

/* EC_KEY_dup() and RSAPrivateKey_dup() copy ex_data: each copy gets its own. */
static int dup_remote_key(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx, long argl,
                          void *argp) {
        RemoteKey *copy;

        if (!*from_d)
                return 1;
        copy = malloc(sizeof(RemoteKey));
        if (!copy)
                return 0;
        *copy = *(RemoteKey *) *from_d;
        *from_d = copy;
        return 1;
}

/* ---- RSA ---- */

static const RemoteKey *rsa_remote(const RSA *rsa) {
        return rsa ? RSA_get_ex_data(rsa, remote.rsa_index) : NULL;
}

static const RemoteKey *ctx_rsa_remote(EVP_PKEY_CTX *ctx, const RSA **ret_rsa) {
        EVP_PKEY *pkey = EVP_PKEY_CTX_get0_pkey(ctx);
        const RSA *rsa = pkey && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA ? EVP_PKEY_get0_RSA(pkey) : NULL;

        *ret_rsa = rsa;
        return rsa_remote(rsa);
}

/* A PSS salt length as OpenSSL's codes give it, in bytes, the way OpenSSL
 * computes it for the signature's parameters (rsa_ctx_to_pss()). */
static int pss_salt_length(const RSA *rsa, const EVP_MD *md, int saltlen) {
        int max = RSA_size(rsa) - EVP_MD_get_size(md) - 2;

        if ((RSA_bits(rsa) & 7) == 1)
                max--;
        if (saltlen == RSA_PSS_SALTLEN_DIGEST)
                saltlen = EVP_MD_get_size(md);
        else if (saltlen == RSA_PSS_SALTLEN_AUTO || saltlen == RSA_PSS_SALTLEN_MAX)
                saltlen = max;
        return saltlen >= 0 && saltlen <= max ? saltlen : -1;
}

/* EVP_PKEY_sign() of an RSA key: the digest with the context's padding. */
static int remote_rsa_pkey_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen, const unsigned char *tbs,
                                size_t tbslen) {
        const EVP_MD *md = NULL, *mgf1 = NULL;
        const RemoteKey *k;
        const RSA *rsa;
        KeyOpRequest r = { .kind = KEY_OP_SIGN };
        int padding, saltlen = 0;

        k = ctx_rsa_remote(ctx, &rsa);
        if (!k)
                return remote.default_rsa_sign(ctx, sig, siglen, tbs, tbslen);
        if (!sig) {
                *siglen = (size_t) RSA_size(rsa);
                return 1;
        }

        if (EVP_PKEY_CTX_get_rsa_padding(ctx, &padding) <= 0 || EVP_PKEY_CTX_get_signature_md(ctx, &md) <= 0)
                return 0;
        if (!md) {
                refuse("an RSA signature without a digest");
                return 0;
        }
        if (tbslen != (size_t) EVP_MD_get_size(md)) {
                ERR_raise(ERR_LIB_RSA, RSA_R_INVALID_DIGEST_LENGTH);
                return 0;
        }
        if (padding == RSA_PKCS1_PSS_PADDING) {
                if (EVP_PKEY_CTX_get_rsa_mgf1_md(ctx, &mgf1) <= 0 ||
                    EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx, &saltlen) <= 0)
                        return 0;
                saltlen = pss_salt_length(rsa, md, saltlen);
                if (saltlen < 0) {
                        ERR_raise(ERR_LIB_RSA, RSA_R_INVALID_SALT_LENGTH);
                        return 0;
                }
                r.mgf1_md = md_name(mgf1 ? mgf1 : md);
                r.saltlen = saltlen;
        } else if (padding != RSA_PKCS1_PADDING) {
                refuse("an RSA signature with a padding other than PKCS#1 v1.5 or PSS");
                return 0;
        }
        r.padding = padding;
        r.md = md_name(md);
        r.data = (uint8_t *) tbs;
        r.size = tbslen;
        return forward(k, &r, sig, *siglen, siglen);
}

/* EVP_PKEY_decrypt() of an RSA key, with the context's padding. */
static int remote_rsa_pkey_decrypt(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen, const unsigned char *in,
                                   size_t inlen) {
        const EVP_MD *md = NULL, *mgf1 = NULL;
        const RemoteKey *k;
        const RSA *rsa;
        KeyOpRequest r = { .kind = KEY_OP_DECRYPT };
        int padding;

        k = ctx_rsa_remote(ctx, &rsa);
        if (!k)
                return remote.default_rsa_decrypt(ctx, out, outlen, in, inlen);
        if (!out) {
                *outlen = (size_t) RSA_size(rsa);
                return 1;
        }

        if (EVP_PKEY_CTX_get_rsa_padding(ctx, &padding) <= 0)
                return 0;
        if (padding == RSA_PKCS1_OAEP_PADDING) {
                unsigned char *label = NULL;
                int n;

                if (EVP_PKEY_CTX_get_rsa_oaep_md(ctx, &md) <= 0 || EVP_PKEY_CTX_get_rsa_mgf1_md(ctx, &mgf1) <= 0)
                        return 0;
                /* Asked of the method itself: EVP_PKEY_CTX_get0_rsa_oaep_label()
                 * translates its answer for a legacy context, and takes a
                 * label of length 0 (none) for a failure. */
                n = EVP_PKEY_CTX_ctrl(ctx, EVP_PKEY_RSA, EVP_PKEY_OP_DECRYPT, EVP_PKEY_CTRL_GET_RSA_OAEP_LABEL, 0,
                                      &label);
                if (n < 0)
                        return 0;
                /* OpenSSL's OAEP defaults: SHA-1, MGF1 with the OAEP digest. */
                if (!md)
                        md = EVP_sha1();
                r.md = md_name(md);
                r.mgf1_md = md_name(mgf1 ? mgf1 : md);
                r.label = n > 0 ? label : NULL;
                r.label_size = n > 0 ? (size_t) n : 0;
        } else if (padding != RSA_PKCS1_PADDING) {
                refuse("an RSA decryption with a padding other than PKCS#1 v1.5 or OAEP");
                return 0;
        }
        r.padding = padding;
        r.data = (uint8_t *) in;
        r.size = inlen;
        return forward(k, &r, out, *outlen, outlen);
}

/* RSA_sign() called directly: PKCS#1 v1.5 over a digest of type. */
static int remote_rsa_sign(int type, const unsigned char *m, unsigned int m_length, unsigned char *sigret,
                           unsigned int *siglen, const RSA *rsa) {
        const EVP_MD *md = EVP_get_digestbynid(type);
        const RemoteKey *k = rsa_remote(rsa);
        KeyOpRequest r = {
                .kind = KEY_OP_SIGN,
                .padding = RSA_PKCS1_PADDING,
                .data = (uint8_t *) m,
                .size = m_length,
        };
        size_t n;

        if (!k || !md || m_length != (unsigned) EVP_MD_get_size(md)) {
                refuse("an RSA signature of something other than a digest");
                return 0;
        }
        r.md = md_name(md);
        if (!forward(k, &r, sigret, (size_t) RSA_size(rsa), &n))
                return 0;
        *siglen = (unsigned) n;
        return 1;
}

/* RSA_private_decrypt() called directly. */
static int remote_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding) {
        const RemoteKey *k = rsa_remote(rsa);
        KeyOpRequest r = { .kind = KEY_OP_DECRYPT, .padding = padding, .data = (uint8_t *) from };
        size_t n;

        if (!k || flen <= 0 || (padding != RSA_PKCS1_PADDING && padding != RSA_PKCS1_OAEP_PADDING)) {
                refuse("a raw RSA decryption");
                return -1;
        }
        if (padding == RSA_PKCS1_OAEP_PADDING)
                r.md = r.mgf1_md = (char *) "SHA1"; /* what RSA_private_decrypt() means by it */
        r.size = (size_t) flen;
        if (!forward(k, &r, to, (size_t) RSA_size(rsa), &n))
                return -1;
        return (int) n;
}

/* RSA_private_encrypt(): a raw or unhashed RSA signature. Never. */
static int remote_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding) {
        refuse("a raw RSA private-key operation");
        return -1;
}

/* ---- EC ---- */

static const RemoteKey *ec_remote(const EC_KEY *ec) {
        return ec ? EC_KEY_get_ex_data(ec, remote.ec_index) : NULL;
}

/* The digest an ECDSA signature is over: type when the size fits, else the
 * SHA-1/SHA-2 digest of that size (ECDSA itself does not say). */
static const EVP_MD *ecdsa_digest(int type, int dlen) {
        const EVP_MD *md = EVP_get_digestbynid(type);

        if (md && EVP_MD_get_size(md) == dlen)
                return md;
        switch (dlen) {
        case 20:
                return EVP_sha1();
        case 28:
                return EVP_sha224();
        case 32:
                return EVP_sha256();
        case 48:
                return EVP_sha384();
        case 64:
                return EVP_sha512();
        default:
                return NULL;
        }
}

/* The signature as an ECDSA_SIG, or NULL with an OpenSSL error. */
static ECDSA_SIG *remote_ecdsa(int type, const unsigned char *dgst, int dlen, EC_KEY *eckey) {
        const RemoteKey *k = ec_remote(eckey);
        const EVP_MD *md = ecdsa_digest(type, dlen);
        KeyOpRequest r = { .kind = KEY_OP_SIGN, .data = (uint8_t *) dgst, .size = (size_t) dlen };
        unsigned char buf[256]; /* DER of two integers of up to 66 bytes (P-521) */
        const unsigned char *p = buf;
        ECDSA_SIG *s;
        size_t n;

        if (!k || !md || dlen <= 0) {
                refuse("an ECDSA signature of something other than a digest");
                return NULL;
        }
        r.md = md_name(md);
        if (!forward(k, &r, buf, sizeof(buf), &n))
                return NULL;
        s = d2i_ECDSA_SIG(NULL, &p, (long) n);
        if (!s || p != buf + n) {
                ECDSA_SIG_free(s);
                ERR_raise(ERR_LIB_EC, EC_R_BAD_SIGNATURE);
                return NULL;
        }
        return s;
}

/* ECDSA_sign(), as the EVP layer calls it: a DER signature. */
static int remote_ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
                          const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey) {
        ECDSA_SIG *s = remote_ecdsa(type, dgst, dlen, eckey);
        unsigned char *p = sig;
        int n;

        if (!s)
                return 0;
        /* Re-encoded: the caller's buffer has ECDSA_size() bytes, which DER fits. */
        n = i2d_ECDSA_SIG(s, NULL);
        if (n <= 0 || n > ECDSA_size(eckey) || i2d_ECDSA_SIG(s, &p) != n) {
                ECDSA_SIG_free(s);
                ERR_raise(ERR_LIB_EC, EC_R_BAD_SIGNATURE);
                return 0;
        }
        ECDSA_SIG_free(s);
        *siglen = (unsigned) n;
        return 1;
}

/* ECDSA_do_sign(). */
static ECDSA_SIG *remote_ec_sign_sig(const unsigned char *dgst, int dgst_len, const BIGNUM *in_kinv,
                                     const BIGNUM *in_r, EC_KEY *eckey) {
        return remote_ecdsa(NID_undef, dgst, dgst_len, eckey);
}

/* ECDH_compute_key(): the shared secret with the peer's point. */
static int remote_ec_compute_key(unsigned char **psec, size_t *pseclen, const EC_POINT *pub_key,
                                 const EC_KEY *ecdh) {
        const RemoteKey *k = ec_remote(ecdh);
        const EC_GROUP *group = EC_KEY_get0_group(ecdh);
        unsigned char point[1 + 2 * 66], secret[66];
        KeyOpRequest r = { .kind = KEY_OP_DERIVE, .data = point };
        size_t n;

        if (!k || !group)
                return 0;
        r.size = EC_POINT_point2oct(group, pub_key, POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point), NULL);
        if (r.size == 0)
                return 0;
        if (!forward(k, &r, secret, sizeof(secret), &n))
                return 0;
        *psec = OPENSSL_memdup(secret, n);
        OPENSSL_cleanse(secret, sizeof(secret));
        if (!*psec)
                return 0;
        *pseclen = n;
        return 1;
}

/* ---- the methods, made once ---- */

/* ENGINE_PKEY_METHS_PTR of the private engine: RSA only. */
static int engine_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **pmeth, const int **nids, int nid) {
        static const int rsa_only[] = { EVP_PKEY_RSA, 0 };

        if (!pmeth) {
                *nids = rsa_only;
                return 1;
        }
        *pmeth = nid == EVP_PKEY_RSA ? remote.rsa_pkey_method : NULL;
        return *pmeth != NULL;
}

static int setup_rsa(void) {
        const EVP_PKEY_METHOD *openssl = EVP_PKEY_meth_find(EVP_PKEY_RSA);
        PkeyInit sign_init = NULL, decrypt_init = NULL;
        EVP_PKEY_METHOD *pmeth;
        RSA_METHOD *m;
        ENGINE *e;

        remote.rsa_index = RSA_get_ex_new_index(0, NULL, NULL, dup_remote_key, free_remote_key);
        if (remote.rsa_index < 0 || !openssl)
                return -ENOMEM;

        m = RSA_meth_dup(RSA_PKCS1_OpenSSL());
        if (!m || !RSA_meth_set1_name(m, "smimed remote key") || !RSA_meth_set_sign(m, remote_rsa_sign) ||
            !RSA_meth_set_priv_dec(m, remote_rsa_priv_dec) || !RSA_meth_set_priv_enc(m, remote_rsa_priv_enc)) {
                RSA_meth_free(m);
                return -ENOMEM;
        }

        /* OpenSSL's legacy RSA signing pads PSS itself and then asks the
         * RSA_METHOD for a raw operation (OAEP decryption likewise), which a
         * token refuses and smimed never forwards: an EVP_PKEY_METHOD takes
         * the operation first, with its parameters. It is given to remote
         * keys only, as their "pmeth engine" (EVP_PKEY_set1_engine()) of an
         * ENGINE that is never added or registered. EVP_PKEY_meth_add0()
         * would not do: OpenSSL 3.0 then uses the added method for every
         * RSA key, a provider's too (int_ctx_new()), and breaks them (OAEP
         * encryption to a certificate fails). */
        EVP_PKEY_meth_get_sign(openssl, &sign_init, &remote.default_rsa_sign);
        EVP_PKEY_meth_get_decrypt(openssl, &decrypt_init, &remote.default_rsa_decrypt);
        pmeth = EVP_PKEY_meth_new(EVP_PKEY_RSA, EVP_PKEY_FLAG_AUTOARGLEN);
        if (!pmeth || !remote.default_rsa_sign || !remote.default_rsa_decrypt) {
                EVP_PKEY_meth_free(pmeth);
                RSA_meth_free(m);
                return -ENOMEM;
        }
        EVP_PKEY_meth_copy(pmeth, openssl);
        EVP_PKEY_meth_set_sign(pmeth, sign_init, remote_rsa_pkey_sign);
        EVP_PKEY_meth_set_decrypt(pmeth, decrypt_init, remote_rsa_pkey_decrypt);

        e = ENGINE_new();
        if (!e || !ENGINE_set_id(e, "smimed-remote-key") || !ENGINE_set_name(e, "smimed remote private keys") ||
            !ENGINE_set_flags(e, ENGINE_FLAGS_NO_REGISTER_ALL) || !ENGINE_set_pkey_meths(e, engine_pkey_meths)) {
                ENGINE_free(e);
                EVP_PKEY_meth_free(pmeth);
                RSA_meth_free(m);
                return -ENOMEM;
        }
        remote.rsa_method = m;
        remote.rsa_pkey_method = pmeth;
        remote.engine = e;
        return 0;
}

static int setup_ec(void) {
        int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;
        EC_KEY_METHOD *m;

        remote.ec_index = EC_KEY_get_ex_new_index(0, NULL, NULL, dup_remote_key, free_remote_key);
        if (remote.ec_index < 0)
                return -ENOMEM;
        m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
        if (!m)
                return -ENOMEM;
        EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), NULL, &sign_setup, NULL);
        EC_KEY_METHOD_set_sign(m, remote_ec_sign, sign_setup, remote_ec_sign_sig);
        EC_KEY_METHOD_set_compute_key(m, remote_ec_compute_key);
        remote.ec_method = m;
        return 0;
}

static void setup(void) {
        remote.ready = setup_rsa() >= 0 && setup_ec() >= 0;
}

/* ---- keys ---- */

static RemoteKey *remote_key_data(RemoteKeyCall call, void *userdata) {
        RemoteKey *k = malloc(sizeof(RemoteKey));

        if (k)
                *k = (RemoteKey) { .call = call, .userdata = userdata };
        return k;
}

static EVP_PKEY *new_rsa(const RSA *public, RemoteKeyCall call, void *userdata) {
        const BIGNUM *n = NULL, *e = NULL;
        BIGNUM *n_copy, *e_copy;
        EVP_PKEY *pkey;
        RemoteKey *k;
        RSA *rsa;

        RSA_get0_key(public, &n, &e, NULL);
        if (!n || !e)
                return NULL;
        rsa = RSA_new();
        if (!rsa)
                return NULL;
        (void) RSA_set_method(rsa, remote.rsa_method);
        n_copy = BN_dup(n);
        e_copy = BN_dup(e);
        if (!n_copy || !e_copy || !RSA_set0_key(rsa, n_copy, e_copy, NULL)) {
                BN_free(n_copy);
                BN_free(e_copy);
                RSA_free(rsa);
                return NULL;
        }
        k = remote_key_data(call, userdata);
        if (!k || !RSA_set_ex_data(rsa, remote.rsa_index, k)) {
                free(k);
                RSA_free(rsa);
                return NULL;
        }
        pkey = EVP_PKEY_new();
        if (!pkey || !EVP_PKEY_assign_RSA(pkey, rsa)) {
                EVP_PKEY_free(pkey);
                RSA_free(rsa);
                return NULL;
        }
        if (!EVP_PKEY_set1_engine(pkey, remote.engine)) {
                EVP_PKEY_free(pkey);
                return NULL;
        }
        return pkey;
}

static EVP_PKEY *new_ec(const EC_KEY *public, RemoteKeyCall call, void *userdata) {
        const EC_GROUP *group = EC_KEY_get0_group(public);
        const EC_POINT *point = EC_KEY_get0_public_key(public);
        EVP_PKEY *pkey;
        RemoteKey *k;
        EC_KEY *ec;

        if (!group || !point)
                return NULL;
        ec = EC_KEY_new();
        if (!ec)
                return NULL;
        if (!EC_KEY_set_method(ec, remote.ec_method) || !EC_KEY_set_group(ec, group) ||
            !EC_KEY_set_public_key(ec, point)) {
                EC_KEY_free(ec);
                return NULL;
        }
        k = remote_key_data(call, userdata);
        if (!k || !EC_KEY_set_ex_data(ec, remote.ec_index, k)) {
                free(k);
                EC_KEY_free(ec);
                return NULL;
        }
        pkey = EVP_PKEY_new();
        if (!pkey || !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
                EVP_PKEY_free(pkey);
                EC_KEY_free(ec);
                return NULL;
        }
        return pkey;
}

EVP_PKEY *remote_key_new(X509 *certificate, RemoteKeyCall call, void *userdata) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        EVP_PKEY *public;

        if (!certificate || !call)
                return NULL;
        (void) pthread_once(&once, setup);
        if (!remote.ready)
                return NULL;

        public = X509_get0_pubkey(certificate);
        if (!public)
                return NULL;
        switch (EVP_PKEY_get_id(public)) {
        case EVP_PKEY_RSA:
                return new_rsa(EVP_PKEY_get0_RSA(public), call, userdata);
        case EVP_PKEY_EC:
                return new_ec(EVP_PKEY_get0_EC_KEY(public), call, userdata);
        default:
                return NULL;
        }
}
