/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
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
        /* Optional: changes whenever an answer above, or the validator's, may
         * have changed. Without it no answer is remembered (CapabilityCache). */
        uint64_t (*generation)(void *userdata);
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
        /* The caller's: changes whenever token_ready, token_problem,
         * key_spkis, policy or disabled may have changed. */
        uint64_t generation;
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

/* Answers of capability_for() remembered while nothing they rest on can have
 * changed: the same lookup generation, context generation and second (the
 * validator's own cache is kept the same way). A Sign asks for the same
 * sender again and again; this spares it a store query and parsing the
 * certificate each time. Not thread-safe: one thread's (the loop's). */
typedef struct CapabilityCache CapabilityCache;

int capability_cache_new(CapabilityCache **ret);
CapabilityCache *capability_cache_free(CapabilityCache *cache);
DEFINE_TRIVIAL_CLEANUP_FUNC(CapabilityCache *, capability_cache_free);

/* capability_for(), answered from cache when it can be (cache may be NULL). */
int capability_for_cached(CapabilityCache *cache, const CapabilityContext *ctx, const char *address,
                          CertPurpose purpose, Capability *ret);

/* Fingerprints of the certificates for address ("" = all): usable for
 * purpose first, then the newest NotBefore first. */
int capability_lookup(const CapabilityContext *ctx, const char *address, CertPurpose purpose, bool usable_only,
                      char ***ret);

bool capability_has_private_key(const CapabilityContext *ctx, const CertInfo *info);
