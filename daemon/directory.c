/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <ldap.h>
#include <openssl/pkcs7.h>

#include "openssl-util.h"
#include "directory.h"
#include "fetch-util.h"
#include "ldap-util.h"
#include "log.h"
#include "worker-pool.h"

typedef struct Entry Entry;

typedef struct Waiter {
        DirectoryDone done;
        void *userdata;
        struct Waiter *next;
} Waiter;

/* What a lookup thread gets and gives back: copies, so that a reload
 * meanwhile changes nothing under it. */
typedef struct Lookup {
        Entry *entry;
        char *uri, *base, *filter, *bind_dn, *password, *address;
        uint64_t timeout_usec;
        STACK_OF(X509) * certs;
        char *message;
} Lookup;

/* One address and what smimed knows of it. */
struct Entry {
        Directory *directory;
        char *address;
        Lookup *lookup; /* the one in progress */
        Waiter *waiters;
        uint64_t not_found_until; /* CLOCK_MONOTONIC; 0: not known to be missing */
        Entry *next;
};

struct Directory {
        sd_event *event;
        WorkerPool *threads;
        char *uri, *base, *filter, *bind_dn, *password;
        uint64_t timeout_usec;
        uint64_t cache_usec;
        uint64_t failed_until; /* CLOCK_MONOTONIC: the server failed, ask nothing until then */
        char *failure;
        uint64_t n_searches;
        Entry *entries;
};

static void lookup_free(Lookup *l) {
        if (!l)
                return;
        free(l->uri);
        free(l->base);
        free(l->filter);
        free(l->bind_dn);
        erase_and_free(l->password);
        free(l->address);
        sk_X509_pop_free(l->certs, X509_free);
        free(l->message);
        free(l);
}

static void entry_free(Entry *e) {
        lookup_free(e->lookup);
        while (e->waiters) {
                Waiter *w = e->waiters;

                e->waiters = w->next;
                free(w);
        }
        free(e->address);
        free(e);
}

static void directory_forget(Directory *d) {
        /* Entries with a lookup in progress stay: their waiters are told. */
        for (Entry **p = &d->entries; *p;) {
                Entry *e = *p;

                if (e->lookup) {
                        e->not_found_until = 0;
                        p = &e->next;
                        continue;
                }
                *p = e->next;
                entry_free(e);
        }
        d->failed_until = 0;
        d->failure = mfree(d->failure);
}

