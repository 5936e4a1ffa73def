/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>

#include "pki.h"

EVP_PKEY *pki_key_rsa(unsigned bits) {
        return EVP_RSA_gen(bits);
}

EVP_PKEY *pki_key_ec(void) {
        return EVP_EC_gen("P-256");
}

EVP_PKEY *pki_public_key_from_pem_file(const char *path) {
        EVP_PKEY *key;
        BIO *bio;

        bio = BIO_new_file(path, "r");
        if (!bio)
                return NULL;
        key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        return key;
}

void pki_cert_options_init(PkiCertOptions *o) {
        *o = (PkiCertOptions) {
                .not_before_days = -1,
                .not_after_days = 365,
                .digest = "sha256",
        };
}

void pki_crl_options_init(PkiCrlOptions *o) {
        *o = (PkiCrlOptions) {
                .last_update_days = -1,
                .next_update_days = 30,
                .digest = "sha256",
        };
}

PkiCert *pki_cert_free(PkiCert *c) {
        if (!c)
                return NULL;
        X509_free(c->x509);
        EVP_PKEY_free(c->key);
        return mfree(c);
}

static uint64_t random_serial(void) {
        uint64_t s = 0;

        while (s == 0) {
                if (RAND_bytes((unsigned char *) &s, sizeof(s)) != 1)
                        return 0;
                s &= INT64_MAX;
        }
        return s;
}

static int set_serial(X509 *x, uint64_t serial) {
        ASN1_INTEGER *i = ASN1_INTEGER_new();
        int ok;

        if (!i)
                return 0;
        ok = ASN1_INTEGER_set_uint64(i, serial) && X509_set_serialNumber(x, i);
        ASN1_INTEGER_free(i);
        return ok;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
        int ok;

        if (!ext)
                return 0;
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok;
}

static int add_key_usage(X509 *x, unsigned bits) {
        static const struct {
                unsigned bit;
                const char *name;
        } names[] = {
                { KU_DIGITAL_SIGNATURE, "digitalSignature" }, { KU_NON_REPUDIATION, "nonRepudiation" },
                { KU_KEY_ENCIPHERMENT, "keyEncipherment" },   { KU_DATA_ENCIPHERMENT, "dataEncipherment" },
                { KU_KEY_AGREEMENT, "keyAgreement" },         { KU_KEY_CERT_SIGN, "keyCertSign" },
                { KU_CRL_SIGN, "cRLSign" },                   { KU_ENCIPHER_ONLY, "encipherOnly" },
                { KU_DECIPHER_ONLY, "decipherOnly" },
        };
        char value[256] = "critical";

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (bits & names[i].bit) {
                        strcat(value, ",");
                        strcat(value, names[i].name);
                }
        return add_ext(x, NULL, NID_key_usage, value);
}

static int add_san(X509 *x, const char *const *emails) {
        GENERAL_NAMES *names = GENERAL_NAMES_new();
        int ok = names != NULL;

        for (const char *const *e = emails; ok && *e; e++) {
                GENERAL_NAME *g = GENERAL_NAME_new();
                ASN1_IA5STRING *s = ASN1_IA5STRING_new();

                ok = g && s && ASN1_STRING_set(s, *e, -1);
                if (ok) {
                        GENERAL_NAME_set0_value(g, GEN_EMAIL, s);
                        s = NULL;
                        ok = sk_GENERAL_NAME_push(names, g) > 0;
                }
                if (ok)
                        g = NULL;
                GENERAL_NAME_free(g);
                ASN1_IA5STRING_free(s);
        }
        if (ok)
                ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
        GENERAL_NAMES_free(names);
        return ok;
}

static int build_subject(X509 *x, const PkiCertOptions *o) {
        X509_NAME *name = X509_get_subject_name(x);

        if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *) "smimed tests", -1, -1,
                                        0))
                return 0;
        if (o->common_name &&
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) o->common_name, -1, -1, 0))
                return 0;
        if (o->email && !X509_NAME_add_entry_by_txt(name, "emailAddress", MBSTRING_ASC,
                                                    (const unsigned char *) o->email, -1, -1, 0))
                return 0;
        return 1;
}

