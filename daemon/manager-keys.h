/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "certificate.h"
#include "token.h"

typedef struct Manager Manager;

/* Enrolling keys into the token: PKCS#12 import, generation with a CSR,
 * removal, and binding certificates to the keys they belong to. No D-Bus
 * types. Errors as in manager-certificates.h, plus -EBADE (wrong passphrase),
 * -ENOKEY (no private key in the file), -ENODEV (token not ready). */

#define PKCS12_MAX_SIZE (1024U * 1024U)

/* Reads the file on a worker (owner: whose turn it takes), then enrolls the
 * key and its certificates; done() runs on the loop with the key's id and
 * the certificates' fingerprints, or r < 0 and message. Bad arguments fail
 * at once. A client that goes away meanwhile (sender) gets nothing
 * enrolled: done() then has -ECONNRESET. */
typedef struct Pkcs12Job Pkcs12Job;
typedef void (*Pkcs12ImportDone)(int r, const char *message, const char *key_id, char **fingerprints,
                                 void *userdata);

int manager_import_pkcs12_start(Manager *m, const char *sender, uint64_t owner, const void *data, size_t size,
                                const char *passphrase, Pkcs12ImportDone done, void *userdata, char **ret_message);
unsigned manager_pkcs12_jobs_cancel_sender(Manager *m, const char *sender);
/* After the workers have stopped: each import still registered gets its
 * answer (-ESHUTDOWN) and is freed. */
void manager_pkcs12_jobs_free(Manager *m);

/* What GenerateKey is asked for. type NULL means rsa-3072, subject NULL
 * "CN=<address>"; the request names address and more_addresses (NULL:
 * none; normalized) as rfc822Name subjectAltNames, address first. renew
 * (a fingerprint in the store, of a certificate of address) fills in what
 * is not given from that certificate: its subject, all its addresses, its
 * key's type. */
typedef struct GenerateKeyRequest {
        const char *address;
        char *const *more_addresses;
        const char *type;
        const char *subject;
        const char *renew;
} GenerateKeyRequest;

/* The key is
 * made on a worker; done() runs on the loop with the key's id and the CSR
 * (PEM), or r < 0 and message. Bad arguments fail at once. userdata is the
 * caller's. When sender (the caller's unique name) goes away meanwhile, the
 * new key is removed again and done() gets -ECONNRESET (with the id). */
typedef void (*GenerateKeyDone)(int r, const char *message, const char *key_id, const char *csr, void *userdata);

int manager_generate_key_start(Manager *m, const char *sender, const GenerateKeyRequest *request, GenerateKeyDone done,
                               void *userdata, char **ret_message);
/* The client sender went away: its key generations are undone when they
 * finish. Returns how many. */
unsigned manager_generate_jobs_cancel_sender(Manager *m, const char *sender);
/* After the workers have stopped: each generation still registered gets
 * its answer (-ESHUTDOWN) and is freed. */
void manager_generate_jobs_free(Manager *m);

/* Re-reads the keys, tells bus clients about keys that came or went. */
void manager_keys_changed(Manager *m);
/* The same after another node changed the keys of the shared token: not announced again. */
void manager_keys_changed_elsewhere(Manager *m);

int manager_remove_key(Manager *m, const char *id, char **ret_message);

const TokenKey *manager_find_key(Manager *m, const char *id);

/* The RFC 7512 URI of the private key with this id. */
int manager_key_uri(Manager *m, const char *id, char **ret);
/* Fingerprints of the certificates in the store for this key's public key,
 * as a strv; NULL when the key's public key is not known. */
int manager_key_certificates(Manager *m, const TokenKey *key, char ***ret_fingerprints);

/* Re-reads the private keys of the token (after it opened or changed). */
void manager_refresh_keys(Manager *m);

/* Writes a certificate object into the token next to each key that one of
 * these certificates belongs to and that has none yet. */
void manager_bind_certificates(Manager *m, CertInfo **infos, size_t n);

