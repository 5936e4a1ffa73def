/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "key-op.h"
#include "worker-protocol.h"

/* The requests a smimed-worker serves, and what their handlers may ask of
 * smimed while they work. Requests are stateless: everything one needs
 * travels with it (fields and fds). Runs in the worker, in its sandbox: no
 * bus, no token, no store, no files but the fds given. */

/* Echoes a string: request (string) → reply (string). */
#define WORKER_PING 100U

/* The worker's side of its socket to smimed, during one request. */
typedef struct WorkerSession WorkerSession;

/* The handler contract. The dispatcher has initialized reply with
 * worker_reply_init(reply, 0, 0, NULL) before calling the handler.
 *  - Success: the handler appends its request-specific fields to reply and
 *    returns 0.
 *  - An outcome for the person (a broken message, a refused key): the
 *    handler calls worker_reply_init(reply, -EBADMSG,
 *    SMIMED_ERR_INVALID_MESSAGE, "The message …") (which discards what
 *    it had put), may append fields after it, and returns 0.
 *  - A failure without words of its own (-ENOMEM, a request of the wrong
 *    shape, smimed gone): the handler returns a negative errno; reply is
 *    replaced with that error, no error code and a generic sentence.
 * fds the handler takes from request (worker_message_take_fd()) are its
 * own; the rest are closed after the reply. When smimed is gone (a call
 * failed with -ECONNRESET or -EPIPE) the worker exits after the handler. */
typedef int (*WorkerHandler)(WorkerSession *s, WorkerMessage *request, WorkerMessage *reply);

typedef struct WorkerOp {
        uint32_t type;
        WorkerHandler handler;
} WorkerOp;

/* In worker-ops.c. */
extern const WorkerOp worker_ops[];
extern const size_t worker_ops_count;

/* ---- for handlers ---- */

/* Sends call (a WORKER_CALL_*) and receives its WORKER_CALL_RESULT into
 * *ret_result, whose status is read: 0, or the negative errno smimed
 * answered, or the connection's (then the session is broken). The result's
 * fields follow the status. */
int worker_session_call(WorkerSession *s, WorkerMessage *call, WorkerMessage *ret_result);

/* A WORKER_CALL_KEY_OP round trip: smimed performs request with the key
 * the job was authorized for. 0 with the result (free() it), or the
 * negative errno smimed answered (it refused, the token failed) or the
 * connection's. */
int worker_session_key_op(WorkerSession *s, const KeyOpRequest *request, uint8_t **ret, size_t *ret_size);

/* The first error smimed answered a key operation of this request with (0:
 * none so far). OpenSSL's CMS_decrypt() hides a failed key decryption (its
 * countermeasure against padding oracles) and goes on with a random key, so
 * an AES-CBC message may then "decrypt" to garbage: a decrypt handler checks
 * this after smime_decrypt(). */
int worker_session_key_op_error(WorkerSession *s);

/* A WORKER_CALL_SPOOL round trip: a new empty spool file of about
 * size_hint bytes from smimed, read and written at its start; the fd is
 * the caller's. smimed reads what is written there when the reply says so. */
int worker_session_spool(WorkerSession *s, uint64_t size_hint);

/* A scratch file: a spool file only the worker writes and reads (a Sign's
 * canonical entity, a re-encoded body, the signed entity before it is
 * encrypted), at its start. For about size_hint bytes up to
 * SPOOL_MEMORY_MAX, one this worker kept from an earlier request, else a
 * new, empty one through worker_session_spool(). A kept one still has the
 * length of its last use, all zeros: who writes one ends it where the
 * writing stopped (fd_truncate_here()). */
#define SCRATCH_KEPT_MAX 4U
int worker_session_scratch(WorkerSession *s, uint64_t size_hint);

/* Takes a scratch file once the reply to this request is sent (at once
 * when 8 wait already), so that smimed, waiting for the reply, need not
 * wait for it: a memfd is kept for the next request (up to 4: its bytes
 * overwritten with zeros, or cut to nothing above 64 KiB), anything else
 * closed (its last close frees its pages). A new memfd, with its pages
 * allocated and freed again, costs more than reusing one. */
#define WORKER_SESSION_AFTER_REPLY_MAX 8U
void worker_session_scratch_done(WorkerSession *s, int fd);

/* remote_key_new() with worker_session_key_op() as the call: a key for
 * OpenSSL whose private operations smimed performs. NULL when the
 * certificate's key is neither RSA nor EC, or out of memory. Free it with
 * EVP_PKEY_free() before the handler returns. */
EVP_PKEY *worker_session_remote_key(WorkerSession *s, X509 *certificate);
