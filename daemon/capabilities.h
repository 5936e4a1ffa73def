/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "certificate.h"
#include "store.h"
#include "validate.h"

/* Which certificate to use for an address, and whether signing or encrypting
 * is possible: the answer a mail composer needs for its buttons. No D-Bus. */

typedef struct CapabilityContext {
        Store *store;
        const ValidationPolicy *policy;
        time_t now;
        bool token_ready;
        const char *token_problem;   /* why the token is not ready */
        char **key_spkis;            /* SPKI hashes of the token's private keys */
} CapabilityContext;

typedef struct Capability {
        char *address;
        bool possible;
        const char *reason;          /* "" when possible */
        char *message;
        CertInfo *info;              /* the certificate chosen or considered, or NULL */
} Capability;

void capability_done(Capability *c);

/* address must be normalized (address_normalize()). */
int capability_for(const CapabilityContext *ctx, const char *address, CertPurpose purpose, Capability *ret);

/* Fingerprints of the certificates for address ("" = all): usable for
 * purpose first, then the newest NotBefore first. */
int capability_lookup(const CapabilityContext *ctx, const char *address, CertPurpose purpose, bool usable_only,
                      char ***ret);

bool capability_has_private_key(const CapabilityContext *ctx, const CertInfo *info);
