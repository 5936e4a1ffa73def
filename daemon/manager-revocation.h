/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/x509.h>

typedef struct Manager Manager;

/* Revocation by CRLs fetched from distribution points and by OCSP
 * ([Revocation]): a
 * validation that misses a current CRL asks for one (manager_want_crl(),
 * the validator's ValidationLookup.want_crl) and goes on without waiting;
 * the CRL, once downloaded and verified off the loop, is stored as
 * ImportCRL stores it, which bumps the store's generation (and tells the
 * other nodes of a cluster), so the next validation sees it. No D-Bus. */

int manager_revocation_start(Manager *m);
/* [Revocation] of the running config: limits of downloads started from now on. */
void manager_revocation_apply(Manager *m);
void manager_revocation_stop(Manager *m);

/* ValidationLookup.want_crl, userdata the Manager. */
void manager_want_crl(void *userdata, X509 *subject, X509 *issuer);
/* ValidationLookup.want_ocsp, userdata the Manager: asks the certificate's
 * http:// OCSP responder (else [Revocation] OCSPResponder=) off the loop;
 * the checked answer is kept in the store, which bumps its generation.
 * Under ocsp-then-crl, no answer to be had fetches the CRL instead. */
void manager_want_ocsp(void *userdata, X509 *subject, X509 *issuer);

/* Fetches now, whatever failed before, the CRLs of every certificate in the
 * store whose issuer is there too, from their http:// distribution points.
 * done runs on the loop when every download ended: r 0 when all were
 * stored, else the first failure's errno with message naming each
 * failure; fetched counts the CRLs downloaded and stored (or already
 * there). Returns 0 when done will run, or a negative errno. */
typedef void (*ManagerFetchCrlsDone)(Manager *m, int r, unsigned fetched, const char *message, void *userdata);
int manager_fetch_crls(Manager *m, ManagerFetchCrlsDone done, void *userdata);
