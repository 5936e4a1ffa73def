/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "capabilities.h"
#include "smime-out.h"
#include "smimed-error.h"

typedef struct Manager Manager;

/* Sign and Encrypt as jobs: the input fd is spooled to a temporary file on
 * the event loop (never more than [Policy] MaxMessageSize), the message is
 * split and made canonical (mime.c), signed and/or encrypted (smime-out.c)
 * into a second file, and that is copied to the output fd on the event loop.
 * Memory does not grow with the message. No D-Bus types: the bus layer gets
 * done() with the outcome and replies. */

typedef struct SmimeJob SmimeJob;

typedef struct SmimeRequest {
        AuditCaller caller;      /* who asked, for the audit trail */
        /* signing: sign_as is the sender, NULL for none */
        char *sign_as;
        SignOptions sign;
        /* encrypting: recipients NULL for none */
        char **recipients;
        char *sender;            /* also encrypt to this address, so the sent copy stays readable */
        const EVP_CIPHER *cipher;
        bool oaep;
        /* filled by manager_smime_prepare(): the certificates checked, which
         * the job uses as they are (polkit is asked about this signer) */
        Capability signer;
        Capability *recipient_certificates; /* one for each of recipients */
} SmimeRequest;

void smime_request_done(SmimeRequest *r);

typedef struct SmimeResult {
        char *signer;            /* fingerprint, NULL when not signed */
        char **recipients;       /* fingerprints, NULL when not encrypted */
        bool sender_included;
        uint64_t size;           /* bytes written to the output */
        int result_fd;           /* the result itself, from its start to its end (the job's; in done() only),
                                  * for a job started without an output fd */
} SmimeResult;

void smime_result_done(SmimeResult *r);

/* Called once: error 0 with result filled, or a negative errno with
 * error_code (an SMIMED_ERR_*, or 0 for a generic one, derived from error)
 * and message. */
typedef void (*SmimeJobDone)(SmimeJob *job, int error, SmimedError error_code, const char *message,
                             const SmimeResult *result, void *userdata);

/* Checks what can be checked before reading anything (policy, the
 * certificates and keys of every address) and fills request->signer and
 * request->recipient_certificates with the certificates chosen: the job
 * signs with that signer and encrypts to those, however the store changes
 * meanwhile. For the polkit check: the caller must be allowed to sign as
 * each address of request->signer.info, since the signature vouches for
 * all of them. Errors as for SmimeJobDone. */
int manager_smime_prepare(Manager *m, SmimeRequest *request, SmimedError *ret_error_code, char **ret_message);

/* request must be prepared. output_fd -1: nothing is written, done() reads
 * result->result_fd. On success the job owns request (emptied) and
 * userdata; on failure the caller keeps both. */
int manager_smime_start(Manager *m, SmimeRequest *request, int input_fd, int output_fd, SmimeJobDone done,
                        void *userdata, void (*free_userdata)(void *));
