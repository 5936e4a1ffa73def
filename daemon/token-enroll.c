/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hexdecoct.h"
#include "log.h"
#include "token-internal.h"

#define MAX_CREATED 4
#define BN_MAX_BYTES 1024 /* RSA-8192 */

static CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

/* Objects made by one call, destroyed again unless the call succeeds. */
typedef struct Created {
        Token *token;
        CK_SESSION_HANDLE session;
        CK_OBJECT_HANDLE objects[MAX_CREATED];
        size_t n;
        bool keep;
} Created;

static void created_done(Created *c) {
        if (c->keep)
                return;
        for (size_t i = 0; i < c->n; i++) {
                CK_RV rv = c->token->module->C_DestroyObject(c->session, c->objects[i]);

                if (rv != CKR_OK)
                        log_error("Cannot remove a half-created object from the token: %s", p11_kit_strerror(rv));
        }
}

static int token_rv_to_errno(CK_RV rv) {
        switch (rv) {
        case CKR_DEVICE_MEMORY:
                return -ENOSPC;
        case CKR_HOST_MEMORY:
                return -ENOMEM;
        case CKR_USER_NOT_LOGGED_IN:
        case CKR_SESSION_HANDLE_INVALID:
        case CKR_SESSION_CLOSED:
        case CKR_DEVICE_REMOVED:
        case CKR_TOKEN_NOT_PRESENT:
                return -ENODEV;
        case CKR_TOKEN_WRITE_PROTECTED:
                return -EROFS;
        case CKR_MECHANISM_INVALID:
        case CKR_ATTRIBUTE_VALUE_INVALID:
        case CKR_TEMPLATE_INCONSISTENT:
        case CKR_DOMAIN_PARAMS_INVALID:
        case CKR_CURVE_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        default:
                return -EIO;
        }
}

static int create_object(Created *c, CK_ATTRIBUTE *template, CK_ULONG n, const char *what) {
        CK_OBJECT_HANDLE object;
        CK_RV rv;

        if (c->n >= MAX_CREATED)
                return -E2BIG;
        rv = c->token->module->C_CreateObject(c->session, template, n, &object);
        if (rv != CKR_OK)
                return log_error_errno(token_rv_to_errno(rv), "Cannot write the %s into the token: %s", what,
                                       p11_kit_strerror(rv));
        c->objects[c->n++] = object;
        return 0;
}

static int key_id_bytes(EVP_PKEY *pkey, unsigned char md[EVP_MAX_MD_SIZE], unsigned int *ret_len) {
        X509_PUBKEY *xpk = NULL;
        const unsigned char *bits;
        int bits_len, ok;

        /* SHA-1 of the subjectPublicKey bits: what RFC 5280's method 1 makes a
         * subject key identifier of, and what most PKCS#11 tools use as CKA_ID. */
        if (!X509_PUBKEY_set(&xpk, pkey))
                return -EINVAL;
        ok = X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, xpk) &&
             EVP_Digest(bits, (size_t) bits_len, md, ret_len, EVP_sha1(), NULL);
        X509_PUBKEY_free(xpk);
        return ok ? 0 : -EINVAL;
}

int token_key_id_for(EVP_PKEY *pkey, char **ret_id) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        int r;

        r = key_id_bytes(pkey, md, &len);
        if (r < 0)
                return r;
        *ret_id = hexmem(md, len);
        return *ret_id ? 0 : -ENOMEM;
}

/* A big number parameter of pkey as big-endian bytes in buf. */
typedef struct BnBuf {
        unsigned char data[BN_MAX_BYTES];
        CK_ULONG size;
} BnBuf;

static int bn_param(EVP_PKEY *pkey, const char *name, BnBuf *out, int pad) {
        BIGNUM *bn = NULL;
        int len;

        if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
                return -EINVAL;
        len = pad > 0 ? BN_bn2binpad(bn, out->data, pad) : BN_bn2bin(bn, out->data);
        BN_clear_free(bn);
        if (len < 0 || len > BN_MAX_BYTES)
                return -EINVAL;
        out->size = (CK_ULONG) len;
        return 0;
}

static void bn_bufs_erase(BnBuf *b, size_t n) {
        explicit_bzero(b, n * sizeof(BnBuf));
}

