/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <time.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "ocsp-answer.h"

/* OCSP (RFC 6960) as smimed speaks it: which responders a certificate names,
 * the request (one certificate, with a nonce), and what a response must be
 * to count: successful, signed by the issuer or by a responder the issuer
 * delegated (id-kp-OCSPSigning, issued by it), the request's nonce when the
 * response carries one, about the certificate asked for, and current
 * (thisUpdate not ahead, nextUpdate not past, within OCSP_CLOCK_SKEW_SEC).
 * No network, no D-Bus, no store. */

#define OCSP_MAX_RESPONSE_SIZE (256U * 1024U)
#define OCSP_CLOCK_SKEW_SEC 300L
/* How long an answer without nextUpdate is kept. */
#define OCSP_DEFAULT_CACHE_SEC 300L

/* The http:// OCSP responders of x509's Authority Information Access, as a
 * strv; NULL when none. */
int ocsp_responder_uris(X509 *x509, char ***ret);

/* A request for subject, issued by issuer, with a fresh nonce. */
int ocsp_request_new(X509 *subject, X509 *issuer, OCSP_REQUEST **ret);

/* Checks the DER response to request (NULL: no nonce to compare) about
 * subject at now. 0 with *ret filled (uri and checked_at left to the
 * caller), or -EBADMSG (not an OCSP response, or not successful) or
 * -EKEYREJECTED (not to be believed) with *ret_message saying why. */
int ocsp_response_check(const void *der, size_t size, OCSP_REQUEST *request, X509 *subject, X509 *issuer, time_t now,
                        OcspAnswer *ret, char **ret_message);
