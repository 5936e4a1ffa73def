/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <time.h>

#include <openssl/x509.h>

#include "macro.h"
#include "store.h"

/* Certificate validation, the one place that decides whether a certificate
 * may be used: chain to a trust anchor from the store, dates, revocation by
 * stored CRLs, key usage and extended key usage for mail, and the strength of
 * keys and signatures. No D-Bus. */

typedef enum CertStatus {
        CERT_STATUS_VALID,
        CERT_STATUS_EXPIRED,
        CERT_STATUS_NOT_YET_VALID,
        CERT_STATUS_REVOKED,
        CERT_STATUS_UNTRUSTED,
        CERT_STATUS_WRONG_USAGE,
        CERT_STATUS_WEAK,
        _CERT_STATUS_MAX,
} CertStatus;

typedef enum CertPurpose {
        CERT_PURPOSE_ANY,      /* a CA, or a mail certificate good for signing or encrypting */
        CERT_PURPOSE_SIGN,
        CERT_PURPOSE_ENCRYPT,
} CertPurpose;

typedef struct ValidationPolicy {
        unsigned minimum_rsa_bits;
        bool allow_sha1_signatures;
} ValidationPolicy;

#define VALIDATION_POLICY_DEFAULT ((ValidationPolicy) { .minimum_rsa_bits = 2048 })

typedef struct Validation {
        CertStatus status;
        char *message;               /* a sentence a person can act on */
        STACK_OF(X509) *chain;       /* from the certificate up, as far as it goes */
} Validation;

const char *cert_status_to_string(CertStatus status);

/* Whether the key usage and extended key usage of x509 allow purpose for
 * mail. A certificate without keyUsage allows everything its key can do. */
bool certificate_allows(X509 *x509, CertPurpose purpose);

/* Results are cached for the same store contents, policy and second. */
int validate_certificate(Store *store, X509 *x509, CertPurpose purpose, const ValidationPolicy *policy, time_t now,
                         Validation *ret);
/* Drops the cached results (a new store opened at a reused address, exit). */
void validation_cache_clear(void);
/* The same for several purposes at once: the chain is built and checked once. */
int validate_certificate_purposes(Store *store, X509 *x509, const ValidationPolicy *policy, time_t now,
                                  const CertPurpose *purposes, size_t n, Validation *ret);
/* The same, with certificates that came with a message (a signature's
 * certificates) as possible intermediates. They never become anchors. */
int validate_certificate_extra(Store *store, X509 *x509, STACK_OF(X509) *extra, const ValidationPolicy *policy,
                               time_t now, const CertPurpose *purposes, size_t n, Validation *ret);
void validation_done(Validation *v);
