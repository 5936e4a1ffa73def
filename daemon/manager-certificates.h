/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "capabilities.h"
#include "config.h"
#include "db.h"
#include "validate.h"

typedef struct Manager Manager;

/* The manager's certificate operations: imports into the store, removal,
 * trust, lookups and capabilities. No D-Bus types here; bus clients are told
 * about changes through manager-bus.c and certificate-bus.c.
 *
 * Errors: -EBADMSG/-EFBIG/-E2BIG bad input, -ENOENT no such certificate (or
 * a CRL issuer that is not in the store), -EKEYREJECTED a CRL signature that
 * does not verify, -EINVAL a malformed address, anything else a failure of
 * the store. *ret_message says what happened in words. */

/* Opens the store config names ([Store] Backend=, Path=, Connection=,
 * PasswordFile=) and puts it, with a new validator, in place of the old one. */
int manager_open_store(Manager *m, const Config *config, char **ret_message);
/* A newer CRL was stored (here or by another node): CRLUpdated moves. */
void manager_crls_changed(Manager *m);
/* Counts the store's certificates; announces CertificateCount when it moved. */
void manager_update_certificate_count(Manager *m);
/* A new connection to the database config's [Store] names. */
int manager_open_db(const Config *config, Db **ret, char **ret_message);
/* Whether a and b name different stores. */
bool manager_store_config_changed(const Config *a, const Config *b);

int manager_import_certificates(Manager *m, const void *data, size_t size, bool trust, char ***ret_fingerprints,
                                char **ret_message);
/* Stores certificates already parsed, as one transaction. *ret_added: the
 * ones the store did not hold before. */
int manager_store_certificates(Manager *m, STACK_OF(X509) *certs, bool trust, char ***ret_fingerprints,
                               char ***ret_added, char **ret_message);
/* The same for certificates found in the [Directory] at at (never
 * trusted): marked as from it (store_set_directory_fetched()). */
int manager_store_directory_certificates(Manager *m, STACK_OF(X509) * certs, time_t at, char ***ret_fingerprints,
                                         char **ret_message);
int manager_import_crls(Manager *m, const void *data, size_t size, unsigned *ret_count, char **ret_message);
/* Stores CRLs already checked against their issuers, as one transaction;
 * *ret_stored: how many were newer than the stored ones. */
int manager_store_crls(Manager *m, STACK_OF(X509_CRL) * crls, unsigned *ret_stored, char **ret_message);
int manager_remove_certificate(Manager *m, const char *fingerprint, char **ret_message);
int manager_set_certificate_trusted(Manager *m, const char *fingerprint, bool trusted, char **ret_message);

void manager_capability_context(Manager *m, CapabilityContext *ret);

/* Bumped by every change of the store: what was read from it before is good
 * as long as this stays the same. */
uint64_t manager_store_generation(Manager *m);
/* The certificate with this fingerprint and whether it is a trust anchor
 * (either return may be NULL); -ENOENT when the store has none. */
int manager_load_certificate(Manager *m, const char *fingerprint, X509 **ret, bool *ret_trusted);
/* Fingerprints of every certificate in the store, newest NotBefore first,
 * as a strv. */
int manager_list_certificates(Manager *m, char ***ret_fingerprints);
/* Validates x509 as of at for each of the n purposes, under the daemon's
 * policy: ret[i] is the result for purposes[i]. */
int manager_validate_certificate(Manager *m, X509 *x509, time_t at, const CertPurpose *purposes, size_t n,
                                 Validation *ret);