static int import_rsa(Created *c, EVP_PKEY *pkey, const unsigned char *id, size_t id_size, const char *label) {
        static const char *const names[] = {
                OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,         OSSL_PKEY_PARAM_RSA_D,
                OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
        };
        BnBuf *b;
        CK_OBJECT_CLASS private_class = CKO_PRIVATE_KEY, public_class = CKO_PUBLIC_KEY;
        CK_KEY_TYPE type = CKK_RSA;
        int r = 0;

        b = calloc(ELEMENTSOF(names), sizeof(BnBuf));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(names); i++)
                r = bn_param(pkey, names[i], &b[i], 0);
        if (r < 0) {
                bn_bufs_erase(b, ELEMENTSOF(names));
                free(b);
                return log_error_errno(r, "The RSA key lacks a part the token needs (CRT parameters).");
        }

        {
                CK_ATTRIBUTE private_template[] = {
                        { CKA_CLASS, &private_class, sizeof(private_class) },
                        { CKA_KEY_TYPE, &type, sizeof(type) },
                        { CKA_TOKEN, &ck_true, sizeof(ck_true) },
                        { CKA_PRIVATE, &ck_true, sizeof(ck_true) },
                        { CKA_SENSITIVE, &ck_true, sizeof(ck_true) },
                        { CKA_EXTRACTABLE, &ck_false, sizeof(ck_false) },
                        { CKA_SIGN, &ck_true, sizeof(ck_true) },
                        { CKA_DECRYPT, &ck_true, sizeof(ck_true) },
                        { CKA_ID, (void *) id, id_size },
                        { CKA_LABEL, (void *) label, strlen(label) },
                        { CKA_MODULUS, b[0].data, b[0].size },
                        { CKA_PUBLIC_EXPONENT, b[1].data, b[1].size },
                        { CKA_PRIVATE_EXPONENT, b[2].data, b[2].size },
                        { CKA_PRIME_1, b[3].data, b[3].size },
                        { CKA_PRIME_2, b[4].data, b[4].size },
                        { CKA_EXPONENT_1, b[5].data, b[5].size },
                        { CKA_EXPONENT_2, b[6].data, b[6].size },
                        { CKA_COEFFICIENT, b[7].data, b[7].size },
                };
                CK_ATTRIBUTE public_template[] = {
                        { CKA_CLASS, &public_class, sizeof(public_class) },
                        { CKA_KEY_TYPE, &type, sizeof(type) },
                        { CKA_TOKEN, &ck_true, sizeof(ck_true) },
                        { CKA_PRIVATE, &ck_false, sizeof(ck_false) },
                        { CKA_VERIFY, &ck_true, sizeof(ck_true) },
                        { CKA_ENCRYPT, &ck_true, sizeof(ck_true) },
                        { CKA_ID, (void *) id, id_size },
                        { CKA_LABEL, (void *) label, strlen(label) },
                        { CKA_MODULUS, b[0].data, b[0].size },
                        { CKA_PUBLIC_EXPONENT, b[1].data, b[1].size },
                };

                r = create_object(c, private_template, ELEMENTSOF(private_template), "private key");
                if (r >= 0)
                        r = create_object(c, public_template, ELEMENTSOF(public_template), "public key");
        }
        bn_bufs_erase(b, ELEMENTSOF(names));
        free(b);
        return r;
}

/* The curve as the DER of its OID (CKA_EC_PARAMS). */
static int ec_params_der(EVP_PKEY *pkey, unsigned char **ret, int *ret_len) {
        char group[80];
        ASN1_OBJECT *oid;
        int nid;

        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL))
                return -EINVAL;
        nid = OBJ_txt2nid(group);
        if (nid == NID_undef)
                nid = EC_curve_nist2nid(group);
        oid = nid != NID_undef ? OBJ_nid2obj(nid) : NULL;
        if (!oid)
                return -EOPNOTSUPP;
        *ret = NULL;
        *ret_len = i2d_ASN1_OBJECT(oid, ret);
        return *ret_len > 0 ? 0 : -EINVAL;
}

