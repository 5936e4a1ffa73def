/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "macro.h"

/* What smimed knows about one X.509 certificate, read from it once: the
 * fields the store indexes and the bus shows. No SQL, no D-Bus. */

#define SHA256_HEX_SIZE 65

typedef struct CertInfo {
        unsigned n_ref; /* cert_info_ref(), cert_info_free() */
        X509 *x509;
        char fingerprint[SHA256_HEX_SIZE];   /* SHA-256 of the DER, lower-case hex */
        char spki_sha256[SHA256_HEX_SIZE];   /* SHA-256 of SubjectPublicKeyInfo */
        char *subject;                       /* RFC 2253 */
        char *issuer;
        char *common_name;                   /* "" when none */
        char *issuer_display;                /* issuer CN, else O, else the DN */
        char *serial;                        /* upper-case hex */
        char **addresses;                    /* lower-cased, never NULL */
        time_t not_before;
        time_t not_after;
        char *key_algorithm;
        unsigned key_bits;
        bool is_ca;
        unsigned char *der;
        size_t der_size;
        unsigned char *subject_name_der;
        size_t subject_name_der_size;
        unsigned char *issuer_name_der;
        size_t issuer_name_der_size;
} CertInfo;

/* Reads everything from x509 (takes a reference of its own). */
int cert_info_new(X509 *x509, CertInfo **ret);
/* Another reference; cert_info_free() drops one, the last frees it. */
CertInfo *cert_info_ref(CertInfo *info);
CertInfo *cert_info_free(CertInfo *info);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertInfo *, cert_info_free);

/* "Alice <alice@example.com> · issued by Example CA · valid until 2034-01-01 · SHA-256 3F:A2:1B:C4:…" */
char *cert_info_summary(const CertInfo *info);

/* The mail addresses of a certificate: rfc822Name entries of subjectAltName,
 * or the subject's emailAddress when subjectAltName has none; lower-cased,
 * malformed ones left out, each once, in the order they come. Only the
 * first SMIME_MAX_CERTIFICATE_ADDRESSES entries are considered. */
int certificate_addresses(X509 *x509, char ***ret);

/* Checks that s is a plain mail address (local@domain) and returns it
 * lower-cased. -EINVAL when it is not one. */
int address_normalize(const char *s, char **ret);

/* RFC 2253, UTF-8. */
char *x509_name_to_string(const X509_NAME *name);

/* SHA-256 of the certificate's DER as lower-case hex. */
int x509_fingerprint(X509 *x509, char out[SHA256_HEX_SIZE]);

/* SHA-256 of data as lower-case hex. */
void sha256_hex(const void *data, size_t size, char out[SHA256_HEX_SIZE]);

/* "2034-01-01" (UTC) */
void format_date(time_t t, char out[11]);

int asn1_time_to_time_t(const ASN1_TIME *t, time_t *ret);
