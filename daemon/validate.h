/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "macro.h"
#include "ocsp-answer.h"

/* Certificate validation, the one place that decides whether a certificate
 * may be used: chain to a trust anchor, dates, revocation (CRLs, OCSP), key usage
 * and extended key usage for mail, and the strength of keys and signatures.
 * What it knows beyond the certificate comes through a ValidationLookup (the
 * store's is in store-lookup.h; tests bring their own). No D-Bus, no SQL. */

typedef enum CertStatus {
        CERT_STATUS_VALID,
        CERT_STATUS_EXPIRED,
        CERT_STATUS_NOT_YET_VALID,
        CERT_STATUS_REVOKED,
        CERT_STATUS_UNTRUSTED,
        CERT_STATUS_WRONG_USAGE,
        CERT_STATUS_WEAK,
        CERT_STATUS_REVOCATION_UNKNOWN, /* no current CRL, under RevocationPolicy hard */
        _CERT_STATUS_MAX,
} CertStatus;

typedef enum CertPurpose {
        CERT_PURPOSE_ANY,      /* a CA, or a mail certificate good for signing or encrypting */
        CERT_PURPOSE_SIGN,
        CERT_PURPOSE_ENCRYPT,
} CertPurpose;

/* What a certificate whose revocation cannot be told (no CRL of its issuer
 * at hand, or one past its nextUpdate or not signed by it) comes to. A
 * known revocation always counts, whatever this says. */
typedef enum RevocationPolicy {
        REVOCATION_POLICY_NONE, /* not looked for: nothing said, nothing fetched */
        REVOCATION_POLICY_SOFT, /* usable; the message says revocation was not checked */
        REVOCATION_POLICY_HARD, /* not usable: CERT_STATUS_REVOCATION_UNKNOWN */
} RevocationPolicy;

/* Where revocation is learnt ([Revocation] Method=). A CRL in the store
 * that revokes a certificate counts under every method. */
typedef enum RevocationMethod {
        REVOCATION_METHOD_CRL,           /* CRLs; unknown without a current one */
        REVOCATION_METHOD_OCSP,          /* OCSP; unknown without a current answer */
        REVOCATION_METHOD_OCSP_THEN_CRL, /* OCSP; the CRL when OCSP gives no answer */
} RevocationMethod;

typedef struct ValidationPolicy {
        unsigned minimum_rsa_bits;
        bool allow_sha1_signatures;
        RevocationPolicy revocation;
        RevocationMethod method;
} ValidationPolicy;

#define VALIDATION_POLICY_DEFAULT ((ValidationPolicy) { .minimum_rsa_bits = 2048 })

typedef struct Validation {
        CertStatus status;
        char *message;               /* a sentence a person can act on */
        char *revocation;            /* where the certificate's revocation answer came from and when
                                      * ("good by OCSP (URI) at …"); NULL: none was had */
        STACK_OF(X509) *chain;       /* from the certificate up, as far as it goes */
} Validation;

const char *cert_status_to_string(CertStatus status);

/* Whether the key usage and extended key usage of x509 allow purpose for
 * mail. A certificate without keyUsage allows everything its key can do. */
bool certificate_allows(X509 *x509, CertPurpose purpose);

typedef int (*ValidationCandidateCallback)(X509 *x509, bool trusted, void *userdata);

/* Where certificates above a leaf, trust and CRLs come from. Each call
 * returns 0 or a negative errno, which validation passes on. */
typedef struct ValidationLookup {
        /* Calls cb for every known certificate that may have issued x509 (its
         * subject is x509's issuer name), with whether it is a trust anchor;
         * stops at and returns cb's first negative return. */
        int (*foreach_issuer)(void *userdata, X509 *x509, ValidationCandidateCallback cb, void *cb_userdata);
        /* The CRL that issuer (by its subject name) issued, or -ENOENT. */
        int (*get_crl)(void *userdata, X509 *issuer, X509_CRL **ret);
        /* Whether x509 itself is a known trust anchor; false when unknown. */
        int (*is_trust_anchor)(void *userdata, X509 *x509, bool *ret);
        /* Changes whenever any answer above may have changed. */
        uint64_t (*generation)(void *userdata);
        void *userdata;
        /* Optional: the CRL issuer issued is missing or not current, and
         * subject, whose chain leads to a trust anchor, is issuer's; its CRL
         * distribution points say where to get one. Must not block (it runs
         * in the middle of a validation, on the caller's thread): a fetch
         * shows in a later generation. Not called under REVOCATION_POLICY_NONE. */
        void (*want_crl)(void *userdata, X509 *subject, X509 *issuer);
        void *want_crl_userdata;
        /* Optional: what an OCSP responder said of x509 (kept until its
         * next_update; an older one counts as none), or -ENOENT. */
        int (*get_ocsp)(void *userdata, X509 *x509, OcspAnswer *ret);
        /* Optional: no current OCSP answer for subject (issued by issuer,
         * chain to an anchor); ask a responder. Must not block, like
         * want_crl; takes want_crl_userdata. Under ocsp-then-crl it is also
         * the owner's to fetch the CRL should OCSP give no answer. */
        void (*want_ocsp)(void *userdata, X509 *subject, X509 *issuer);
} ValidationLookup;

/* Validates against one lookup, and remembers results (see
 * validate_certificate()). Thread-safe as far as its lookup is. */
typedef struct Validator Validator;

int validator_new(const ValidationLookup *lookup, Validator **ret);
Validator *validator_free(Validator *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(Validator *, validator_free);

/* Results are cached for the same lookup generation, policy and second. */
int validate_certificate(Validator *v, X509 *x509, CertPurpose purpose, const ValidationPolicy *policy, time_t now,
                         Validation *ret);
/* The same for several purposes at once: the chain is built and checked once. */
int validate_certificate_purposes(Validator *v, X509 *x509, const ValidationPolicy *policy, time_t now,
                                  const CertPurpose *purposes, size_t n, Validation *ret);
/* The same, with certificates that came with a message (a signature's
 * certificates) as possible intermediates. They never become anchors. */
int validate_certificate_extra(Validator *v, X509 *x509, STACK_OF(X509) *extra, const ValidationPolicy *policy,
                               time_t now, const CertPurpose *purposes, size_t n, Validation *ret);
void validation_done(Validation *v);