/* The public point as DER OCTET STRING (CKA_EC_POINT). */
static int ec_point_der(EVP_PKEY *pkey, unsigned char **ret, int *ret_len) {
        unsigned char point[256];
        size_t point_len = 0;
        ASN1_OCTET_STRING *os;

        if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
                                             &point_len))
                return -EINVAL;
        os = ASN1_OCTET_STRING_new();
        if (!os || !ASN1_OCTET_STRING_set(os, point, (int) point_len)) {
                ASN1_OCTET_STRING_free(os);
                return -ENOMEM;
        }
        *ret = NULL;
        *ret_len = i2d_ASN1_OCTET_STRING(os, ret);
        ASN1_OCTET_STRING_free(os);
        return *ret_len > 0 ? 0 : -EINVAL;
}

static int import_ec(Created *c, EVP_PKEY *pkey, const unsigned char *id, size_t id_size, const char *label) {
        CK_OBJECT_CLASS private_class = CKO_PRIVATE_KEY, public_class = CKO_PUBLIC_KEY;
        CK_KEY_TYPE type = CKK_EC;
        unsigned char *params = NULL, *point = NULL;
        int params_len = 0, point_len = 0, r;
        BnBuf value = {};

        r = ec_params_der(pkey, &params, &params_len);
        if (r >= 0)
                r = ec_point_der(pkey, &point, &point_len);
        if (r >= 0)
                r = bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &value, (EVP_PKEY_get_bits(pkey) + 7) / 8);
        if (r < 0) {
                OPENSSL_free(params);
                OPENSSL_free(point);
                return log_error_errno(r, "The EC key cannot be described to the token (curve, point or scalar).");
        }

        {
                CK_ATTRIBUTE private_template[] = {
                        { CKA_CLASS, &private_class, sizeof(private_class) },
                        { CKA_KEY_TYPE, &type, sizeof(type) },
                        { CKA_TOKEN, &ck_true, sizeof(ck_true) },
                        { CKA_PRIVATE, &ck_true, sizeof(ck_true) },
                        { CKA_SENSITIVE, &ck_true, sizeof(ck_true) },
                        { CKA_EXTRACTABLE, &ck_false, sizeof(ck_false) },
                        { CKA_SIGN, &ck_true, sizeof(ck_true) },
                        { CKA_DERIVE, &ck_true, sizeof(ck_true) },
                        { CKA_ID, (void *) id, id_size },
                        { CKA_LABEL, (void *) label, strlen(label) },
                        { CKA_EC_PARAMS, params, (CK_ULONG) params_len },
                        { CKA_VALUE, value.data, value.size },
                };
                CK_ATTRIBUTE public_template[] = {
                        { CKA_CLASS, &public_class, sizeof(public_class) },
                        { CKA_KEY_TYPE, &type, sizeof(type) },
                        { CKA_TOKEN, &ck_true, sizeof(ck_true) },
                        { CKA_PRIVATE, &ck_false, sizeof(ck_false) },
                        { CKA_VERIFY, &ck_true, sizeof(ck_true) },
                        { CKA_ID, (void *) id, id_size },
                        { CKA_LABEL, (void *) label, strlen(label) },
                        { CKA_EC_PARAMS, params, (CK_ULONG) params_len },
                        { CKA_EC_POINT, point, (CK_ULONG) point_len },
                };

                r = create_object(c, private_template, ELEMENTSOF(private_template), "private key");
                if (r >= 0)
                        r = create_object(c, public_template, ELEMENTSOF(public_template), "public key");
        }
        explicit_bzero(&value, sizeof(value));
        OPENSSL_free(params);
        OPENSSL_free(point);
        return r;
}

static int create_certificate(Created *c, X509 *certificate, const unsigned char *id, size_t id_size,
                              const char *label) {
        CK_OBJECT_CLASS class = CKO_CERTIFICATE;
        CK_CERTIFICATE_TYPE type = CKC_X_509;
        unsigned char *der = NULL, *subject = NULL, *issuer = NULL, *serial = NULL;
        int der_len, subject_len, issuer_len, serial_len, r;

        der_len = i2d_X509(certificate, &der);
        subject_len = i2d_X509_NAME(X509_get_subject_name(certificate), &subject);
        issuer_len = i2d_X509_NAME(X509_get_issuer_name(certificate), &issuer);
        serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(certificate), &serial);
        if (der_len <= 0 || subject_len <= 0 || issuer_len <= 0 || serial_len <= 0)
                r = -EINVAL;
        else {
                CK_ATTRIBUTE template[] = {
                        { CKA_CLASS, &class, sizeof(class) },
                        { CKA_CERTIFICATE_TYPE, &type, sizeof(type) },
                        { CKA_TOKEN, &ck_true, sizeof(ck_true) },
                        { CKA_PRIVATE, &ck_false, sizeof(ck_false) },
                        { CKA_ID, (void *) id, id_size },
                        { CKA_LABEL, (void *) label, strlen(label) },
                        { CKA_SUBJECT, subject, (CK_ULONG) subject_len },
                        { CKA_ISSUER, issuer, (CK_ULONG) issuer_len },
                        { CKA_SERIAL_NUMBER, serial, (CK_ULONG) serial_len },
                        { CKA_VALUE, der, (CK_ULONG) der_len },
                };

                r = create_object(c, template, ELEMENTSOF(template), "certificate");
        }
        OPENSSL_free(der);
        OPENSSL_free(subject);
        OPENSSL_free(issuer);
        OPENSSL_free(serial);
        return r;
}