int directory_new(sd_event *event, Directory **ret) {
        Directory *d;
        int r;

        d = calloc(1, sizeof(Directory));
        if (!d)
                return -ENOMEM;
        d->event = sd_event_ref(event);
        r = worker_pool_new(event, DIRECTORY_MAX_RUNNING, &d->threads);
        if (r < 0) {
                directory_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

Directory *directory_free(Directory *d) {
        if (!d)
                return NULL;
        /* The pool waits for the lookups running and drops the queued ones
         * without telling: their callers are told here. */
        d->threads = worker_pool_free(d->threads);
        while (d->entries) {
                Entry *e = d->entries;

                d->entries = e->next;
                for (Waiter *w = e->waiters; w; w = w->next)
                        w->done(-ECANCELED, e->address, NULL, "smimed is stopping.", w->userdata);
                entry_free(e);
        }
        free(d->uri);
        free(d->base);
        free(d->filter);
        free(d->bind_dn);
        erase_and_free(d->password);
        free(d->failure);
        sd_event_unref(d->event);
        return mfree(d);
}

int directory_configure(Directory *d, const DirectorySettings *settings) {
        bool changed = !streq_ptr(d->uri, settings->uri) || !streq_ptr(d->base, settings->base) ||
                       !streq_ptr(d->filter, settings->filter) || !streq_ptr(d->bind_dn, settings->bind_dn) ||
                       !streq_ptr(d->password, settings->password) || d->timeout_usec != settings->timeout_usec ||
                       d->cache_usec != settings->cache_usec;
        char *password = NULL;
        int r;

        if (settings->password) {
                password = strdup(settings->password);
                if (!password)
                        return -ENOMEM;
        }
        erase_and_free(d->password);
        d->password = password;
        r = free_and_strdup(&d->uri, settings->uri);
        if (r >= 0)
                r = free_and_strdup(&d->base, settings->base);
        if (r >= 0)
                r = free_and_strdup(&d->filter, settings->filter);
        if (r >= 0)
                r = free_and_strdup(&d->bind_dn, settings->bind_dn);
        if (r < 0)
                return r;
        d->timeout_usec = settings->timeout_usec;
        d->cache_usec = settings->cache_usec;
        if (changed)
                directory_forget(d);
        return 0;
}

uint64_t directory_searches(const Directory *d) {
        return d->n_searches;
}

int directory_filter(const char *filter, const char *address, char **ret) {
        struct berval value = {.bv_len = strlen(address), .bv_val = (char *) address};
        _cleanup_free_ char *result = NULL;
        struct berval escaped = {};
        size_t n = 0;

        /* Addresses come from D-Bus strings, which cannot hold NUL, so
         * escaping stops at the first (and only) NUL; libldap would write
         * \00 for one inside bv_len. */
        if (ldap_bv2escaped_filter_value(&value, &escaped) != 0)
                return -ENOMEM;

        result = malloc(strlen(filter) + escaped.bv_len + 1);
        if (!result) {
                ber_memfree(escaped.bv_val);
                return -ENOMEM;
        }
        for (const char *p = filter; *p; p++) {
                if (p[0] == '%' && p[1] == 's') {
                        memcpy(result + n, escaped.bv_val, escaped.bv_len);
                        n += escaped.bv_len;
                        p++;
                } else if (p[0] == '%' && p[1] == '%') {
                        result[n++] = '%';
                        p++;
                } else
                        result[n++] = *p;
        }
        result[n] = '\0';
        ber_memfree(escaped.bv_val);
        *ret = TAKE_PTR(result);
        return 0;
}

static int push_x509(STACK_OF(X509) * certs, X509 *x509) {
        if (sk_X509_num(certs) >= DIRECTORY_MAX_CERTIFICATES) {
                X509_free(x509);
                return 0;
        }
        if (!sk_X509_push(certs, x509)) {
                X509_free(x509);
                return -ENOMEM;
        }
        return 0;
}

/* userSMIMECertificate: a PKCS#7 SignedData that carries the certificates
 * (RFC 2798), or, from some directories, one DER certificate. */
static int read_smime_value(const struct berval *v, STACK_OF(X509) * certs) {
        const unsigned char *p = (const unsigned char *) v->bv_val;
        PKCS7 *p7;
        X509 *x509;
        int r = 0;

        p7 = d2i_PKCS7(NULL, &p, (long) v->bv_len);
        if (p7) {
                if (PKCS7_type_is_signed(p7) && p7->d.sign)
                        for (int i = 0; r >= 0 && i < sk_X509_num(p7->d.sign->cert); i++) {
                                x509 = sk_X509_value(p7->d.sign->cert, i);
                                if (!X509_up_ref(x509)) {
                                        r = -ENOMEM;
                                        break;
                                }
                                r = push_x509(certs, x509);
                        }
                PKCS7_free(p7);
                return r;
        }
        p = (const unsigned char *) v->bv_val;
        x509 = d2i_X509(NULL, &p, (long) v->bv_len);
        return x509 ? push_x509(certs, x509) : 0;
}

static int read_der_value(const struct berval *v, STACK_OF(X509) * certs) {
        const unsigned char *p = (const unsigned char *) v->bv_val;
        X509 *x509 = d2i_X509(NULL, &p, (long) v->bv_len);

        return x509 ? push_x509(certs, x509) : 0;
}

static int read_attribute(LDAP *ld, LDAPMessage *entry, const char *attribute,
                          int (*read_value)(const struct berval *v, STACK_OF(X509) * certs), STACK_OF(X509) * certs) {
        struct berval **values = ldap_get_values_len(ld, entry, attribute);
        int r = 0;

        for (size_t i = 0; values && values[i] && r >= 0; i++)
                if (values[i]->bv_len > 0 && values[i]->bv_len <= 256 * 1024)
                        r = read_value(values[i], certs);
        ldap_value_free_len(values);
        return r;
}

int directory_search(const DirectorySettings *s, const char *address, STACK_OF(X509) * *ret, char **ret_message) {
        /* As Outlook asks: the S/MIME attribute first, then the plain one. */
        static const char *const attributes[] = {"userSMIMECertificate", "userCertificate;binary", NULL};
        _cleanup_(sk_X509_free_allp) STACK_OF(X509) *certs = NULL;
        _cleanup_free_ char *filter = NULL, *what = NULL;
        uint64_t deadline = ldap_util_now_usec() + s->timeout_usec;
        LDAPMessage *result = NULL;
        struct timeval tv;
        LDAP *ld = NULL;
        int rc, r;

        r = directory_filter(s->filter, address, &filter);
        if (r < 0)
                return r;
        certs = sk_X509_new_null();
        if (!certs)
                return -ENOMEM;

        if (asprintf(&what, "The directory %s", s->uri) < 0)
                return -ENOMEM;
        r = ldap_util_open(what, s->uri, deadline, &ld, ret_message);
        if (r < 0)
                return r;

        if (s->bind_dn) {
                struct berval cred = {
                        .bv_len = s->password ? strlen(s->password) : 0,
                        .bv_val = (char *) strempty(s->password),
                };

                rc = ldap_sasl_bind_s(ld, s->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
                if (rc != LDAP_SUCCESS) {
                        r = fetch_fail(ret_message, ldap_util_errno(rc), "The directory %s refused the bind as %s: %s",
                                       s->uri, s->bind_dn, ldap_err2string(rc));
                        goto finish;
                }
        }

        tv = ldap_util_time_left(deadline);
        (void) ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
        rc = ldap_search_ext_s(ld, strempty(s->base), LDAP_SCOPE_SUBTREE, filter, (char **) attributes, 0, NULL, NULL,
                               &tv, DIRECTORY_MAX_ENTRIES, &result);
        if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED && rc != LDAP_NO_SUCH_OBJECT) {
                r = fetch_fail(ret_message, ldap_util_errno(rc),
                               "The directory %s did not answer the search for %s: %s", s->uri, address,
                               ldap_err2string(rc));
                goto finish;
        }

        r = 0;
        for (LDAPMessage *e = ldap_first_entry(ld, result); e && r >= 0; e = ldap_next_entry(ld, e)) {
                r = read_attribute(ld, e, "userSMIMECertificate", read_smime_value, certs);
                if (r >= 0)
                        r = read_attribute(ld, e, "userCertificate;binary", read_der_value, certs);
        }
        if (r >= 0 && sk_X509_num(certs) == 0)
                r = fetch_fail(ret_message, -ENOENT, "The directory %s has no certificate for %s.", s->uri, address);
        if (r >= 0)
                *ret = TAKE_PTR(certs);

finish:
        ldap_msgfree(result);
        ldap_unbind_ext_s(ld, NULL, NULL);
        return r;
}

static int lookup_work(void *userdata) {
        Lookup *l = userdata;
        DirectorySettings s = {
                .uri = l->uri,
                .base = l->base,
                .filter = l->filter,
                .bind_dn = l->bind_dn,
                .password = l->password,
                .timeout_usec = l->timeout_usec,
        };

        return directory_search(&s, l->address, &l->certs, &l->message);
}

static void lookup_done(int result, void *userdata) {
        Lookup *l = userdata;
        Entry *e = l->entry;
        Directory *d = e->directory;
        Waiter *waiters = e->waiters;
        uint64_t negative = d->cache_usec < DIRECTORY_NEGATIVE_USEC ? d->cache_usec : DIRECTORY_NEGATIVE_USEC;

        e->lookup = NULL;
        e->waiters = NULL;

        if (result == -ENOENT)
                e->not_found_until = ldap_util_now_usec() + negative;
        else if (result < 0 && result != -ENOMEM) {
                log_warning_errno(result, "%s", l->message ? l->message : "The directory cannot be asked: %m");
                d->failed_until = ldap_util_now_usec() + DIRECTORY_RETRY_USEC;
                free(d->failure);
                d->failure = l->message ? strdup(l->message) : NULL;
        } else if (result >= 0)
                d->failed_until = 0;

        for (Waiter *w = waiters, *next; w; w = next) {
                STACK_OF(X509) *certs = NULL;

                next = w->next;
                if (result >= 0 && !next)
                        certs = TAKE_PTR(l->certs);
                else if (result >= 0) {
                        certs = X509_chain_up_ref(l->certs);
                        if (!certs)
                                result = -ENOMEM;
                }
                w->done(result, e->address, certs, l->message, w->userdata);
                free(w);
        }
        lookup_free(l);
}

static Entry *entry_find(Directory *d, const char *address) {
        for (Entry *e = d->entries; e; e = e->next)
                if (streq(e->address, address))
                        return e;
        return NULL;
}

static int entry_start(Directory *d, Entry *e) {
        Lookup *l;
        int r;

        l = calloc(1, sizeof(Lookup));
        if (!l)
                return -ENOMEM;
        *l = (Lookup){
                .entry = e,
                .uri = strdup(d->uri),
                .base = d->base ? strdup(d->base) : NULL,
                .filter = strdup(d->filter),
                .bind_dn = d->bind_dn ? strdup(d->bind_dn) : NULL,
                .password = d->password ? strdup(d->password) : NULL,
                .address = strdup(e->address),
                .timeout_usec = d->timeout_usec,
        };
        if (!l->uri || !l->filter || !l->address || (d->base && !l->base) || (d->bind_dn && !l->bind_dn) ||
            (d->password && !l->password)) {
                lookup_free(l);
                return -ENOMEM;
        }
        r = worker_pool_submit(d->threads, 0, lookup_work, lookup_done, l);
        if (r < 0) {
                lookup_free(l);
                return r;
        }
        e->lookup = l;
        d->n_searches++;
        log_debug("Looking %s up in the directory %s.", e->address, d->uri);
        return 0;
}

/* Drops entries that know nothing any more, so the list stays as small as
 * the addresses asked for within the negative cache's time. */
static void entries_prune(Directory *d, uint64_t now) {
        for (Entry **p = &d->entries; *p;) {
                Entry *e = *p;

                if (!e->lookup && e->not_found_until <= now) {
                        *p = e->next;
                        entry_free(e);
                } else
                        p = &e->next;
        }
}

int directory_lookup(Directory *d, const char *address, DirectoryDone done, void *userdata) {
        uint64_t now = ldap_util_now_usec();
        Waiter *w;
        Entry *e;
        int r;

        if (!d->uri)
                return 0;
        entries_prune(d, now);
        e = entry_find(d, address);
        if (e && !e->lookup && e->not_found_until > now)
                return 0;
        if (!(e && e->lookup) && d->failed_until > now)
                return 0;

        w = calloc(1, sizeof(Waiter));
        if (!w)
                return -ENOMEM;
        *w = (Waiter){.done = done, .userdata = userdata};

        if (!e) {
                e = calloc(1, sizeof(Entry));
                if (!e || !(e->address = strdup(address))) {
                        free(e);
                        free(w);
                        return -ENOMEM;
                }
                e->directory = d;
                e->next = d->entries;
                d->entries = e;
        }
        if (!e->lookup) {
                r = entry_start(d, e);
                if (r < 0) {
                        free(w);
                        return r;
                }
        }
        w->next = e->waiters;
        e->waiters = w;
        return 1;
}
