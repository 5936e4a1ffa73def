/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"
#include "store.h"
#include "validate.h"

typedef struct Manager Manager;

/* One page of the store's certificates, for ListCertificates: filtered by
 * the store in SQL where it can, ordered by NotAfter then fingerprint, with
 * each row's status (validated as of the moment the listing began). A
 * status filter validates every candidate; that is done a few at a time,
 * so that the caller can serve others in between. No D-Bus. */

#define CERTIFICATE_LIST_DEFAULT_LIMIT 100U
#define CERTIFICATE_LIST_MAX_LIMIT 1000U

typedef struct CertificateListQuery {
        StoreListFilter filter; /* address_prefix lower-cased, copied */
        bool by_status;
        CertStatus status;
        uint64_t offset;
        uint64_t limit; /* 1…CERTIFICATE_LIST_MAX_LIMIT */
} CertificateListQuery;

typedef struct CertificateListEntry {
        char fingerprint[SHA256_HEX_SIZE];
        char **addresses;
        char *subject;
        char *issuer;
        time_t not_after;
        CertStatus status;
        bool trusted;
        bool is_ca;
        bool has_private_key;
} CertificateListEntry;

typedef struct CertificateList CertificateList;

int certificate_list_new(Manager *m, const CertificateListQuery *query, CertificateList **ret);
CertificateList *certificate_list_free(CertificateList *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertificateList *, certificate_list_free);

/* Works for about budget_usec (at least one row): 1 when the page is
 * complete, 0 when there is more to do, < 0 on a failure of the store. */
int certificate_list_step(CertificateList *l, uint64_t budget_usec);

/* The page, once complete, and how many certificates pass the filter. */
const CertificateListEntry *certificate_list_entries(const CertificateList *l, size_t *ret_n, uint64_t *ret_total);