static unsigned default_key_usage(const PkiCertOptions *o, EVP_PKEY *key) {
        if (o->is_ca)
                return KU_KEY_CERT_SIGN | KU_CRL_SIGN;
        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC)
                return KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT;
        return KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
}

static int add_extensions(X509 *x, const PkiCertOptions *o, X509 *issuer_x509, EVP_PKEY *key) {
        X509V3_CTX ctx;
        PkiEku eku = o->eku;

        X509V3_set_ctx(&ctx, issuer_x509, x, NULL, NULL, 0);
        if (!add_ext(x, &ctx, NID_basic_constraints, o->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"))
                return 0;
        if (!o->no_key_usage && !add_key_usage(x, o->key_usage ? o->key_usage : default_key_usage(o, key)))
                return 0;
        if (eku == PKI_EKU_DEFAULT)
                eku = o->is_ca ? PKI_EKU_NONE : PKI_EKU_EMAIL;
        switch (eku) {
        case PKI_EKU_EMAIL:
                if (!add_ext(x, &ctx, NID_ext_key_usage, "emailProtection"))
                        return 0;
                break;
        case PKI_EKU_CLIENT_AUTH:
                if (!add_ext(x, &ctx, NID_ext_key_usage, "clientAuth"))
                        return 0;
                break;
        case PKI_EKU_ANY:
                if (!add_ext(x, &ctx, NID_ext_key_usage, "anyExtendedKeyUsage"))
                        return 0;
                break;
        case PKI_EKU_OCSP_SIGNING:
                if (!add_ext(x, &ctx, NID_ext_key_usage, "OCSPSigning"))
                        return 0;
                break;
        case PKI_EKU_NONE:
        case PKI_EKU_DEFAULT:
                break;
        }
        if (!add_ext(x, &ctx, NID_subject_key_identifier, "hash"))
                return 0;
        /* A self-signed certificate's identifier is its own; X509V3 finds it in ctx. */
        if (!add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
                return 0;
        if (o->san_emails && !add_san(x, o->san_emails))
                return 0;
        if (o->comment && !add_ext(x, &ctx, NID_netscape_comment, o->comment))
                return 0;
        if (o->crl_uri) {
                char *value = NULL;
                int ok;

                if (asprintf(&value, "URI:%s", o->crl_uri) < 0)
                        return 0;
                ok = add_ext(x, &ctx, NID_crl_distribution_points, value);
                free(value);
                if (!ok)
                        return 0;
        }
        if (o->ocsp_uri) {
                char *value = NULL;
                int ok;

                if (asprintf(&value, "OCSP;URI:%s", o->ocsp_uri) < 0)
                        return 0;
                ok = add_ext(x, &ctx, NID_info_access, value);
                free(value);
                if (!ok)
                        return 0;
        }
        return 1;
}

PkiCert *pki_cert_new(const PkiCertOptions *o, const PkiCert *issuer) {
        _cleanup_(pki_cert_freep) PkiCert *c = NULL;
        const EVP_MD *md;
        EVP_PKEY *signer;
        uint64_t serial;

        md = EVP_get_digestbyname(o->digest ? o->digest : "sha256");
        if (!md)
                return NULL;

        c = calloc(1, sizeof(PkiCert));
        if (!c)
                return NULL;
        if (o->key) {
                if (!EVP_PKEY_up_ref(o->key))
                        return NULL;
                c->key = o->key;
        } else {
                c->key = pki_key_rsa(2048);
                if (!c->key)
                        return NULL;
        }
        signer = issuer ? issuer->key : c->key;

        c->x509 = X509_new();
        if (!c->x509)
                return NULL;
        serial = o->serial ? o->serial : random_serial();
        if (serial == 0)
                return NULL;
        if (!X509_set_version(c->x509, 2) || !set_serial(c->x509, serial) || !build_subject(c->x509, o) ||
            !X509_set_issuer_name(c->x509, issuer ? X509_get_subject_name(issuer->x509)
                                                  : X509_get_subject_name(c->x509)) ||
            !X509_time_adj_ex(X509_getm_notBefore(c->x509), o->not_before_days, 0, NULL) ||
            !X509_time_adj_ex(X509_getm_notAfter(c->x509), o->not_after_days, 0, NULL) ||
            !X509_set_pubkey(c->x509, c->key))
                return NULL;
        if (!add_extensions(c->x509, o, issuer ? issuer->x509 : c->x509, c->key))
                return NULL;
        if (X509_sign(c->x509, signer, md) <= 0)
                return NULL;
        return TAKE_PTR(c);
}

PkiCert *pki_root_ca(const char *common_name) {
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = common_name;
        o.is_ca = true;
        o.not_before_days = -30;
        o.not_after_days = 3650;
        return pki_cert_new(&o, NULL);
}

PkiCert *pki_intermediate_ca(const char *common_name, const PkiCert *issuer) {
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = common_name;
        o.is_ca = true;
        o.not_before_days = -20;
        o.not_after_days = 1825;
        return pki_cert_new(&o, issuer);
}

uint64_t pki_cert_serial(const PkiCert *c) {
        uint64_t v = 0;

        if (ASN1_INTEGER_get_uint64(&v, X509_get0_serialNumber(c->x509)) != 1)
                return 0;
        return v;
}

static void hex(const unsigned char *d, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", d[i]);
        out[2 * n] = '\0';
}

int pki_cert_fingerprint(const PkiCert *c, char ret[static 65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (!X509_digest(c->x509, EVP_sha256(), md, &n) || n != 32)
                return -EIO;
        hex(md, n, ret);
        return 0;
}

X509_CRL *pki_crl_new(const PkiCert *ca, const uint64_t *serials, size_t n_serials, const PkiCrlOptions *o) {
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        ASN1_TIME *last = NULL, *next = NULL;
        const EVP_MD *md;
        int ok;

        md = EVP_get_digestbyname(o->digest ? o->digest : "sha256");
        if (!md)
                return NULL;
        crl = X509_CRL_new();
        if (!crl)
                return NULL;

        last = X509_time_adj_ex(NULL, o->last_update_days, 0, NULL);
        next = X509_time_adj_ex(NULL, o->next_update_days, 0, NULL);
        ok = last && next && X509_CRL_set_version(crl, 1) &&
             X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->x509)) && X509_CRL_set1_lastUpdate(crl, last) &&
             X509_CRL_set1_nextUpdate(crl, next);
        for (size_t i = 0; ok && i < n_serials; i++) {
                X509_REVOKED *r = X509_REVOKED_new();
                ASN1_INTEGER *s = ASN1_INTEGER_new();

                ok = r && s && ASN1_INTEGER_set_uint64(s, serials[i]) && X509_REVOKED_set_serialNumber(r, s) &&
                     X509_REVOKED_set_revocationDate(r, last) && X509_CRL_add0_revoked(crl, r);
                if (ok)
                        r = NULL;
                X509_REVOKED_free(r);
                ASN1_INTEGER_free(s);
        }
        ASN1_TIME_free(last);
        ASN1_TIME_free(next);
        if (!ok)
                return NULL;

        {
                X509V3_CTX ctx;

                X509V3_set_ctx(&ctx, ca->x509, NULL, NULL, crl, 0);
                X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
                if (!ext)
                        return NULL;
                ok = X509_CRL_add_ext(crl, ext, -1);
                X509_EXTENSION_free(ext);
                if (!ok)
                        return NULL;
        }
        if (o->crl_number) {
                ASN1_INTEGER *num = ASN1_INTEGER_new();

                ok = num && ASN1_INTEGER_set_uint64(num, o->crl_number) &&
                     X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1;
                ASN1_INTEGER_free(num);
                if (!ok)
                        return NULL;
        }
        if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, ca->key, md) <= 0)
                return NULL;
        return TAKE_PTR(crl);
}

