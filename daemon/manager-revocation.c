/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "crl-fetch.h"
#include "log.h"
#include "manager-events.h"
#include "ocsp-check.h"
#include "ocsp-fetch.h"
#include "manager-certificates.h"
#include "manager-revocation.h"
#include "manager.h"
#include "strv.h"

static int deliver_crl(X509_CRL *crl, const char *uri, void *userdata, char **ret_message) {
        Manager *m = userdata;
        STACK_OF(X509_CRL) * crls;
        char issuer[256] = "";
        unsigned stored = 0;
        int r;

        crls = sk_X509_CRL_new_null();
        if (!crls || !X509_CRL_up_ref(crl))
                goto oom;
        if (!sk_X509_CRL_push(crls, crl)) {
                X509_CRL_free(crl);
                goto oom;
        }
        r = manager_store_crls(m, crls, &stored, ret_message);
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
        if (r < 0)
                return r;
        X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
        log_info("Fetched the CRL of %s from %s%s.", issuer, uri,
                 stored > 0 ? "" : " (the store holds one as new already)");
        return 0;

oom:
        sk_X509_CRL_free(crls);
        return -ENOMEM;
}

/* An OCSP query ended: a checked answer is kept in the store (for every
 * node, until its nextUpdate); no answer, or "unknown", under
 * ocsp-then-crl sends validation to the CRL. */
static void on_ocsp_result(int r, const OcspAnswer *answer, const char *fingerprint, X509 *subject, X509 *issuer,
                           const char *message, void *userdata) {
        Manager *m = userdata;

        (void) message; /* logged by the fetcher */
        if (r >= 0) {
                r = store_begin(m->store);
                if (r >= 0) {
                        r = store_put_ocsp(m->store, fingerprint, answer);
                        if (r >= 0)
                                r = store_commit(m->store);
                        else
                                store_rollback(m->store);
                }
                if (r < 0)
                        log_warning_errno(r, "Cannot keep the OCSP answer for %s: %m", fingerprint);
                else {
                        log_info("OCSP responder %s: certificate %s is %s.", answer->uri, fingerprint,
                                 ocsp_status_to_string(answer->status));
                        manager_notify(m, MANAGER_EVENT_CERTIFICATES_STALE, NULL);
                }
        }
        if ((r < 0 || answer->status == OCSP_STATUS_UNKNOWN) && m->policy.method == REVOCATION_METHOD_OCSP_THEN_CRL)
                manager_want_crl(m, subject, issuer);
}

int manager_revocation_start(Manager *m) {
        int r;

        r = crl_fetcher_new(m->event, deliver_crl, m, &m->crl_fetcher);
        if (r < 0)
                return r;
        r = ocsp_fetcher_new(m->event, on_ocsp_result, m, &m->ocsp_fetcher);
        if (r < 0)
                return r;
        manager_revocation_apply(m);
        return 0;
}

void manager_revocation_apply(Manager *m) {
        if (m->crl_fetcher)
                crl_fetcher_set_limits(m->crl_fetcher, m->config->fetch_timeout_usec, m->config->max_crl_size);
        if (m->ocsp_fetcher)
                ocsp_fetcher_set_timeout(m->ocsp_fetcher, m->config->fetch_timeout_usec);
}

void manager_revocation_stop(Manager *m) {
        m->ocsp_fetcher = ocsp_fetcher_free(m->ocsp_fetcher);
        m->crl_fetcher = crl_fetcher_free(m->crl_fetcher);
}

void manager_want_ocsp(void *userdata, X509 *subject, X509 *issuer) {
        Manager *m = userdata;
        _cleanup_(strv_freep) char **uris = NULL;
        const char *uri;
        int r;

        if (!m->ocsp_fetcher || m->policy.revocation == REVOCATION_POLICY_NONE ||
            m->policy.method == REVOCATION_METHOD_CRL)
                return;
        r = ocsp_responder_uris(subject, &uris);
        if (r < 0) {
                log_oom();
                return;
        }
        /* The certificate's own responder first; [Revocation] OCSPResponder= for the others. */
        uri = uris ? uris[0] : m->config->ocsp_responder;
        r = uri ? ocsp_fetcher_query(m->ocsp_fetcher, uri, subject, issuer, NULL) : 0;
        if (r < 0)
                log_warning_errno(r, "Cannot ask the OCSP responder %s: %m", uri);
        /* No responder, or one resting after a failure: the CRL speaks instead. */
        if (r <= 0 && m->policy.method == REVOCATION_METHOD_OCSP_THEN_CRL)
                manager_want_crl(m, subject, issuer);
}

