/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "macro.h"

/* A test PKI made with the OpenSSL 3 API: keys, a root CA, intermediates,
 * S/MIME leaves with every option the store's validation looks at, CRLs, and
 * PEM / DER / PKCS#7 encodings of all of them. Everything returns NULL (or a
 * negative errno) on failure; nothing here asserts. */

/* An RSA key of bits bits, or an EC P-256 key. */
EVP_PKEY *pki_key_rsa(unsigned bits);
EVP_PKEY *pki_key_ec(void);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
/* A key with only its public part, read from a PEM "PUBLIC KEY" file (e.g.
 * Harness.key_pem, whose private part lives in the token). */
EVP_PKEY *pki_public_key_from_pem_file(const char *path);

typedef enum PkiEku {
        PKI_EKU_DEFAULT,      /* leaves: emailProtection; CAs: none */
        PKI_EKU_EMAIL,        /* emailProtection */
        PKI_EKU_CLIENT_AUTH,  /* clientAuth only */
        PKI_EKU_ANY,          /* anyExtendedKeyUsage */
        PKI_EKU_NONE,         /* no extendedKeyUsage extension */
        PKI_EKU_OCSP_SIGNING, /* OCSPSigning only: a delegated OCSP responder */
} PkiEku;

/* A certificate and its key (for a leaf made for a given public key, the
 * key has no private part and cannot issue). */
typedef struct PkiCert {
        X509 *x509;
        EVP_PKEY *key;
} PkiCert;

typedef struct PkiCertOptions {
        const char *common_name;         /* subject CN; NULL: none */
        const char *email;               /* subject emailAddress; NULL: none */
        const char *const *san_emails;   /* rfc822Names, NULL-terminated; NULL: no subjectAltName */
        bool is_ca;                      /* basicConstraints CA:TRUE, critical */
        unsigned key_usage;              /* KU_* bits of openssl/x509v3.h; 0: the default for the
                                          * kind (CA: keyCertSign|cRLSign; RSA leaf:
                                          * digitalSignature|keyEncipherment; EC leaf:
                                          * digitalSignature|keyAgreement) */
        bool no_key_usage;               /* no keyUsage extension at all */
        PkiEku eku;
        int not_before_days;             /* offsets from now; pki_cert_options_init() sets -1 */
        int not_after_days;              /* and +365 */
        const char *digest;              /* "sha256" (default), "sha1", "md5", … */
        uint64_t serial;                 /* 0: a random 63-bit serial */
        EVP_PKEY *key;                   /* the subject key; NULL: a new RSA-2048 key */
        const char *comment;             /* a non-critical nsComment extension (makes a
                                          * certificate as large as a test needs); NULL: none */
        const char *crl_uri;             /* a CRL distribution point (its full name, this URI); NULL: none */
        const char *ocsp_uri;            /* an OCSP responder in Authority Information Access; NULL: none */
} PkiCertOptions;

void pki_cert_options_init(PkiCertOptions *o);

/* Signs a certificate for o with issuer (NULL: self-signed with o->key,
 * which then needs its private part). The PkiCert takes a reference on
 * o->key. */
PkiCert *pki_cert_new(const PkiCertOptions *o, const PkiCert *issuer);
/* Shorthands: a self-signed root CA (10 years), an intermediate CA (5
 * years), both with new RSA-2048 keys. */
PkiCert *pki_root_ca(const char *common_name);
PkiCert *pki_intermediate_ca(const char *common_name, const PkiCert *issuer);
PkiCert *pki_cert_free(PkiCert *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(PkiCert *, pki_cert_free);

/* The serial number as an integer (the ones made here fit). */
uint64_t pki_cert_serial(const PkiCert *c);
/* SHA-256 of the DER, lower-case hex (65 bytes with the NUL). */
int pki_cert_fingerprint(const PkiCert *c, char ret[static 65]);

typedef struct PkiCrlOptions {
        int last_update_days;            /* pki_crl_options_init(): -1 */
        int next_update_days;            /* and +30 */
        const char *digest;              /* "sha256" */
        uint64_t crl_number;             /* 0: none */
} PkiCrlOptions;

void pki_crl_options_init(PkiCrlOptions *o);
/* A CRL issued by ca (signed with its key) revoking the given serials. */
X509_CRL *pki_crl_new(const PkiCert *ca, const uint64_t *serials, size_t n_serials, const PkiCrlOptions *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_CRL *, X509_CRL_free);

/* Encodings. PEM comes back as a NUL-terminated string; DER as bytes and a
 * length. */
char *pki_cert_pem(const PkiCert *c);
/* The PEM of every certificate, concatenated in order. */
char *pki_certs_pem(const PkiCert *const *certs, size_t n);
int pki_cert_der(const PkiCert *c, unsigned char **ret, size_t *ret_len);
char *pki_crl_pem(const X509_CRL *crl);
int pki_crl_der(const X509_CRL *crl, unsigned char **ret, size_t *ret_len);
/* A certs-only PKCS#7 SignedData bundle (what `openssl crl2pkcs7 -nocrl`
 * makes). DER sorts a SET OF, so the order inside may differ from certs;
 * pki_pkcs7_order() tells it. */
int pki_pkcs7_der(const PkiCert *const *certs, size_t n, unsigned char **ret, size_t *ret_len);
char *pki_pkcs7_pem(const PkiCert *const *certs, size_t n);
/* The SHA-256 fingerprints (hex) of the certificates of a DER bundle, in
 * the order they are encoded; returns how many, or a negative errno. */
int pki_pkcs7_order(const unsigned char *der, size_t len, char (*ret)[65], size_t max);

/* The private key as unencrypted PKCS#8 PEM (for `openssl ocsp -rkey`). */
char *pki_key_pem(EVP_PKEY *key);

/* Writes bytes to path (mode 0644); returns 0 or a negative errno. */
int pki_write_file(const char *path, const void *data, size_t len);
