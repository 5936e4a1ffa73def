/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "key-op.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);

void key_op_request_done(KeyOpRequest *r) {
        free(r->md);
        free(r->mgf1_md);
        free(r->label);
        free(r->data);
        *r = (KeyOpRequest) {};
}

const char *key_op_kind_to_string(KeyOpKind kind) {
        switch (kind) {
        case KEY_OP_SIGN:
                return "sign";
        case KEY_OP_DECRYPT:
                return "decrypt";
        case KEY_OP_DERIVE:
                return "derive";
        default:
                return NULL;
        }
}

void key_op_request_put(WorkerMessage *m, const KeyOpRequest *r) {
        worker_message_put_u32(m, (uint32_t) r->kind);
        worker_message_put_i32(m, r->padding);
        worker_message_put_string(m, r->md);
        worker_message_put_string(m, r->mgf1_md);
        worker_message_put_i32(m, r->saltlen);
        worker_message_put_blob(m, r->label, r->label_size);
        worker_message_put_blob(m, r->data, r->size);
}

static bool padding_known(int padding) {
        return padding == 0 || padding == RSA_PKCS1_PADDING || padding == RSA_PKCS1_PSS_PADDING ||
               padding == RSA_PKCS1_OAEP_PADDING;
}

int key_op_request_get(WorkerMessage *m, KeyOpRequest *ret) {
        _cleanup_(key_op_request_done) KeyOpRequest r = {};
        uint32_t kind;
        int32_t padding, saltlen;
        int e;

        e = worker_message_get_u32(m, &kind);
        if (e >= 0)
                e = worker_message_get_i32(m, &padding);
        if (e >= 0)
                e = worker_message_get_string(m, &r.md);
        if (e >= 0)
                e = worker_message_get_string(m, &r.mgf1_md);
        if (e >= 0)
                e = worker_message_get_i32(m, &saltlen);
        if (e >= 0)
                e = worker_message_get_blob(m, &r.label, &r.label_size);
        if (e >= 0)
                e = worker_message_get_blob(m, &r.data, &r.size);
        if (e < 0)
                return e;

        if (kind >= _KEY_OP_KIND_MAX || !padding_known(padding) || saltlen < 0 ||
            (saltlen > 0 && padding != RSA_PKCS1_PSS_PADDING) ||
            (r.label_size > 0 && padding != RSA_PKCS1_OAEP_PADDING) || r.size == 0)
                return -EBADMSG;
        if ((r.md && !EVP_get_digestbyname(r.md)) || (r.mgf1_md && !EVP_get_digestbyname(r.mgf1_md)))
                return -EBADMSG;

        r.kind = (KeyOpKind) kind;
        r.padding = padding;
        r.saltlen = saltlen;
        *ret = r;
        r = (KeyOpRequest) {};
        return 0;
}

/* The digest called name; NULL for none (no name, or one OpenSSL does not know). */
static const EVP_MD *digest(const char *name) {
        return name ? EVP_get_digestbyname(name) : NULL;
}

/* Runs the operation ctx was set up for on r's data into a new buffer. */
typedef int (*PkeyOperation)(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen, const unsigned char *in,
                             size_t inlen);

static int run(EVP_PKEY_CTX *ctx, PkeyOperation op, const KeyOpRequest *r, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t n = 0;

        if (op(ctx, NULL, &n, r->data, r->size) <= 0 || n == 0)
                return -EIO;
        out = malloc(n);
        if (!out)
                return -ENOMEM;
        if (op(ctx, out, &n, r->data, r->size) <= 0) {
                OPENSSL_cleanse(out, n);
                return -EIO;
        }
        *ret = TAKE_PTR(out);
        *ret_size = n;
        return 0;
}

static int derive_op(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen, const unsigned char *in, size_t inlen) {
        return EVP_PKEY_derive(ctx, out, outlen);
}

