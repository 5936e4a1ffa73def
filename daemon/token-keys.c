/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "certificate.h"
#include "hexdecoct.h"
#include "log.h"
#include "token-internal.h"

#define FIND_BATCH 64

/* Reads one attribute of any length into a new buffer. */
int token_get_attribute(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type, unsigned char **ret,
                         size_t *ret_size) {
        CK_ATTRIBUTE a = { type, NULL, 0 };
        unsigned char *buf;
        CK_RV rv;

        rv = token->module->C_GetAttributeValue(session, object, &a, 1);
        if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
                return -ENOENT;
        buf = malloc(a.ulValueLen + 1);
        if (!buf)
                return -ENOMEM;
        a.pValue = buf;
        rv = token->module->C_GetAttributeValue(session, object, &a, 1);
        if (rv != CKR_OK) {
                free(buf);
                return -EIO;
        }
        buf[a.ulValueLen] = 0;
        *ret = buf;
        *ret_size = a.ulValueLen;
        return 0;
}

/* Every object that matches template. */
int token_find_objects(Token *token, CK_SESSION_HANDLE session, CK_ATTRIBUTE *template, CK_ULONG n_template, CK_OBJECT_HANDLE **ret,
                        size_t *ret_n) {
        CK_OBJECT_HANDLE *objects = NULL;
        size_t n = 0;
        CK_ULONG got;
        CK_RV rv;

        rv = token->module->C_FindObjectsInit(session, template, n_template);
        if (rv != CKR_OK)
                return log_warning_errno(EIO, "C_FindObjectsInit failed: %s", p11_kit_strerror(rv));

        for (;;) {
                CK_OBJECT_HANDLE *more = realloc(objects, (n + FIND_BATCH) * sizeof(CK_OBJECT_HANDLE));

                if (!more) {
                        rv = CKR_HOST_MEMORY;
                        break;
                }
                objects = more;
                rv = token->module->C_FindObjects(session, objects + n, FIND_BATCH, &got);
                if (rv != CKR_OK || got == 0)
                        break;
                n += got;
        }
        token->module->C_FindObjectsFinal(session);

        if (rv != CKR_OK) {
                free(objects);
                return log_warning_errno(rv == CKR_HOST_MEMORY ? ENOMEM : EIO, "C_FindObjects failed: %s",
                                         p11_kit_strerror(rv));
        }
        *ret = objects;
        *ret_n = n;
        return 0;
}

/* The first object of class with this CKA_ID. */
int token_find_by_id(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_CLASS class, const unsigned char *id, size_t id_size,
                      CK_OBJECT_HANDLE *ret) {
        CK_ATTRIBUTE template[] = {
                { CKA_CLASS, &class, sizeof(class) },
                { CKA_ID, (void *) id, id_size },
        };
        _cleanup_free_ CK_OBJECT_HANDLE *objects = NULL;
        size_t n = 0;
        int r;

        r = token_find_objects(token, session, template, ELEMENTSOF(template), &objects, &n);
        if (r < 0)
                return r;
        if (n == 0)
                return -ENOENT;
        *ret = objects[0];
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free);

static int pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

        if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) <= 0)
                return -EINVAL;
        return 0;
}

/* RSA: both key objects carry the modulus and public exponent. */
static int rsa_public_key(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, EVP_PKEY **ret) {
        _cleanup_free_ unsigned char *n = NULL, *e = NULL;
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
        size_t n_size, e_size;
        BIGNUM *bn_n, *bn_e;
        int r;

        if (token_get_attribute(token, session, key, CKA_MODULUS, &n, &n_size) < 0 ||
            token_get_attribute(token, session, key, CKA_PUBLIC_EXPONENT, &e, &e_size) < 0)
                return -ENOENT;

        bn_n = BN_bin2bn(n, (int) n_size, NULL);
        bn_e = BN_bin2bn(e, (int) e_size, NULL);
        bld = OSSL_PARAM_BLD_new();
        r = bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
                            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)
                    ? pkey_from_params("RSA", bld, ret)
                    : -ENOMEM;
        BN_free(bn_n);
        BN_free(bn_e);
        return r;
}

/* EC from one object that carries both CKA_EC_PARAMS and CKA_EC_POINT. */
static int ec_public_key_from(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE params_object, CK_OBJECT_HANDLE point_object,
                              EVP_PKEY **ret) {
        _cleanup_free_ unsigned char *params = NULL, *point = NULL;
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
        size_t params_size, point_size;
        ASN1_OBJECT *oid = NULL;
        ASN1_OCTET_STRING *os = NULL;
        const unsigned char *p;
        const char *group;
        int r;

        if (token_get_attribute(token, session, point_object, CKA_EC_POINT, &point, &point_size) < 0 ||
            token_get_attribute(token, session, params_object, CKA_EC_PARAMS, &params, &params_size) < 0)
                return -ENOENT;

        p = params;
        oid = d2i_ASN1_OBJECT(NULL, &p, (long) params_size);
        group = oid ? OBJ_nid2sn(OBJ_obj2nid(oid)) : NULL;
        ASN1_OBJECT_free(oid);
        p = point;
        os = d2i_ASN1_OCTET_STRING(NULL, &p, (long) point_size);
        bld = OSSL_PARAM_BLD_new();
        r = group && os && bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
                            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, ASN1_STRING_get0_data(os),
                                                             (size_t) ASN1_STRING_length(os))
                    ? pkey_from_params("EC", bld, ret)
                    : -EINVAL;
        ASN1_OCTET_STRING_free(os);
        return r;
}

