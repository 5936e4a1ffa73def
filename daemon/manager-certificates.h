/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "capabilities.h"

typedef struct Manager Manager;

/* The manager's certificate operations: imports into the store, removal,
 * trust, lookups and capabilities. No D-Bus types here; bus clients are told
 * about changes through manager-bus.c and certificate-bus.c.
 *
 * Errors: -EBADMSG/-EFBIG/-E2BIG bad input, -ENOENT no such certificate (or
 * a CRL issuer that is not in the store), -EKEYREJECTED a CRL signature that
 * does not verify, -EINVAL a malformed address, anything else a failure of
 * the store. *ret_message says what happened in words. */

int manager_open_store(Manager *m, const char *path, char **ret_message);

int manager_import_certificates(Manager *m, const void *data, size_t size, bool trust, char ***ret_fingerprints,
                                char **ret_message);
/* Stores certificates already parsed, as one transaction. *ret_added: the
 * ones the store did not hold before. */
int manager_store_certificates(Manager *m, STACK_OF(X509) *certs, bool trust, char ***ret_fingerprints,
                               char ***ret_added, char **ret_message);
int manager_import_crls(Manager *m, const void *data, size_t size, unsigned *ret_count, char **ret_message);
int manager_remove_certificate(Manager *m, const char *fingerprint, char **ret_message);
int manager_set_certificate_trusted(Manager *m, const char *fingerprint, bool trusted, char **ret_message);

void manager_capability_context(Manager *m, CapabilityContext *ret);

