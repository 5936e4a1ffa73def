/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <time.h>

#include "macro.h"

/* What the downloads of revocation data (crl-fetch.c, ocsp-fetch.c) share:
 * the clock, a failure with a message, and OpenSSL's HTTP client's errors in
 * words. No D-Bus, no store. */

uint64_t fetch_now_usec(clockid_t clock);

/* Sets *ret_message (if given) from format and returns r. */
int fetch_fail(char **ret_message, int r, const char *format, ...) _printf_(3, 4);

/* After a failed OSSL_HTTP_* call, from OpenSSL's error queue (which it
 * empties): -EFBIG when the answer was larger than max_size (size_key names
 * the setting), else -ETIMEDOUT, with what ("The CRL at URI") failed. */
int fetch_http_error(const char *what, const char *size_key, uint64_t timeout_usec, uint64_t max_size,
                     char **ret_message);

/* FetchTimeoutSec= as OpenSSL's HTTP client takes it: whole seconds, at least 1. */
int fetch_timeout_seconds(uint64_t timeout_usec);
