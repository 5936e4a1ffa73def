/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "certificate.h"
#include "db.h"
#include "macro.h"
#include "ocsp-answer.h"

/* The certificate store: an SQL database (db.h: SQLite, WAL, or
 * PostgreSQL; a versioned schema) of
 * certificates (DER, indexed by SHA-256 fingerprint, lower-cased mail
 * address, subject and issuer name, public key hash), trust-anchor flags and
 * the newest CRL of each issuer. Writes go through store_begin() /
 * store_commit(): a batch is all or nothing. No D-Bus. */

typedef struct Store Store;

/* The SQLite store at path, made when missing. */
int store_open(const char *path, Store **ret, char **ret_message);
/* The store in db (taken, closed on failure too), its schema migrated. */
int store_open_db(Db *db, Store **ret, char **ret_message);
Store *store_free(Store *store);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* For messages: the file, or the PostgreSQL database and host. */
const char *store_name(const Store *store);

/* Bumped by every committed change; lets callers cache what they read. */
uint64_t store_generation(Store *store);

/* Several smimed on one store (PostgreSQL) tell each other of their
 * changes: every change is announced on STORE_CHANNEL in its transaction
 * (so only when it commits) as "added FP", "removed FP", "trust FP", "crl"
 * or "keys" (a key was enrolled in the shared token). */
#define STORE_CHANNEL "smimed_store"

typedef enum StoreChange {
        STORE_CHANGE_ADDED,
        STORE_CHANGE_REMOVED,
        STORE_CHANGE_TRUST,
        STORE_CHANGE_CRL,
        STORE_CHANGE_KEYS,
        _STORE_CHANGE_MAX,
} StoreChange;

int store_announce(Store *store, StoreChange change, const char *fingerprint);
/* -EBADMSG for anything but the announcements above; *ret_fingerprint
 * points into payload (NULL for crl and keys). */
int store_parse_change(const char *payload, StoreChange *ret_change, const char **ret_fingerprint);
/* Another smimed changed the store: what was read from it is stale. */
void store_changed_elsewhere(Store *store);
/* check: nothing announces other smimed's changes now, so
 * store_generation() compares the generation in the store instead (a
 * query each time); false again once announcements are heard. */
int store_check_shared_generation(Store *store, bool check);
/* The connection the store writes through, to tell its own announcements
 * from others'. */
Db *store_db(Store *store);

int store_begin(Store *store);
int store_commit(Store *store);
void store_rollback(Store *store);

/* Inside a transaction. Adds the certificate unless it is there; trusted
 * only ever adds trust. *ret_added says whether it was new. */
int store_add_certificate(Store *store, const CertInfo *info, bool trusted, bool *ret_added);
/* -ENOENT when there is no such certificate. */
int store_remove_certificate(Store *store, const char *fingerprint);
int store_set_trusted(Store *store, const char *fingerprint, bool trusted);

/* Certificates found in the [Directory] carry when they were last fetched
 * from it. Inside a transaction or not; only_if_marked: only a certificate
 * that came from the directory before (not one an admin imported). */
int store_set_directory_fetched(Store *store, const char *fingerprint, time_t at, bool only_if_marked);
/* 0 in *ret: not from the directory. -ENOENT when there is no such certificate. */
int store_get_directory_fetched(Store *store, const char *fingerprint, time_t *ret);

int store_count_certificates(Store *store, uint64_t *ret);
/* -ENOENT when there is no such certificate. */
int store_get_certificate(Store *store, const char *fingerprint, X509 **ret, bool *ret_trusted);
/* Fingerprints for a lower-cased address ("" or NULL: all), newest
 * NotBefore first, as a strv. */
int store_find_by_address(Store *store, const char *address, char ***ret);

/* Fingerprints of the certificates for a public key (SHA-256 of its SPKI). */
int store_find_by_spki(Store *store, const char *spki_sha256, char ***ret);

/* The certificate with this issuer (DER) and serial (upper-case hex), or -ENOENT. */
int store_find_by_issuer_serial(Store *store, const unsigned char *issuer_der, size_t size, const char *serial,
                                X509 **ret);

typedef int (*StoreCertificateCallback)(X509 *x509, bool trusted, void *userdata);
/* Calls cb for each certificate whose subject is name_der. */
int store_foreach_by_subject(Store *store, const unsigned char *name_der, size_t size, StoreCertificateCallback cb,
                             void *userdata);

/* Every certificate, and every CRL, in a stable order. */
int store_foreach_certificate(Store *store, StoreCertificateCallback cb, void *userdata);
typedef int (*StoreCrlCallback)(X509_CRL *crl, void *userdata);
int store_foreach_crl(Store *store, StoreCrlCallback cb, void *userdata);

/* Inside a transaction. Stores crl as the CRL of its issuer unless a CRL
 * that is not older is there; *ret_stored says which. */
int store_put_crl(Store *store, X509_CRL *crl, bool *ret_stored);
/* The CRL issued by name_der, or -ENOENT. */
int store_get_crl(Store *store, const unsigned char *name_der, size_t size, X509_CRL **ret);

/* Inside a transaction. Keeps what an OCSP responder said of the
 * certificate fingerprint, replacing what was kept, and drops answers past
 * their next update. */
int store_put_ocsp(Store *store, const char *fingerprint, const OcspAnswer *answer);
/* What was kept for fingerprint (perhaps past its next_update), or -ENOENT. */
int store_get_ocsp(Store *store, const char *fingerprint, OcspAnswer *ret);

/* Listing the store a page at a time, for ListCertificates: in the order of
 * NotAfter, then fingerprint. */
typedef struct StoreListFilter {
        time_t expiring_before;     /* > 0: only NotAfter before it */
        int is_ca;                  /* < 0: any, else only CAs (1) or only others (0) */
        const char *address_prefix; /* NULL: any; else an address (lower-cased) starts with it */
} StoreListFilter;

#define STORE_LIST_FILTER_ALL ((StoreListFilter){.is_ca = -1})

typedef struct StoreListPage {
        /* Only rows after this one (keyset paging); after_fingerprint NULL: from the start. */
        time_t after_not_after;
        const char *after_fingerprint;
        uint64_t offset; /* then skips this many */
        uint64_t limit;  /* and returns at most this many */
} StoreListPage;

/* der, not a parsed X509: parsing costs 100–200 µs a certificate, and the
 * caller does it a row at a time, within its turn (certificate-list.c). */
typedef struct StoreListRow {
        char fingerprint[SHA256_HEX_SIZE];
        char spki_sha256[SHA256_HEX_SIZE];
        uint8_t *der;
        size_t der_size;
        time_t not_after;
        bool trusted;
        bool is_ca;
} StoreListRow;

/* The rows of one page, as an array the caller frees with store_list_rows_free(). */
int store_list_certificates(Store *store, const StoreListFilter *filter, const StoreListPage *page, StoreListRow **ret,
                            size_t *ret_n);
void store_list_rows_free(StoreListRow *rows, size_t n);
/* How many certificates pass filter. */
int store_count_listed(Store *store, const StoreListFilter *filter, uint64_t *ret);
