/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/http.h>

#include "certificate.h"
#include "fetch-util.h"
#include "log.h"
#include "ocsp-check.h"
#include "ocsp-fetch.h"
#include "worker-pool.h"

typedef struct Query Query;

/* One certificate and what smimed knows of asking about it. */
typedef struct OcspSubject {
        char fingerprint[SHA256_HEX_SIZE];
        Query *query;         /* the one in progress */
        uint64_t failed_usec; /* CLOCK_MONOTONIC of the last failure; 0: none since the last success */
        char *failure;
        struct OcspSubject *next;
} OcspSubject;

/* What a query thread gets and gives back. */
struct Query {
        OcspFetcher *fetcher;
        OcspSubject *subject_state;
        char *uri;
        X509 *subject;
        X509 *issuer;
        uint64_t timeout_usec;
        OcspAnswer answer;
        char *message;
};

struct OcspFetcher {
        sd_event *event;
        WorkerPool *threads;
        OcspResult result;
        void *userdata;
        uint64_t timeout_usec;
        OcspSubject *subjects;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(OCSP_REQUEST *, OCSP_REQUEST_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all);

/* The response, whole, as bytes: at most max_size of them. */
static int read_all(BIO *bio, size_t max_size, unsigned char **ret, size_t *ret_size) {
        _cleanup_free_ unsigned char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                int n;

                if (size == allocated) {
                        unsigned char *p;

                        if (allocated >= max_size)
                                return -EFBIG;
                        allocated = allocated ? allocated * 2 : 4096;
                        if (allocated > max_size)
                                allocated = max_size;
                        p = realloc(buf, allocated);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                n = BIO_read(bio, buf + size, (int) (allocated - size));
                if (n <= 0)
                        break;
                size += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int ocsp_query(const char *uri, X509 *subject, X509 *issuer, uint64_t timeout_usec, OcspAnswer *ret,
               char **ret_message) {
        _cleanup_(OCSP_REQUEST_freep) OCSP_REQUEST *request = NULL;
        _cleanup_(BIO_free_allp) BIO *request_bio = NULL, *response_bio = NULL;
        _cleanup_free_ char *host = NULL, *port = NULL, *path = NULL, *what = NULL, *why = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        size_t size = 0;
        int ssl = 0, r;

        if (asprintf(&what, "The OCSP response from %s", uri) < 0)
                return -ENOMEM;
        ERR_clear_error();
        if (!OSSL_HTTP_parse_url(uri, &ssl, NULL, &host, &port, NULL, &path, NULL, NULL) || ssl) {
                ERR_clear_error();
                return fetch_fail(ret_message, -EINVAL, "%s is not an http:// URL of an OCSP responder.", uri);
        }
        r = ocsp_request_new(subject, issuer, &request);
        if (r < 0)
                return r;
        request_bio = ASN1_item_i2d_mem_bio(ASN1_ITEM_rptr(OCSP_REQUEST), (const ASN1_VALUE *) request);
        if (!request_bio)
                return -ENOMEM;

        response_bio = OSSL_HTTP_transfer(NULL, host, port, path, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL,
                                          "application/ocsp-request", request_bio, "application/ocsp-response",
                                          /* expect_asn1 */ 1, OCSP_MAX_RESPONSE_SIZE,
                                          fetch_timeout_seconds(timeout_usec), /* keep_alive */ 0);
        if (!response_bio)
                return fetch_http_error(what, "the limit for OCSP responses", timeout_usec, OCSP_MAX_RESPONSE_SIZE,
                                        ret_message);
        r = read_all(response_bio, OCSP_MAX_RESPONSE_SIZE, &der, &size);
        if (r == -EFBIG)
                return fetch_fail(ret_message, r, "%s is larger than the limit for OCSP responses (%u bytes).", what,
                                  OCSP_MAX_RESPONSE_SIZE);
        if (r < 0)
                return r;

        r = ocsp_response_check(der, size, request, subject, issuer, time(NULL), ret, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fetch_fail(ret_message, r, "%s is refused: %s", what, why ? why : "it cannot be checked.");
        ret->uri = strdup(uri);
        if (!ret->uri)
                return -ENOMEM;
        ret->checked_at = time(NULL);
        return 0;
}

static Query *query_free(Query *q) {
        if (!q)
                return NULL;
        free(q->uri);
        X509_free(q->subject);
        X509_free(q->issuer);
        ocsp_answer_done(&q->answer);
        free(q->message);
        return mfree(q);
}

static int query_work(void *userdata) {
        Query *q = userdata;

        return ocsp_query(q->uri, q->subject, q->issuer, q->timeout_usec, &q->answer, &q->message);
}

static void query_done(int result, void *userdata) {
        Query *q = userdata;
        OcspSubject *s = q->subject_state;
        OcspFetcher *f = q->fetcher;

        s->query = NULL;
        if (result >= 0) {
                s->failed_usec = 0;
                s->failure = mfree(s->failure);
        } else {
                log_warning_errno(result, "%s", q->message ? q->message : "An OCSP responder cannot be asked: %m");
                s->failed_usec = fetch_now_usec(CLOCK_MONOTONIC);
                free(s->failure);
                s->failure = q->message ? strdup(q->message) : NULL;
        }
        f->result(result, result >= 0 ? &q->answer : NULL, s->fingerprint, q->subject, q->issuer, q->message,
                  f->userdata);
        query_free(q);
}

static OcspSubject *subject_find(OcspFetcher *f, const char *fingerprint) {
        for (OcspSubject *s = f->subjects; s; s = s->next)
                if (streq(s->fingerprint, fingerprint))
                        return s;
        return NULL;
}

int ocsp_fetcher_query(OcspFetcher *f, const char *uri, X509 *subject, X509 *issuer, char **ret_message) {
        char fingerprint[SHA256_HEX_SIZE];
        OcspSubject *s;
        Query *q;
        int r;

        r = x509_fingerprint(subject, fingerprint);
        if (r < 0)
                return r;
        s = subject_find(f, fingerprint);
        if (!s) {
                s = calloc(1, sizeof(OcspSubject));
                if (!s)
                        return -ENOMEM;
                memcpy(s->fingerprint, fingerprint, sizeof(fingerprint));
                s->next = f->subjects;
                f->subjects = s;
        }
        if (s->query)
                return 1;
        if (s->failed_usec > 0 && fetch_now_usec(CLOCK_MONOTONIC) < s->failed_usec + OCSP_FETCH_RETRY_USEC) {
                if (ret_message && s->failure)
                        *ret_message = strdup(s->failure);
                return 0;
        }

        q = calloc(1, sizeof(Query));
        if (!q)
                return -ENOMEM;
        *q = (Query){
                .fetcher = f,
                .subject_state = s,
                .uri = strdup(uri),
                .timeout_usec = f->timeout_usec,
        };
        if (!q->uri || !X509_up_ref(subject)) {
                query_free(q);
                return -ENOMEM;
        }
        q->subject = subject;
        if (!X509_up_ref(issuer)) {
                query_free(q);
                return -ENOMEM;
        }
        q->issuer = issuer;
        r = worker_pool_submit(f->threads, 0, query_work, query_done, q);
        if (r < 0) {
                query_free(q);
                return r;
        }
        s->query = q;
        log_info("Asking the OCSP responder %s about certificate %s.", uri, fingerprint);
        return 1;
}

int ocsp_fetcher_new(sd_event *event, OcspResult result, void *userdata, OcspFetcher **ret) {
        OcspFetcher *f;
        int r;

        f = calloc(1, sizeof(OcspFetcher));
        if (!f)
                return -ENOMEM;
        *f = (OcspFetcher){
                .event = sd_event_ref(event),
                .result = result,
                .userdata = userdata,
                .timeout_usec = 10ULL * 1000000ULL,
        };
        r = worker_pool_new(event, OCSP_FETCH_MAX_RUNNING, &f->threads);
        if (r < 0) {
                ocsp_fetcher_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

void ocsp_fetcher_set_timeout(OcspFetcher *f, uint64_t timeout_usec) {
        f->timeout_usec = timeout_usec;
}

OcspFetcher *ocsp_fetcher_free(OcspFetcher *f) {
        if (!f)
                return NULL;
        /* Queries in progress end within their timeout; their result() is not called. */
        worker_pool_free(f->threads);
        while (f->subjects) {
                OcspSubject *s = f->subjects;

                f->subjects = s->next;
                query_free(s->query);
                free(s->failure);
                free(s);
        }
        sd_event_unref(f->event);
        return mfree(f);
}
