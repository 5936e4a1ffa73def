/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "certificate.h"
#include "validate.h"

/* Which certificate to use for an address, and whether signing or encrypting
 * is possible: the answer a mail composer needs for its buttons. No D-Bus,
 * no SQL: certificates come through a CapabilityLookup (the store's is in
 * store-lookup.h), their validity from a Validator, and which private keys
 * the token holds as a list of public key hashes. */

/* Each call returns 0 or a negative errno. */
typedef struct CapabilityLookup {
        /* Fingerprints of the certificates for a lower-cased address ("" or
         * NULL: every certificate), newest NotBefore first, as a strv. */
        int (*find_by_address)(void *userdata, const char *address, char ***ret);
        /* The certificate with this fingerprint, or -ENOENT. */
        int (*get_certificate)(void *userdata, const char *fingerprint, X509 **ret);
        void *userdata;
} CapabilityLookup;

typedef struct CapabilityContext {
        CapabilityLookup lookup;
        Validator *validator;
        const ValidationPolicy *policy;
        time_t now;
        bool token_ready;
        const char *token_problem;   /* why the token is not ready */
        char **key_spkis;            /* SPKI hashes of the token's private keys */
        bool disabled;               /* [Policy] Enabled=no: nothing is possible */
} CapabilityContext;

typedef struct Capability {
        char *address;
        bool possible;
        const char *reason;          /* "" when possible */
        char *message;
        CertInfo *info;              /* the certificate chosen or considered, or NULL */
        STACK_OF(X509) * chain;      /* with info: its chain as validated, from it upwards */
} Capability;

void capability_done(Capability *c);

/* address must be normalized (address_normalize()). With ctx->disabled the
 * answer is "feature-disabled" for every address, and a mail app hides its
 * buttons. */
int capability_for(const CapabilityContext *ctx, const char *address, CertPurpose purpose, Capability *ret);

/* Fingerprints of the certificates for address ("" = all): usable for
 * purpose first, then the newest NotBefore first. */
int capability_lookup(const CapabilityContext *ctx, const char *address, CertPurpose purpose, bool usable_only,
                      char ***ret);

bool capability_has_private_key(const CapabilityContext *ctx, const CertInfo *info);
