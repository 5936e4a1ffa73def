/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* CRLs downloaded from the http:// URIs of CRL distribution points, with
 * OpenSSL's HTTP client, and from their ldap:// and ldaps:// URIs with
 * libldap (crl-ldap.c), on threads of their own: the event loop never
 * waits for a server. Each download is bounded in time and size; a CRL is
 * taken only when it is the issuer's (name and signature) and current (not
 * past its nextUpdate). At most one download per URI runs at a time; a URI
 * that failed is not tried again for CRL_FETCH_RETRY_USEC unless forced.
 * What was fetched is refreshed before its nextUpdate. State is in memory
 * only. No D-Bus, no store: the owner stores what deliver() hands it. */

#define CRL_FETCH_RETRY_USEC (5ULL * 60ULL * 1000000ULL)
#define CRL_FETCH_MIN_INTERVAL_USEC (60ULL * 1000000ULL)
#define CRL_FETCH_MAX_RUNNING 4U

typedef struct CrlFetcher CrlFetcher;

/* On the loop: a verified, current CRL from uri; the owner stores it.
 * Returns 0 or a negative errno with *ret_message saying why. */
typedef int (*CrlDeliver)(X509_CRL *crl, const char *uri, void *userdata, char **ret_message);
/* On the loop: how a download the caller asked for ended (0: delivered);
 * message says why it failed, NULL on success. */
typedef void (*CrlFetchDone)(int r, const char *uri, const char *message, void *userdata);

int crl_fetcher_new(sd_event *event, CrlDeliver deliver, void *userdata, CrlFetcher **ret);
/* Waits for the downloads in progress (each ends within its timeout);
 * the callers waiting are told -ECANCELED. */
CrlFetcher *crl_fetcher_free(CrlFetcher *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(CrlFetcher *, crl_fetcher_free);

/* Applies to downloads started from now on. */
void crl_fetcher_set_limits(CrlFetcher *f, uint64_t timeout_usec, uint64_t max_size);

/* Downloads the CRL at uri, issued by issuer, unless a download of uri runs
 * already (then done is called when it ends) or, unless force, it failed
 * less than CRL_FETCH_RETRY_USEC ago (or succeeded less than
 * CRL_FETCH_MIN_INTERVAL_USEC ago). done may be NULL. Returns 1 when done
 * will be called, 0 when the URI is resting after a failure (*ret_message,
 * if given, says why it failed), or a negative errno. */
int crl_fetcher_fetch(CrlFetcher *f, const char *uri, X509 *issuer, bool force, CrlFetchDone done, void *userdata,
                      char **ret_message);

/* The http://, ldap:// and ldaps:// URIs of the CRL distribution points of x509 (full names
 * only, for CRLs its issuer signs itself), as a strv; NULL when none. */
int crl_distribution_points(X509 *x509, char ***ret);

/* Fetches a CRL, blocking: what a download thread does. For tests. */
int crl_download(const char *uri, X509 *issuer, uint64_t timeout_usec, uint64_t max_size, X509_CRL **ret,
                 char **ret_message);