/* A session of its own, for work on a worker thread: PKCS#11 sessions are
 * not shared between threads. Closed by its cleanup. */
typedef struct OwnSession {
        Token *token;
        CK_SESSION_HANDLE handle;
        bool open;
} OwnSession;

static int own_session_open(Token *token, OwnSession *ret) {
        CK_RV rv;

        *ret = (OwnSession) { .token = token };
        rv = token->module->C_OpenSession(token->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                          &ret->handle);
        if (rv != CKR_OK)
                return log_error_errno(token_rv_to_errno(rv), "Cannot open a token session: %s",
                                       p11_kit_strerror(rv));
        ret->open = true;
        return 0;
}

static void own_session_close(OwnSession *s) {
        if (s->open)
                s->token->module->C_CloseSession(s->handle);
        s->open = false;
}

static int id_from_hex(const char *hex, unsigned char **ret, size_t *ret_size) {
        return unhexmem(hex, ret, ret_size);
}

int token_import_key(Token *token, EVP_PKEY *pkey, X509 *certificate, const char *label, char **ret_id,
                     bool *ret_created) {
        CK_SESSION_HANDLE session = token->session;
        _cleanup_(created_done) Created c = { .token = token, .session = session };
        unsigned char id[EVP_MAX_MD_SIZE];
        unsigned int id_size = 0;
        CK_OBJECT_HANDLE existing;
        int type, r;

        if (token->state != TOKEN_STATE_READY)
                return -ENODEV;

        r = key_id_bytes(pkey, id, &id_size);
        if (r < 0)
                return r;

        if (token_find_by_id(token, session, CKO_PRIVATE_KEY, id, id_size, &existing) >= 0) {
                /* The same key again: only a missing certificate object is added. */
                *ret_created = false;
        } else {
                type = EVP_PKEY_get_base_id(pkey);
                if (type == EVP_PKEY_RSA)
                        r = import_rsa(&c, pkey, id, id_size, label);
                else if (type == EVP_PKEY_EC)
                        r = import_ec(&c, pkey, id, id_size, label);
                else
                        r = log_error_errno(EOPNOTSUPP, "Only RSA and EC keys can be enrolled.");
                if (r < 0)
                        return r;
                *ret_created = true;
        }

        if (certificate && token_find_by_id(token, session, CKO_CERTIFICATE, id, id_size, &existing) < 0) {
                r = create_certificate(&c, certificate, id, id_size, label);
                if (r < 0)
                        return r;
        }

        *ret_id = hexmem(id, id_size);
        if (!*ret_id)
                return -ENOMEM;
        c.keep = true;
        return 0;
}

int token_add_certificate(Token *token, const char *id_hex, X509 *certificate, const char *label) {
        CK_SESSION_HANDLE session = token->session;
        _cleanup_(created_done) Created c = { .token = token, .session = session };
        _cleanup_free_ unsigned char *id = NULL;
        CK_OBJECT_HANDLE existing;
        size_t id_size;
        int r;

        if (token->state != TOKEN_STATE_READY)
                return -ENODEV;
        r = id_from_hex(id_hex, &id, &id_size);
        if (r < 0)
                return r;
        if (token_find_by_id(token, session, CKO_CERTIFICATE, id, id_size, &existing) >= 0)
                return 0;
        r = create_certificate(&c, certificate, id, id_size, label);
        if (r < 0)
                return r;
        c.keep = true;
        return 1;
}

typedef struct KeyType {
        const char *name;
        CK_KEY_TYPE type;
        CK_ULONG bits;       /* RSA */
        int curve_nid;       /* EC */
} KeyType;

