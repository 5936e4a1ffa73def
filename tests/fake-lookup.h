/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "capabilities.h"
#include "macro.h"
#include "validate.h"

/* An in-memory certificate store behind the lookups validation and
 * capabilities take (validate.h, capabilities.h): what the unit tests put in
 * it is all they know. Every change bumps the generation; every lookup is
 * counted, so a test can tell a cached answer from a fresh one. */

typedef struct FakeLookup {
        X509 **certificates;
        bool *trusted;
        size_t n_certificates;
        X509_CRL **crls;
        size_t n_crls;
        uint64_t generation;
        unsigned n_calls;        /* lookups answered, of any kind */
        int fail;                /* when negative, every lookup fails with it */
} FakeLookup;

FakeLookup *fake_lookup_new(void);
FakeLookup *fake_lookup_free(FakeLookup *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(FakeLookup *, fake_lookup_free);

/* Takes a reference of its own. Adding a certificate that is there already
 * changes only its trust. */
int fake_lookup_add(FakeLookup *f, X509 *x509, bool trusted);
/* Removes the certificate; -ENOENT when it is not there. */
int fake_lookup_remove(FakeLookup *f, X509 *x509);
/* Takes a reference of its own; replaces the CRL of the same issuer name. */
int fake_lookup_add_crl(FakeLookup *f, X509_CRL *crl);

ValidationLookup fake_lookup_validation(FakeLookup *f);
/* Addresses as the store indexes them (certificate_addresses()); newest
 * NotBefore first, then by fingerprint, as store_find_by_address(). */
CapabilityLookup fake_lookup_capability(FakeLookup *f);
