/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdlib.h>
#include <time.h>

/* What an OCSP responder said of one certificate, once its response was
 * checked (ocsp-check.h): kept in the store until next_update, read by
 * validation. */

typedef enum OcspStatus {
        OCSP_STATUS_GOOD,
        OCSP_STATUS_REVOKED,
        OCSP_STATUS_UNKNOWN, /* the responder does not know the certificate */
        _OCSP_STATUS_MAX,
} OcspStatus;

typedef struct OcspAnswer {
        OcspStatus status;
        char *uri; /* the responder asked */
        time_t this_update;
        time_t next_update; /* until when the answer holds */
        time_t revoked_at;  /* OCSP_STATUS_REVOKED: since when */
        time_t checked_at;  /* when smimed got it */
} OcspAnswer;

static inline void ocsp_answer_done(OcspAnswer *a) {
        free(a->uri);
        *a = (OcspAnswer){};
}

static inline const char *ocsp_status_to_string(OcspStatus s) {
        return s == OCSP_STATUS_GOOD ? "good" : s == OCSP_STATUS_REVOKED ? "revoked" : "unknown";
}
