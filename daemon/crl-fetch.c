/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/httperr.h>
#include <openssl/x509v3.h>

#include "certificate.h"
#include "crl-fetch.h"
#include "crl-ldap.h"
#include "fetch-util.h"
#include "log.h"
#include "strv.h"
#include "worker-pool.h"

typedef struct CrlSource CrlSource;
typedef struct Download Download;

typedef struct Waiter {
        CrlFetchDone done;
        void *userdata;
        struct Waiter *next;
} Waiter;

/* One distribution point URI and what smimed knows of it. */
struct CrlSource {
        CrlFetcher *fetcher;
        char *uri;
        X509 *issuer;       /* who must have signed what it serves */
        Download *download; /* the one in progress */
        Waiter *waiters;
        uint64_t failed_usec;  /* CLOCK_MONOTONIC of the last failure; 0: none since the last success */
        uint64_t fetched_usec; /* … of the last success */
        char *failure;
        time_t refresh_at; /* 0: nothing fetched to refresh */
        CrlSource *next;
};

/* What a download thread gets and gives back. */
struct Download {
        CrlSource *source;
        char *uri;
        X509 *issuer;
        uint64_t timeout_usec;
        uint64_t max_size;
        X509_CRL *crl;
        char *message;
};

struct CrlFetcher {
        sd_event *event;
        WorkerPool *threads;
        CrlDeliver deliver;
        void *userdata;
        uint64_t timeout_usec;
        uint64_t max_size;
        CrlSource *sources;
        sd_event_source *refresh_source;
};

int crl_distribution_points(X509 *x509, char ***ret) {
        _cleanup_(strv_freep) char **uris = NULL;
        STACK_OF(DIST_POINT) * points;
        int r = 0;

        points = X509_get_ext_d2i(x509, NID_crl_distribution_points, NULL, NULL);
        for (int i = 0; points && r >= 0 && i < sk_DIST_POINT_num(points); i++) {
                DIST_POINT *p = sk_DIST_POINT_value(points, i);

                /* An indirect CRL (another CRL issuer) or one by name relative
                 * to the issuer is not what we can verify or find. */
                if (p->CRLissuer || !p->distpoint || p->distpoint->type != 0)
                        continue;
                for (int k = 0; r >= 0 && k < sk_GENERAL_NAME_num(p->distpoint->name.fullname); k++) {
                        GENERAL_NAME *name = sk_GENERAL_NAME_value(p->distpoint->name.fullname, k);
                        const unsigned char *data;
                        int len;
                        char *uri;

                        if (name->type != GEN_URI)
                                continue;
                        data = ASN1_STRING_get0_data(name->d.uniformResourceIdentifier);
                        len = ASN1_STRING_length(name->d.uniformResourceIdentifier);
                        if (len < 8 || len > 2048 || memchr(data, '\0', (size_t) len))
                                continue;
                        uri = strndup((const char *) data, (size_t) len);
                        if (!uri) {
                                r = -ENOMEM;
                                break;
                        }
                        if (strncasecmp(uri, "http://", 7) != 0 && !crl_ldap_is_url(uri)) {
                                free(uri);
                                continue;
                        }
                        if (strv_contains(uris, uri))
                                free(uri);
                        else
                                r = strv_consume(&uris, uri);
                }
        }
        CRL_DIST_POINTS_free(points);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(uris);
        return 0;
}

/* OpenSSL's errors of a failed download, in words and as an errno. */
static int http_error(const char *uri, uint64_t timeout_usec, uint64_t max_size, char **ret_message) {
        _cleanup_free_ char *what = NULL;

        if (asprintf(&what, "The CRL at %s", uri) < 0)
                return -ENOMEM;
        return fetch_http_error(what, "MaxCRLSize=", timeout_usec, max_size, ret_message);
}

int crl_download(const char *uri, X509 *issuer, uint64_t timeout_usec, uint64_t max_size, X509_CRL **ret,
                 char **ret_message) {
        int timeout = fetch_timeout_seconds(timeout_usec);
        X509_CRL *crl;
        time_t next_update = 0;
        char issuer_name[256] = "";
        BIO *bio;

        ERR_clear_error();
        if (crl_ldap_is_url(uri)) {
                _cleanup_free_ unsigned char *der = NULL;
                const unsigned char *p;
                size_t size = 0;
                int r;

                r = crl_ldap_get(uri, timeout_usec, max_size, &der, &size, ret_message);
                if (r < 0)
                        return r;
                p = der;
                crl = d2i_X509_CRL(NULL, &p, (long) size);
        } else {
                bio = OSSL_HTTP_get(uri, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, /* expect_asn1 */ 1,
                                    (size_t) max_size, timeout);
                if (!bio)
                        return http_error(uri, timeout_usec, max_size, ret_message);
                crl = d2i_X509_CRL_bio(bio, NULL);
                BIO_free_all(bio);
        }
        ERR_clear_error();
        if (!crl)
                return fetch_fail(ret_message, -EBADMSG, "What %s served is not a DER CRL.", uri);

        X509_NAME_oneline(X509_get_subject_name(issuer), issuer_name, sizeof(issuer_name));
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0) {
                X509_CRL_free(crl);
                return fetch_fail(ret_message, -EKEYREJECTED, "The CRL at %s is not one of %s.", uri, issuer_name);
        }
        if (X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1) {
                X509_CRL_free(crl);
                ERR_clear_error();
                return fetch_fail(ret_message, -EKEYREJECTED,
                                  "The signature of the CRL at %s does not verify with the key of %s.", uri,
                                  issuer_name);
        }
        if (X509_CRL_get0_nextUpdate(crl) &&
            (asn1_time_to_time_t(X509_CRL_get0_nextUpdate(crl), &next_update) < 0 || next_update <= time(NULL))) {
                X509_CRL_free(crl);
                return fetch_fail(ret_message, -EKEYREJECTED, "The CRL at %s is past its next update.", uri);
        }
        *ret = crl;
        return 0;
}