static int perform_sign(EVP_PKEY *key, bool rsa, const KeyOpRequest *r, uint8_t **ret, size_t *ret_size) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        const EVP_MD *md = digest(r->md), *mgf1 = digest(r->mgf1_md);
        bool pss = r->padding == RSA_PKCS1_PSS_PADDING;

        if (!md)
                return -EOPNOTSUPP; /* a signature over whatever data: never */
        if (r->size != (size_t) EVP_MD_get_size(md) || r->label_size > 0)
                return -EINVAL;
        if (rsa ? (r->padding != RSA_PKCS1_PADDING && !pss) : r->padding != 0)
                return rsa ? -EOPNOTSUPP : -EINVAL;
        if (!pss && (r->mgf1_md || r->saltlen != 0))
                return -EINVAL;
        if (pss) {
                /* The largest salt the modulus leaves room for (RFC 8017, 9.1.1). */
                int max = EVP_PKEY_get_size(key) - EVP_MD_get_size(md) - 2;

                if ((EVP_PKEY_get_bits(key) & 7) == 1)
                        max--;
                if (r->saltlen > max || (r->mgf1_md && !mgf1))
                        return -EINVAL;
        }

        ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_sign_init(ctx) <= 0)
                return -EIO;
        if (rsa && EVP_PKEY_CTX_set_rsa_padding(ctx, r->padding) <= 0)
                return -EIO;
        if (EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)
                return -EIO;
        if (pss && (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1 ? mgf1 : md) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, r->saltlen) <= 0))
                return -EIO;
        return run(ctx, EVP_PKEY_sign, r, ret, ret_size);
}

static int perform_decrypt(EVP_PKEY *key, bool rsa, const KeyOpRequest *r, uint8_t **ret, size_t *ret_size) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        const EVP_MD *md = digest(r->md), *mgf1 = digest(r->mgf1_md);
        bool oaep = r->padding == RSA_PKCS1_OAEP_PADDING;

        if (!rsa)
                return -EINVAL;
        if (r->padding != RSA_PKCS1_PADDING && !oaep)
                return -EOPNOTSUPP; /* raw RSA among others */
        if (r->saltlen != 0 || r->size > (size_t) EVP_PKEY_get_size(key))
                return -EINVAL;
        if (oaep ? (!md || (r->mgf1_md && !mgf1)) : (r->md || r->mgf1_md || r->label_size > 0))
                return -EINVAL;

        ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_decrypt_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_padding(ctx, r->padding) <= 0)
                return -EIO;
        if (oaep) {
                if (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1 ? mgf1 : md) <= 0)
                        return -EIO;
                if (r->label_size > 0) {
                        /* set0: the context takes the copy. */
                        void *label = OPENSSL_memdup(r->label, r->label_size);

                        if (!label)
                                return -ENOMEM;
                        if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int) r->label_size) <= 0) {
                                OPENSSL_free(label);
                                return -EIO;
                        }
                }
        }
        return run(ctx, EVP_PKEY_decrypt, r, ret, ret_size);
}

static int perform_derive(EVP_PKEY *key, bool rsa, const KeyOpRequest *r, uint8_t **ret, size_t *ret_size) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *peer = NULL;

        if (rsa || r->padding != 0 || r->md || r->mgf1_md || r->saltlen != 0 || r->label_size > 0)
                return -EINVAL;

        /* The peer's key on the key's curve, as OpenSSL's CMS makes it for a
         * peer without parameters; a point not on the curve is refused. */
        peer = EVP_PKEY_new();
        if (!peer)
                return -ENOMEM;
        if (EVP_PKEY_copy_parameters(peer, key) <= 0 ||
            EVP_PKEY_set1_encoded_public_key(peer, r->data, r->size) <= 0)
                return -EINVAL;

        ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_derive_init(ctx) <= 0)
                return -EIO;
        if (EVP_PKEY_derive_set_peer(ctx, peer) <= 0)
                return -EINVAL;
        return run(ctx, derive_op, r, ret, ret_size);
}

int key_op_perform(EVP_PKEY *key, const KeyOpRequest *r, uint8_t **ret, size_t *ret_size) {
        int type = EVP_PKEY_get_base_id(key);
        bool rsa = type == EVP_PKEY_RSA;
        int e;

        if (!rsa && type != EVP_PKEY_EC)
                return -EOPNOTSUPP;
        if (!r->data || r->size == 0)
                return -EINVAL;

        ERR_clear_error();
        switch (r->kind) {
        case KEY_OP_SIGN:
                e = perform_sign(key, rsa, r, ret, ret_size);
                break;
        case KEY_OP_DECRYPT:
                e = perform_decrypt(key, rsa, r, ret, ret_size);
                break;
        case KEY_OP_DERIVE:
                e = perform_derive(key, rsa, r, ret, ret_size);
                break;
        default:
                return -EINVAL;
        }
        return e;
}
