/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "ocsp-answer.h"

/* OCSP responders asked about certificates, with OpenSSL's HTTP client on
 * threads of their own (as crl-fetch.c fetches CRLs): the event loop never
 * waits for a responder. Each query is bounded in time (FetchTimeoutSec=)
 * and size (OCSP_MAX_RESPONSE_SIZE), and its response checked
 * (ocsp-check.h) before anyone hears of it. At most one query per
 * certificate runs at a time; a certificate whose query failed is not asked
 * about again for OCSP_FETCH_RETRY_USEC. State is in memory only. No D-Bus,
 * no store: the owner keeps what result() hands it. */

#define OCSP_FETCH_RETRY_USEC (5ULL * 60ULL * 1000000ULL)
#define OCSP_FETCH_MAX_RUNNING 4U

typedef struct OcspFetcher OcspFetcher;

/* On the loop, when a query ended: r 0 with answer (checked, current), or
 * a negative errno with message saying why there is none. subject and
 * issuer are the certificates asked about, fingerprint subject's. */
typedef void (*OcspResult)(int r, const OcspAnswer *answer, const char *fingerprint, X509 *subject, X509 *issuer,
                           const char *message, void *userdata);

int ocsp_fetcher_new(sd_event *event, OcspResult result, void *userdata, OcspFetcher **ret);
/* Waits for the queries in progress (each ends within its timeout). */
OcspFetcher *ocsp_fetcher_free(OcspFetcher *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(OcspFetcher *, ocsp_fetcher_free);

void ocsp_fetcher_set_timeout(OcspFetcher *f, uint64_t timeout_usec);

/* Asks uri about subject (issued by issuer) unless a query about it runs
 * already, or it failed less than OCSP_FETCH_RETRY_USEC ago. Returns 1 when
 * result() will be called, 0 when the certificate rests after a failure
 * (*ret_message, if given, says why it failed), or a negative errno. */
int ocsp_fetcher_query(OcspFetcher *f, const char *uri, X509 *subject, X509 *issuer, char **ret_message);

/* Asks, blocking: what a query thread does. For tests. */
int ocsp_query(const char *uri, X509 *subject, X509 *issuer, uint64_t timeout_usec, OcspAnswer *ret,
               char **ret_message);
