/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/httperr.h>

#include "fetch-util.h"

uint64_t fetch_now_usec(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

int fetch_fail(char **ret_message, int r, const char *format, ...) {
        va_list ap;

        if (ret_message) {
                va_start(ap, format);
                if (vasprintf(ret_message, format, ap) < 0)
                        *ret_message = NULL;
                va_end(ap);
        }
        return r;
}

int fetch_timeout_seconds(uint64_t timeout_usec) {
        uint64_t s = (timeout_usec + 999999ULL) / 1000000ULL;

        return s < 1 ? 1 : s > 86400 ? 86400 : (int) s;
}

static bool is_error(unsigned long e, int lib, int reason) {
        return ERR_GET_LIB(e) == lib && ERR_GET_REASON(e) == reason;
}

/* The queue holds the cause and what each layer above made of it. */
int fetch_http_error(const char *what, const char *size_key, uint64_t timeout_usec, uint64_t max_size,
                     char **ret_message) {
        bool too_large = false, timed_out = false;
        char text[256] = "no answer";
        unsigned long e, first = 0;

        while ((e = ERR_get_error()) != 0) {
                first = first ?: e;
                too_large = too_large || is_error(e, ERR_LIB_HTTP, HTTP_R_MAX_RESP_LEN_EXCEEDED) ||
                            is_error(e, ERR_LIB_HTTP, HTTP_R_ASN1_LEN_EXCEEDS_MAX_RESP_LEN);
                timed_out = timed_out || is_error(e, ERR_LIB_BIO, BIO_R_TRANSFER_TIMEOUT) ||
                            is_error(e, ERR_LIB_HTTP, HTTP_R_RETRY_TIMEOUT);
        }
        if (first)
                ERR_error_string_n(first, text, sizeof(text));

        if (too_large)
                return fetch_fail(ret_message, -EFBIG, "%s is larger than %s (%llu bytes).", what, size_key,
                                  (unsigned long long) max_size);
        if (timed_out)
                return fetch_fail(ret_message, -ETIMEDOUT, "%s did not arrive within FetchTimeoutSec= (%d s).", what,
                                  fetch_timeout_seconds(timeout_usec));
        return fetch_fail(ret_message, -ETIMEDOUT, "%s cannot be fetched: %s.", what, text);
}
