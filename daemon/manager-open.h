/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "certificate.h"
#include "smimed-error.h"
#include "work-requests.h"

typedef struct Manager Manager;

/* Decrypt and Verify as jobs: the input is spooled like an outgoing
 * message, then opened layer by layer (encrypted, signed, up to
 * OPEN_MAX_LAYERS deep) into the innermost content, which goes to the output
 * fd with the outer header fields put back. Whatever the signature says, the
 * content comes back; only a layer that cannot be decrypted has none.
 * Decrypting asks polkit (org.smimed1.decrypt) about the key it needs, when
 * it knows which one. */

#define OPEN_MAX_LAYERS WORK_OPEN_MAX_LAYERS

typedef struct OpenJob OpenJob;

typedef struct OpenStatus {
        const char *encryption;      /* encrypted, not-encrypted, no-private-key, failed */
        char *encryption_message;
        char *key;                   /* the key used to decrypt (CKA_ID hex) */
        char *key_certificate;       /* and its certificate's fingerprint */
        const char *signature;       /* valid, not-signed, no-certificate, invalid, untrusted, expired,
                                      * not-yet-valid, revoked, sender-mismatch, weak-algorithm,
                                      * revocation-unknown */
        char *signature_message;
        CertInfo *signer;            /* when one was found */
        bool has_content;
        uint64_t size;
        int result_fd; /* the content itself, from its start to its end (the job's; in done()
                        * only), for a job started without an output fd */
} OpenStatus;

void open_status_done(OpenStatus *s);

/* error < 0 only for requests that could not be handled at all (bad input,
 * denied), with error_code (an SMIMED_ERR_*, or 0 for a generic one,
 * derived from error) and message; an undecryptable or badly signed message
 * is a status. A caller that may use none of the keys the message is
 * encrypted to is -EACCES with code 0. */
typedef void (*OpenJobDone)(OpenJob *job, int error, SmimedError error_code, const char *message,
                            const OpenStatus *status, void *userdata);

/* Whether the caller may decrypt with the key of the certificate
 * fingerprint, which speaks for address (the only question the job asks of
 * whoever started it, on the loop). 1: yes, at once; 0: the answer comes
 * later, through manager_open_job_authorized(); < 0: it cannot be asked. */
typedef int (*OpenAuthorize)(OpenJob *job, const char *address, const char *fingerprint, void *userdata);

/* Whether a yes to the same question is remembered (a recent answer of
 * polkit): then the job need not ask. On a worker thread: it only reads. */
typedef bool (*OpenAuthorizedAtOnce)(OpenJob *job, const char *address, const char *fingerprint, void *userdata);

typedef struct OpenJobHooks {
        OpenJobDone done;
        OpenAuthorize authorize;
        OpenAuthorizedAtOnce authorized_at_once; /* NULL: always ask */
        /* The job is freed: its userdata too, and with it any question still open. */
        void (*free_userdata)(void *userdata);
} OpenJobHooks;

typedef struct OpenRequest {
        bool decrypt;
        bool verify;
        const char *key; /* NULL, or decrypt only with this key (its id, as the status's "key") */
        int input_fd; /* the caller's; duplicated */
        int output_fd;      /* -1: nothing is written, done() reads status->result_fd */
        AuditCaller caller; /* who asked; its sender names the client for limits and cancellation */
} OpenRequest;

/* On success the job owns userdata. */
int manager_open_start(Manager *m, const OpenRequest *request, const OpenJobHooks *hooks, void *userdata);

/* Frees what Decrypt keeps between calls (the certificates of the token's keys). */
void manager_open_forget(Manager *m);

/* The answer to an authorize() that returned 0: refusal is the reason
 * given, for the message when no key is allowed. */
void manager_open_job_authorized(OpenJob *job, bool allowed, const char *refusal);