static char *bio_to_string(BIO *bio) {
        char *data, *s;
        long n = BIO_get_mem_data(bio, &data);

        if (n < 0)
                return NULL;
        s = malloc((size_t) n + 1);
        if (!s)
                return NULL;
        memcpy(s, data, (size_t) n);
        s[n] = '\0';
        return s;
}

char *pki_certs_pem(const PkiCert *const *certs, size_t n) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *s = NULL;
        int ok = bio != NULL;

        for (size_t i = 0; ok && i < n; i++)
                ok = PEM_write_bio_X509(bio, certs[i]->x509);
        if (ok)
                s = bio_to_string(bio);
        BIO_free(bio);
        return s;
}

char *pki_key_pem(EVP_PKEY *key) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *s = NULL;

        if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
                s = bio_to_string(bio);
        BIO_free(bio);
        return s;
}

char *pki_cert_pem(const PkiCert *c) {
        return pki_certs_pem(&c, 1);
}

static int der_out(int n, unsigned char *der, unsigned char **ret, size_t *ret_len) {
        if (n <= 0)
                return -EIO;
        *ret = der;
        *ret_len = (size_t) n;
        return 0;
}

int pki_cert_der(const PkiCert *c, unsigned char **ret, size_t *ret_len) {
        unsigned char *der = NULL;
        int n = i2d_X509(c->x509, &der);

        return der_out(n, der, ret, ret_len);
}

