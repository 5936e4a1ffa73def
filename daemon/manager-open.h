/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

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
                                      * not-yet-valid, revoked, sender-mismatch, weak-algorithm */
        char *signature_message;
        CertInfo *signer;            /* when one was found */
        bool has_content;
        uint64_t size;
} OpenStatus;

void open_status_done(OpenStatus *s);

/* error < 0 only for requests that could not be handled at all (bad input,
 * denied), with error_code (an SMIMED_ERR_*, or 0 for a generic one,
 * derived from error) and message; an undecryptable or badly signed message
 * is a status. */
typedef void (*OpenJobDone)(OpenJob *job, int error, SmimedError error_code, const char *message,
                            const OpenStatus *status, void *userdata);

/* call is the method call, for polkit's subject. On success the job owns
 * userdata. */
int manager_open_start(Manager *m, sd_bus_message *call, bool decrypt, bool verify, int input_fd, int output_fd,
                       OpenJobDone done, void *userdata, void (*free_userdata)(void *));

/* For done(): polkit's error name (bus-polkit.h: AccessDenied or
 * InteractiveAuthorizationRequired) when the job ended with -EACCES because
 * polkit allowed the caller none of the keys the message is encrypted to;
 * NULL otherwise. polkit's answer is a D-Bus error already: it goes back as
 * it came. */
const char *manager_open_job_polkit_error(const OpenJob *job);

void manager_open_jobs_free(Manager *m);
/* The client sender went away: its jobs finish with -ECONNRESET (a
 * decryption on a worker when that returns) and write no output. Returns
 * how many. */
unsigned manager_open_jobs_cancel_sender(Manager *m, const char *sender);