static Download *download_free(Download *d) {
        if (!d)
                return NULL;
        free(d->uri);
        X509_free(d->issuer);
        X509_CRL_free(d->crl);
        free(d->message);
        return mfree(d);
}

static int download_work(void *userdata) {
        Download *d = userdata;

        return crl_download(d->uri, d->issuer, d->timeout_usec, d->max_size, &d->crl, &d->message);
}

static void source_schedule_refresh(CrlFetcher *f);

/* When to fetch again: a tenth of the CRL's validity (at most an hour)
 * before its nextUpdate. */
static time_t refresh_time(X509_CRL *crl) {
        time_t this_update = 0, next_update = 0, margin;

        if (!X509_CRL_get0_nextUpdate(crl) || asn1_time_to_time_t(X509_CRL_get0_nextUpdate(crl), &next_update) < 0 ||
            asn1_time_to_time_t(X509_CRL_get0_lastUpdate(crl), &this_update) < 0)
                return 0;
        margin = (next_update - this_update) / 10;
        if (margin > 3600)
                margin = 3600;
        if (margin < 1)
                margin = 1;
        return next_update - margin;
}

static void download_done(int result, void *userdata) {
        Download *d = userdata;
        CrlSource *s = d->source;
        CrlFetcher *f = s->fetcher;
        _cleanup_free_ char *message = TAKE_PTR(d->message);
        Waiter *waiters = s->waiters;
        int r = result;

        s->download = NULL;
        s->waiters = NULL;

        if (r >= 0) {
                r = f->deliver(d->crl, s->uri, f->userdata, &message);
                if (r >= 0) {
                        s->refresh_at = refresh_time(d->crl);
                        s->failed_usec = 0;
                        s->fetched_usec = fetch_now_usec(CLOCK_MONOTONIC);
                        s->failure = mfree(s->failure);
                }
        }
        if (r < 0) {
                log_warning_errno(r, "%s", message ? message : "A CRL cannot be fetched: %m");
                s->failed_usec = fetch_now_usec(CLOCK_MONOTONIC);
                free(s->failure);
                s->failure = message ? strdup(message) : NULL;
        }
        download_free(d);

        while (waiters) {
                Waiter *w = waiters;

                waiters = w->next;
                if (w->done)
                        w->done(r, s->uri, r < 0 ? message : NULL, w->userdata);
                free(w);
        }
        source_schedule_refresh(f);
}

static CrlSource *source_find(CrlFetcher *f, const char *uri) {
        for (CrlSource *s = f->sources; s; s = s->next)
                if (streq(s->uri, uri))
                        return s;
        return NULL;
}

static int source_start(CrlSource *s) {
        CrlFetcher *f = s->fetcher;
        Download *d;
        int r;

        d = calloc(1, sizeof(Download));
        if (!d)
                return -ENOMEM;
        *d = (Download){
                .source = s,
                .uri = strdup(s->uri),
                .issuer = s->issuer,
                .timeout_usec = f->timeout_usec,
                .max_size = f->max_size,
        };
        if (!d->uri || !X509_up_ref(d->issuer)) {
                d->issuer = NULL;
                download_free(d);
                return -ENOMEM;
        }
        r = worker_pool_submit(f->threads, 0, download_work, download_done, d);
        if (r < 0) {
                download_free(d);
                return r;
        }
        s->download = d;
        log_info("Fetching the CRL at %s.", s->uri);
        return 0;
}