char *pki_crl_pem(const X509_CRL *crl) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *s = NULL;

        if (bio && PEM_write_bio_X509_CRL(bio, (X509_CRL *) crl))
                s = bio_to_string(bio);
        BIO_free(bio);
        return s;
}

int pki_crl_der(const X509_CRL *crl, unsigned char **ret, size_t *ret_len) {
        unsigned char *der = NULL;
        int n = i2d_X509_CRL(crl, &der);

        return der_out(n, der, ret, ret_len);
}

static PKCS7 *make_pkcs7(const PkiCert *const *certs, size_t n) {
        PKCS7 *p7 = PKCS7_new();

        if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed) || !PKCS7_content_new(p7, NID_pkcs7_data))
                goto fail;
        for (size_t i = 0; i < n; i++)
                if (!PKCS7_add_certificate(p7, certs[i]->x509))
                        goto fail;
        return p7;
fail:
        PKCS7_free(p7);
        return NULL;
}

int pki_pkcs7_der(const PkiCert *const *certs, size_t n, unsigned char **ret, size_t *ret_len) {
        PKCS7 *p7 = make_pkcs7(certs, n);
        unsigned char *der = NULL;
        int len;

        if (!p7)
                return -EIO;
        len = i2d_PKCS7(p7, &der);
        PKCS7_free(p7);
        return der_out(len, der, ret, ret_len);
}

char *pki_pkcs7_pem(const PkiCert *const *certs, size_t n) {
        PKCS7 *p7 = make_pkcs7(certs, n);
        BIO *bio = BIO_new(BIO_s_mem());
        char *s = NULL;

        if (p7 && bio && PEM_write_bio_PKCS7(bio, p7))
                s = bio_to_string(bio);
        BIO_free(bio);
        PKCS7_free(p7);
        return s;
}

int pki_pkcs7_order(const unsigned char *der, size_t len, char (*ret)[65], size_t max) {
        const unsigned char *p = der;
        STACK_OF(X509) *certs;
        PKCS7 *p7;
        int n;

        p7 = d2i_PKCS7(NULL, &p, (long) len);
        if (!p7)
                return -EINVAL;
        if (!PKCS7_type_is_signed(p7) || !p7->d.sign || !(certs = p7->d.sign->cert)) {
                PKCS7_free(p7);
                return -EINVAL;
        }
        n = sk_X509_num(certs);
        for (int i = 0; i < n && (size_t) i < max; i++) {
                PkiCert c = { .x509 = sk_X509_value(certs, i) };

                if (pki_cert_fingerprint(&c, ret[i]) < 0) {
                        PKCS7_free(p7);
                        return -EIO;
                }
        }
        PKCS7_free(p7);
        return n;
}

int pki_write_file(const char *path, const void *data, size_t len) {
        FILE *f = fopen(path, "we");
        int r = 0;

        if (!f)
                return -errno;
        if (len > 0 && fwrite(data, 1, len, f) != len)
                r = -EIO;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        return r;
}