void manager_want_crl(void *userdata, X509 *subject, X509 *issuer) {
        Manager *m = userdata;
        _cleanup_(strv_freep) char **uris = NULL;
        int r;

        if (!m->crl_fetcher || m->policy.revocation == REVOCATION_POLICY_NONE)
                return;
        r = crl_distribution_points(subject, &uris);
        if (r < 0) {
                log_oom();
                return;
        }
        for (char **u = uris; u && *u; u++) {
                r = crl_fetcher_fetch(m->crl_fetcher, *u, issuer, false, NULL, NULL, NULL);
                if (r < 0)
                        log_warning_errno(r, "Cannot fetch the CRL at %s: %m", *u);
        }
}

/* ---- FetchCRLs ---- */

typedef struct FetchAll {
        Manager *m;
        ManagerFetchCrlsDone done;
        void *userdata;
        unsigned pending;
        unsigned fetched;
        int error;
        char *message; /* every failure, one sentence each */
} FetchAll;

static void fetch_all_release(FetchAll *a) {
        if (--a->pending > 0)
                return;
        a->done(a->m, a->error, a->fetched, a->message, a->userdata);
        free(a->message);
        free(a);
}

static void fetch_all_one_done(int r, const char *uri, const char *message, void *userdata) {
        FetchAll *a = userdata;

        (void) uri;
        if (r >= 0)
                a->fetched++;
        else {
                char *joined = NULL;

                if (a->error == 0)
                        a->error = r;
                if (asprintf(&joined, "%s%s%s", strempty(a->message), a->message ? " " : "",
                             message ? message : "A CRL cannot be fetched.") >= 0) {
                        free(a->message);
                        a->message = joined;
                }
        }
        fetch_all_release(a);
}

typedef struct Gather {
        STACK_OF(X509) * all;
} Gather;

static int gather_certificate(X509 *x509, bool trusted, void *userdata) {
        Gather *g = userdata;

        (void) trusted;
        if (!X509_up_ref(x509))
                return -ENOMEM;
        if (!sk_X509_push(g->all, x509)) {
                X509_free(x509);
                return -ENOMEM;
        }
        return 0;
}

/* The certificate in all that issued x509 (its signature verifies), or NULL. */
static X509 *find_issuer(STACK_OF(X509) * all, X509 *x509) {
        if (X509_check_issued(x509, x509) == X509_V_OK)
                return NULL; /* self-issued: no CRL speaks for it */
        for (int i = 0; i < sk_X509_num(all); i++) {
                X509 *c = sk_X509_value(all, i);

                if (X509_check_issued(c, x509) == X509_V_OK && X509_verify(x509, X509_get0_pubkey(c)) == 1)
                        return c;
        }
        return NULL;
}

int manager_fetch_crls(Manager *m, ManagerFetchCrlsDone done, void *userdata) {
        Gather g = {};
        _cleanup_(strv_freep) char **started = NULL;
        FetchAll *a;
        int r;

        if (!m->crl_fetcher)
                return -ESHUTDOWN;
        a = calloc(1, sizeof(FetchAll));
        g.all = sk_X509_new_null();
        if (!a || !g.all) {
                free(a);
                sk_X509_free(g.all);
                return -ENOMEM;
        }
        *a = (FetchAll){.m = m, .done = done, .userdata = userdata, .pending = 1};

        r = store_foreach_certificate(m->store, gather_certificate, &g);
        for (int i = 0; r >= 0 && i < sk_X509_num(g.all); i++) {
                X509 *x = sk_X509_value(g.all, i), *issuer = find_issuer(g.all, x);
                _cleanup_(strv_freep) char **uris = NULL;

                if (!issuer)
                        continue;
                r = crl_distribution_points(x, &uris);
                for (char **u = uris; r >= 0 && u && *u; u++) {
                        if (strv_contains(started, *u))
                                continue;
                        r = strv_extend(&started, *u);
                        if (r < 0)
                                break;
                        r = crl_fetcher_fetch(m->crl_fetcher, *u, issuer, true, fetch_all_one_done, a, NULL);
                        if (r > 0)
                                a->pending++;
                }
        }
        sk_X509_pop_free(g.all, X509_free);
        if (r < 0 && a->pending == 1) {
                free(a);
                return r;
        }
        if (r < 0 && a->error == 0)
                a->error = r; /* the downloads started end on their own; done tells of this too */
        log_info("Fetching %zu CRLs on request.", strv_length(started));
        /* The reference the loop above held: done runs now if nothing was started. */
        fetch_all_release(a);
        return 0;
}