int token_public_object_key(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE public_key, EVP_PKEY **ret) {
        CK_KEY_TYPE type;
        CK_ATTRIBUTE a = { CKA_KEY_TYPE, &type, sizeof(type) };

        if (token->module->C_GetAttributeValue(session, public_key, &a, 1) != CKR_OK)
                return -EIO;
        if (type == CKK_RSA)
                return rsa_public_key(token, session, public_key, ret);
        if (type == CKK_EC)
                return ec_public_key_from(token, session, public_key, public_key, ret);
        return -EOPNOTSUPP;
}

/* EC: the curve is on the private key object, the point on the public key
 * object (or the certificate) with the same CKA_ID. */
static int ec_public_key(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const unsigned char *id, size_t id_size,
                         EVP_PKEY **ret) {
        _cleanup_free_ unsigned char *cert = NULL;
        CK_OBJECT_HANDLE object;
        size_t cert_size;
        const unsigned char *p;
        X509 *x;

        if (token_find_by_id(token, session, CKO_PUBLIC_KEY, id, id_size, &object) >= 0)
                return ec_public_key_from(token, session, key, object, ret);

        if (token_find_by_id(token, session, CKO_CERTIFICATE, id, id_size, &object) < 0 ||
            token_get_attribute(token, session, object, CKA_VALUE, &cert, &cert_size) < 0)
                return -ENOENT;
        p = cert;
        x = d2i_X509(NULL, &p, (long) cert_size);
        if (!x)
                return -EINVAL;
        *ret = X509_get_pubkey(x);
        X509_free(x);
        return *ret ? 0 : -EINVAL;
}

int token_object_public_key(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE private_key, EVP_PKEY **ret) {
        _cleanup_free_ unsigned char *id = NULL;
        size_t id_size = 0;
        CK_KEY_TYPE type;
        CK_ATTRIBUTE a = { CKA_KEY_TYPE, &type, sizeof(type) };

        if (token->module->C_GetAttributeValue(session, private_key, &a, 1) != CKR_OK)
                return -EIO;
        if (token_get_attribute(token, session, private_key, CKA_ID, &id, &id_size) < 0)
                id_size = 0;
        if (type == CKK_RSA)
                return rsa_public_key(token, session, private_key, ret);
        if (type == CKK_EC)
                return ec_public_key(token, session, private_key, id, id_size, ret);
        return -EOPNOTSUPP;
}

static int token_key_read(Token *token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, TokenKey *ret) {
        _cleanup_free_ unsigned char *id = NULL, *label = NULL;
        size_t id_size = 0, label_size = 0;
        CK_KEY_TYPE type;
        CK_ATTRIBUTE a = { CKA_KEY_TYPE, &type, sizeof(type) };
        EVP_PKEY *pkey = NULL;
        TokenKey key = {};
        int r;

        if (token->module->C_GetAttributeValue(session, object, &a, 1) != CKR_OK)
                return -EIO;
        if (token_get_attribute(token, session, object, CKA_ID, &id, &id_size) < 0)
                id_size = 0;
        if (token_get_attribute(token, session, object, CKA_LABEL, &label, &label_size) < 0)
                label_size = 0;

        key.id = hexmem(id, id_size);
        key.label = strndup(label ? (const char *) label : "", label_size);
        if (!key.id || !key.label) {
                free(key.id);
                free(key.label);
                return -ENOMEM;
        }

        key.algorithm = type == CKK_RSA ? "rsa" : type == CKK_EC ? "ec" : "unknown";
        r = token_object_public_key(token, session, object, &pkey);

        if (r >= 0) {
                unsigned char *spki = NULL;
                int len = i2d_PUBKEY(pkey, &spki);

                if (len > 0)
                        sha256_hex(spki, (size_t) len, key.spki_sha256);
                OPENSSL_free(spki);
                key.bits = (unsigned) EVP_PKEY_get_bits(pkey);
                EVP_PKEY_free(pkey);
        } else
                log_warning("Key %s (\"%s\") in the token: cannot read its public key; it cannot be matched to "
                            "a certificate.",
                            key.id, key.label);

        *ret = key;
        return 0;
}

void token_keys_free(TokenKey *keys, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(keys[i].id);
                free(keys[i].label);
                free(keys[i].uri);
        }
        free(keys);
}

int token_list_keys(Token *token, TokenKey **ret, size_t *ret_n) {
        CK_SESSION_HANDLE session = token->session;
        CK_OBJECT_CLASS class = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE template[] = {
                { CKA_CLASS, &class, sizeof(class) },
        };
        _cleanup_free_ CK_OBJECT_HANDLE *objects = NULL;
        TokenKey *keys;
        size_t n = 0;
        int r;

        if (token->state != TOKEN_STATE_READY)
                return -ENODEV;

        r = token_find_objects(token, session, template, ELEMENTSOF(template), &objects, &n);
        if (r < 0)
                return r;

        keys = calloc(n ? n : 1, sizeof(TokenKey));
        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = token_key_read(token, session, objects[i], &keys[i]);
                if (r < 0) {
                        token_keys_free(keys, i);
                        return r;
                }
                /* A key whose id makes no URI is still listed; signing with it fails then. */
                r = token_key_uri(token, keys[i].id, &keys[i].uri);
                if (r == -ENOMEM) {
                        token_keys_free(keys, i + 1);
                        return r;
                }
        }

        *ret = keys;
        *ret_n = n;
        return 0;
}