static const KeyType key_types[] = {
        { "rsa-2048", CKK_RSA, 2048, NID_undef },
        { "rsa-3072", CKK_RSA, 3072, NID_undef },
        { "rsa-4096", CKK_RSA, 4096, NID_undef },
        { "ec-p256", CKK_EC, 0, NID_X9_62_prime256v1 },
        { "ec-p384", CKK_EC, 0, NID_secp384r1 },
};

int token_generate_key(Token *token, const char *type_name, const char *label, char **ret_id) {
        _cleanup_(own_session_close) OwnSession own = {};
        _cleanup_(created_done) Created c = { .token = token };
        CK_SESSION_HANDLE session;
        const KeyType *kt = NULL;
        CK_MECHANISM mechanism = {};
        CK_OBJECT_HANDLE public_key, private_key;
        CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
        unsigned char *params = NULL, id[EVP_MAX_MD_SIZE];
        unsigned int id_size = 0;
        int params_len = 0, r;
        EVP_PKEY *pkey = NULL;
        CK_RV rv;

        if (token->state != TOKEN_STATE_READY)
                return -ENODEV;
        for (size_t i = 0; i < ELEMENTSOF(key_types); i++)
                if (streq(key_types[i].name, type_name))
                        kt = &key_types[i];
        if (!kt)
                return -EINVAL;

        r = own_session_open(token, &own);
        if (r < 0)
                return r;
        session = c.session = own.handle;

        if (kt->type == CKK_EC) {
                params_len = i2d_ASN1_OBJECT(OBJ_nid2obj(kt->curve_nid), &params);
                if (params_len <= 0)
                        return -ENOMEM;
        }

        {
                CK_ULONG bits = kt->bits;
                CK_ATTRIBUTE rsa_public[] = {
                        { CKA_TOKEN, &ck_true, sizeof(ck_true) },
                        { CKA_PRIVATE, &ck_false, sizeof(ck_false) },
                        { CKA_VERIFY, &ck_true, sizeof(ck_true) },
                        { CKA_ENCRYPT, &ck_true, sizeof(ck_true) },
                        { CKA_LABEL, (void *) label, strlen(label) },
                        { CKA_MODULUS_BITS, &bits, sizeof(bits) },
                        { CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent) },
                };
                CK_ATTRIBUTE ec_public[] = {
                        { CKA_TOKEN, &ck_true, sizeof(ck_true) },
                        { CKA_PRIVATE, &ck_false, sizeof(ck_false) },
                        { CKA_VERIFY, &ck_true, sizeof(ck_true) },
                        { CKA_LABEL, (void *) label, strlen(label) },
                        { CKA_EC_PARAMS, params, (CK_ULONG) params_len },
                };
                CK_ATTRIBUTE private[] = {
                        { CKA_TOKEN, &ck_true, sizeof(ck_true) },
                        { CKA_PRIVATE, &ck_true, sizeof(ck_true) },
                        { CKA_SENSITIVE, &ck_true, sizeof(ck_true) },
                        { CKA_EXTRACTABLE, &ck_false, sizeof(ck_false) },
                        { CKA_SIGN, &ck_true, sizeof(ck_true) },
                        /* CKA_DECRYPT for RSA, CKA_DERIVE for EC: */
                        { kt->type == CKK_RSA ? CKA_DECRYPT : CKA_DERIVE, &ck_true, sizeof(ck_true) },
                        { CKA_LABEL, (void *) label, strlen(label) },
                };

                mechanism.mechanism = kt->type == CKK_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;
                rv = token->module->C_GenerateKeyPair(session, &mechanism,
                                                      kt->type == CKK_RSA ? rsa_public : ec_public,
                                                      kt->type == CKK_RSA ? ELEMENTSOF(rsa_public)
                                                                          : ELEMENTSOF(ec_public),
                                                      private, ELEMENTSOF(private), &public_key, &private_key);
        }
        OPENSSL_free(params);
        if (rv != CKR_OK)
                return log_error_errno(token_rv_to_errno(rv), "The token cannot generate a %s key: %s", kt->name,
                                       p11_kit_strerror(rv));
        c.objects[c.n++] = public_key;
        c.objects[c.n++] = private_key;

        /* The CKA_ID comes from the public key, known only now. */
        r = token_public_object_key(token, session, public_key, &pkey);
        if (r >= 0)
                r = key_id_bytes(pkey, id, &id_size);
        EVP_PKEY_free(pkey);
        if (r < 0)
                return log_error_errno(r, "Cannot read the public half of the generated key: %m");

        {
                CK_ATTRIBUTE set_id[] = { { CKA_ID, id, id_size } };

                rv = token->module->C_SetAttributeValue(session, public_key, set_id, 1);
                if (rv == CKR_OK)
                        rv = token->module->C_SetAttributeValue(session, private_key, set_id, 1);
                if (rv != CKR_OK)
                        return log_error_errno(token_rv_to_errno(rv), "Cannot set CKA_ID on the generated key: %s",
                                               p11_kit_strerror(rv));
        }

        *ret_id = hexmem(id, id_size);
        if (!*ret_id)
                return -ENOMEM;
        c.keep = true;
        return 0;
}