int crl_fetcher_fetch(CrlFetcher *f, const char *uri, X509 *issuer, bool force, CrlFetchDone done, void *userdata,
                      char **ret_message) {
        CrlSource *s = source_find(f, uri);
        Waiter *w;
        int r;

        if (!s) {
                s = calloc(1, sizeof(CrlSource));
                if (!s)
                        return -ENOMEM;
                s->fetcher = f;
                s->uri = strdup(uri);
                if (!s->uri) {
                        free(s);
                        return -ENOMEM;
                }
                s->next = f->sources;
                f->sources = s;
        }

        if (!s->download && !force && s->failed_usec > 0 &&
            fetch_now_usec(CLOCK_MONOTONIC) < s->failed_usec + CRL_FETCH_RETRY_USEC) {
                if (ret_message && s->failure)
                        *ret_message = strdup(s->failure);
                return 0;
        }
        /* Fetched a moment ago, yet asked for again (the store kept another
         * CRL of that issuer name): not every second. */
        if (!s->download && !force && s->fetched_usec > 0 &&
            fetch_now_usec(CLOCK_MONOTONIC) < s->fetched_usec + CRL_FETCH_MIN_INTERVAL_USEC)
                return 0;
        if (s->download && !done)
                return 1;

        w = calloc(1, sizeof(Waiter));
        if (!w)
                return -ENOMEM;
        *w = (Waiter){.done = done, .userdata = userdata};

        if (!s->download) {
                /* The latest issuer asked for: a CA that renewed its key signs with the new one. */
                if (!X509_up_ref(issuer)) {
                        free(w);
                        return -ENOMEM;
                }
                X509_free(s->issuer);
                s->issuer = issuer;
                r = source_start(s);
                if (r < 0) {
                        free(w);
                        return r;
                }
        }
        if (done) {
                w->next = s->waiters;
                s->waiters = w;
        } else
                free(w);
        return 1;
}

static int on_refresh(sd_event_source *es, uint64_t usec, void *userdata) {
        CrlFetcher *f = userdata;
        time_t now = time(NULL);

        (void) es;
        (void) usec;
        for (CrlSource *s = f->sources; s; s = s->next)
                if (s->refresh_at > 0 && s->refresh_at <= now && !s->download) {
                        s->refresh_at = 0;
                        if (s->issuer && crl_fetcher_fetch(f, s->uri, s->issuer, false, NULL, NULL, NULL) < 0)
                                log_warning("Cannot refresh the CRL at %s.", s->uri);
                }
        source_schedule_refresh(f);
        return 0;
}

/* One timer for the earliest refresh due. */
static void source_schedule_refresh(CrlFetcher *f) {
        time_t earliest = 0;
        int r;

        for (CrlSource *s = f->sources; s; s = s->next)
                if (s->refresh_at > 0 && !s->download && (earliest == 0 || s->refresh_at < earliest))
                        earliest = s->refresh_at;

        if (earliest == 0) {
                if (f->refresh_source)
                        (void) sd_event_source_set_enabled(f->refresh_source, SD_EVENT_OFF);
                return;
        }
        if (!f->refresh_source) {
                r = sd_event_add_time(f->event, &f->refresh_source, CLOCK_REALTIME, (uint64_t) earliest * 1000000ULL,
                                      1000000ULL, on_refresh, f);
                if (r < 0)
                        log_warning_errno(r, "Cannot schedule the refresh of CRLs: %m");
                return;
        }
        (void) sd_event_source_set_time(f->refresh_source, (uint64_t) earliest * 1000000ULL);
        (void) sd_event_source_set_enabled(f->refresh_source, SD_EVENT_ONESHOT);
}

int crl_fetcher_new(sd_event *event, CrlDeliver deliver, void *userdata, CrlFetcher **ret) {
        CrlFetcher *f;
        int r;

        f = calloc(1, sizeof(CrlFetcher));
        if (!f)
                return -ENOMEM;
        *f = (CrlFetcher){
                .event = sd_event_ref(event),
                .deliver = deliver,
                .userdata = userdata,
                .timeout_usec = 10ULL * 1000000ULL,
                .max_size = 10ULL * 1024ULL * 1024ULL,
        };
        r = worker_pool_new(event, CRL_FETCH_MAX_RUNNING, &f->threads);
        if (r < 0) {
                crl_fetcher_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

void crl_fetcher_set_limits(CrlFetcher *f, uint64_t timeout_usec, uint64_t max_size) {
        f->timeout_usec = timeout_usec;
        f->max_size = max_size;
}

CrlFetcher *crl_fetcher_free(CrlFetcher *f) {
        if (!f)
                return NULL;
        /* Downloads in progress end within their timeout; their done() is not called. */
        worker_pool_free(f->threads);
        while (f->sources) {
                CrlSource *s = f->sources;

                f->sources = s->next;
                while (s->waiters) {
                        Waiter *w = s->waiters;

                        s->waiters = w->next;
                        if (w->done)
                                w->done(-ECANCELED, s->uri, "smimed is stopping.", w->userdata);
                        free(w);
                }
                download_free(s->download);
                X509_free(s->issuer);
                free(s->failure);
                free(s->uri);
                free(s);
        }
        sd_event_source_disable_unref(f->refresh_source);
        sd_event_unref(f->event);
        return mfree(f);
}
