/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certificate-list.h"
#include "certificate.h"
#include "manager-certificates.h"
#include "manager.h"
#include "openssl-util.h"
#include "strv.h"
#include "x509-cache.h"

/* Rows read from the store at once while validating every candidate. */
#define SCAN_BATCH 64U

struct CertificateList {
        Manager *manager;
        CertificateListQuery query;
        char *address_prefix;
        time_t now;

        /* The rows read and not yet looked at. */
        StoreListRow *rows;
        size_t n_rows;
        size_t next_row;
        bool fetched;  /* without a status filter: the one page is read */
        bool scan_end; /* with one: the last batch was short */
        time_t last_not_after;
        char last_fingerprint[SHA256_HEX_SIZE];

        CertificateListEntry *entries;
        size_t n_entries;
        uint64_t total;
        bool done;
};

static void entry_done(CertificateListEntry *e) {
        strv_free(e->addresses);
        free(e->subject);
        free(e->issuer);
}

CertificateList *certificate_list_free(CertificateList *l) {
        if (!l)
                return NULL;
        store_list_rows_free(l->rows, l->n_rows);
        for (size_t i = 0; i < l->n_entries; i++)
                entry_done(&l->entries[i]);
        free(l->entries);
        free(l->address_prefix);
        return mfree(l);
}

int certificate_list_new(Manager *m, const CertificateListQuery *query, CertificateList **ret) {
        _cleanup_(certificate_list_freep) CertificateList *l = NULL;

        if (query->limit == 0 || query->limit > CERTIFICATE_LIST_MAX_LIMIT)
                return -EINVAL;
        l = calloc(1, sizeof(CertificateList));
        if (!l)
                return -ENOMEM;
        l->manager = m;
        l->query = *query;
        if (query->filter.address_prefix) {
                l->address_prefix = strdup(query->filter.address_prefix);
                if (!l->address_prefix)
                        return -ENOMEM;
        }
        l->query.filter.address_prefix = l->address_prefix;
        l->entries = calloc(query->limit, sizeof(CertificateListEntry));
        if (!l->entries)
                return -ENOMEM;
        l->now = time(NULL);
        *ret = TAKE_PTR(l);
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int validate_row(CertificateList *l, X509 *x509, CertStatus *ret) {
        static const CertPurpose any = CERT_PURPOSE_ANY;
        Validation v = {};
        int r;

        r = manager_validate_certificate(l->manager, x509, l->now, &any, 1, &v);
        if (r < 0)
                return r;
        *ret = v.status;
        validation_done(&v);
        return 0;
}

static int describe_row(CertificateList *l, const StoreListRow *row, X509 *x509, CertStatus status) {
        CertificateListEntry *e = &l->entries[l->n_entries];
        int r;

        *e = (CertificateListEntry){
                .not_after = row->not_after,
                .status = status,
                .trusted = row->trusted,
                .is_ca = row->is_ca,
                .has_private_key = strv_contains(l->manager->key_spkis, row->spki_sha256),
        };
        memcpy(e->fingerprint, row->fingerprint, sizeof(e->fingerprint));
        r = certificate_addresses(x509, &e->addresses);
        if (r >= 0) {
                e->subject = x509_name_to_string(X509_get_subject_name(x509));
                e->issuer = x509_name_to_string(X509_get_issuer_name(x509));
                if (!e->subject || !e->issuer)
                        r = -ENOMEM;
        }
        if (r < 0) {
                entry_done(e);
                return r;
        }
        l->n_entries++;
        return 0;
}

static void drop_rows(CertificateList *l) {
        store_list_rows_free(l->rows, l->n_rows);
        l->rows = NULL;
        l->n_rows = l->next_row = 0;
}

/* Without a status filter: the page and the count, by SQL. */
static int fetch_page(CertificateList *l) {
        StoreListPage page = {.offset = l->query.offset, .limit = l->query.limit};
        int r;

        r = store_count_listed(l->manager->store, &l->query.filter, &l->total);
        if (r < 0)
                return r;
        r = store_list_certificates(l->manager->store, &l->query.filter, &page, &l->rows, &l->n_rows);
        if (r < 0)
                return r;
        l->fetched = true;
        return 0;
}

/* With one: the next batch of candidates, after the last one seen. */
static int fetch_batch(CertificateList *l) {
        StoreListPage page = {
                .after_not_after = l->last_not_after,
                .after_fingerprint = l->last_fingerprint[0] ? l->last_fingerprint : NULL,
                .limit = SCAN_BATCH,
        };
        int r;

        drop_rows(l);
        r = store_list_certificates(l->manager->store, &l->query.filter, &page, &l->rows, &l->n_rows);
        if (r < 0)
                return r;
        if (l->n_rows < SCAN_BATCH)
                l->scan_end = true;
        if (l->n_rows > 0) {
                l->last_not_after = l->rows[l->n_rows - 1].not_after;
                memcpy(l->last_fingerprint, l->rows[l->n_rows - 1].fingerprint, sizeof(l->last_fingerprint));
        }
        return 0;
}

/* A page's rows go through the shared cache (their objects are likely
 * asked for next); a scan's candidates do not, so that a scan of the whole
 * store does not push out what the other callers use. */
static X509 *row_x509(CertificateList *l, const StoreListRow *row) {
        const unsigned char *p = row->der;

        if (!l->query.by_status)
                return x509_cache_parse(row->der, row->der_size);
        return d2i_X509(NULL, &p, (long) row->der_size);
}

static int step_row(CertificateList *l, const StoreListRow *row) {
        _cleanup_(X509_freep) X509 *x509 = row_x509(l, row);
        CertStatus status;
        int r;

        if (!x509)
                return -EBADMSG;
        r = validate_row(l, x509, &status);
        if (r < 0)
                return r;
        if (!l->query.by_status)
                return describe_row(l, row, x509, status);
        if (status != l->query.status)
                return 0;
        /* Counted whatever the page; described only when it is on it. */
        l->total++;
        if (l->total > l->query.offset && l->n_entries < l->query.limit)
                return describe_row(l, row, x509, status);
        return 0;
}

int certificate_list_step(CertificateList *l, uint64_t budget_usec) {
        uint64_t start = now_usec();
        int r;

        while (!l->done) {
                if (l->next_row == l->n_rows) {
                        if (l->query.by_status ? l->scan_end : l->fetched) {
                                l->done = true;
                                break;
                        }
                        r = l->query.by_status ? fetch_batch(l) : fetch_page(l);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = step_row(l, &l->rows[l->next_row++]);
                if (r < 0)
                        return r;
                if (now_usec() - start >= budget_usec)
                        break;
        }
        if (l->done)
                drop_rows(l);
        return l->done;
}

const CertificateListEntry *certificate_list_entries(const CertificateList *l, size_t *ret_n, uint64_t *ret_total) {
        *ret_n = l->n_entries;
        *ret_total = l->total;
        return l->entries;
}