int token_remove_key(Token *token, const char *id_hex) {
        _cleanup_(own_session_close) OwnSession own = {};
        _cleanup_free_ unsigned char *id = NULL;
        CK_SESSION_HANDLE session;
        _cleanup_free_ CK_OBJECT_HANDLE *objects = NULL;
        CK_OBJECT_HANDLE private_key;
        size_t id_size, n = 0;
        int r;

        if (token->state != TOKEN_STATE_READY)
                return -ENODEV;
        r = id_from_hex(id_hex, &id, &id_size);
        if (r < 0)
                return r;
        r = own_session_open(token, &own);
        if (r < 0)
                return r;
        session = own.handle;
        if (token_find_by_id(token, session, CKO_PRIVATE_KEY, id, id_size, &private_key) < 0)
                return -ENOENT;

        {
                CK_ATTRIBUTE template[] = { { CKA_ID, id, id_size } };

                r = token_find_objects(token, session, template, ELEMENTSOF(template), &objects, &n);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++) {
                CK_RV rv = token->module->C_DestroyObject(session, objects[i]);

                if (rv != CKR_OK)
                        return log_error_errno(token_rv_to_errno(rv), "Cannot destroy a key object: %s",
                                               p11_kit_strerror(rv));
        }
        return 0;
}

int token_key_uri(Token *token, const char *id_hex, char **ret) {
        _cleanup_free_ unsigned char *id = NULL;
        CK_OBJECT_CLASS class = CKO_PRIVATE_KEY;
        CK_TOKEN_INFO *info;
        P11KitUri *uri;
        size_t id_size;
        int r;

        if (token->state != TOKEN_STATE_READY)
                return -ENODEV;
        r = id_from_hex(id_hex, &id, &id_size);
        if (r < 0)
                return r;

        uri = p11_kit_uri_new();
        if (!uri)
                return -ENOMEM;
        /* The token's identity as token_open() read it: C_GetTokenInfo
         * costs a SoftHSM2 token a look at its files, on every signature. */
        info = p11_kit_uri_get_token_info(uri);
        *info = token->info;
        {
                CK_ATTRIBUTE a_id = { CKA_ID, id, id_size }, a_class = { CKA_CLASS, &class, sizeof(class) };

                if (p11_kit_uri_set_attribute(uri, &a_id) != P11_KIT_URI_OK ||
                    p11_kit_uri_set_attribute(uri, &a_class) != P11_KIT_URI_OK ||
                    p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, ret) != P11_KIT_URI_OK)
                        r = -ENOMEM;
        }
        p11_kit_uri_free(uri);
        return r;
}

int token_key_public(Token *token, const char *id_hex, EVP_PKEY **ret) {
        CK_SESSION_HANDLE session = token->session;
        _cleanup_free_ unsigned char *id = NULL;
        CK_OBJECT_HANDLE object;
        size_t id_size;
        int r;

        if (token->state != TOKEN_STATE_READY)
                return -ENODEV;
        r = id_from_hex(id_hex, &id, &id_size);
        if (r < 0)
                return r;
        if (token_find_by_id(token, session, CKO_PUBLIC_KEY, id, id_size, &object) >= 0)
                return token_public_object_key(token, session, object, ret);
        if (token_find_by_id(token, session, CKO_PRIVATE_KEY, id, id_size, &object) >= 0)
                return token_object_public_key(token, session, object, ret);
        return -ENOENT;
}
