/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "macro.h"
#include "smimed-error.h"

/* The messages smimed and its smimed-worker processes exchange over an
 * AF_UNIX SOCK_STREAM socketpair. A frame is a fixed header (magic, type,
 * payload size, fd count), sent with the frame's fds (SCM_RIGHTS), then the
 * payload. The payload is a sequence of typed fields: each put_* appends one,
 * each get_* reads the next and fails with -EBADMSG when it is not of that
 * type, so two sides that disagree on a message's layout find out at once.
 * Message bodies never travel inline: they go by fd. No bus, no token. */

/* Largest payload either side accepts. Lists of certificates can be large. */
#define WORKER_MESSAGE_MAX (64U * 1024U * 1024U)
#define WORKER_FDS_MAX 8

/* ---- message types of the infrastructure; job types start at 100 ---- */

/* The final answer to a request. Its payload starts with the status
 * (worker_reply_init(), worker_reply_read_status()); request-specific
 * fields follow. */
#define WORKER_REPLY 1U
/* Calls of the worker to smimed while it works on a request; each is
 * answered with a WORKER_CALL_RESULT, whose payload starts with an i32:
 * 0 or a negative errno.
 * KEY_OP: a KeyOpRequest (key-op.h) → the result as a blob.
 * SPOOL: u64 size hint → a new empty spool file, as fd 0 of the result.
 * CHOOSE_KEY: WORK_OPEN_LAYER's answer for an enveloped layer (its fields,
 *   no fds) → u32 the index of the recipient to decrypt with at once, with
 *   spool files for the content, a signed content's content and the result
 *   as fds 0–2; or -ENOKEY: smimed decides later (work-requests.h). */
#define WORKER_CALL_KEY_OP 2U
#define WORKER_CALL_SPOOL 3U
#define WORKER_CALL_RESULT 4U
#define WORKER_CALL_CHOOSE_KEY 5U

typedef struct WorkerMessage {
        uint32_t type;
        uint8_t *data;
        size_t size, allocated;
        size_t offset;              /* read cursor */
        int fds[WORKER_FDS_MAX];
        unsigned n_fds;
        int error;                  /* first pack/unpack error, sticky (-ENOMEM, -EBADMSG, …) */
} WorkerMessage;

/* A message that has not been initialized may be zeroed ({}) instead:
 * worker_message_done() and worker_reply_init() accept both. */
void worker_message_init(WorkerMessage *m, uint32_t type);
/* Frees the payload and closes the fds m still holds; m is zeroed. For
 * _cleanup_(worker_message_done). */
void worker_message_done(WorkerMessage *m);
/* Closes the fds m holds (once sent: the receiver has its own) and forgets
 * them; the rest of m stays. */
void worker_message_close_fds(WorkerMessage *m);

/* Appending fields. A failure is remembered in m->error (the first one
 * only) and makes worker_message_send() fail. */
void worker_message_put_u32(WorkerMessage *m, uint32_t v);
void worker_message_put_i32(WorkerMessage *m, int32_t v);
void worker_message_put_u64(WorkerMessage *m, uint64_t v);
void worker_message_put_bool(WorkerMessage *m, bool v);
void worker_message_put_string(WorkerMessage *m, const char *s);         /* NULL allowed, comes back NULL */
void worker_message_put_blob(WorkerMessage *m, const void *p, size_t n); /* comes back NULL when n is 0 */
void worker_message_put_strv(WorkerMessage *m, char *const *l);          /* NULL = empty */
void worker_message_put_x509(WorkerMessage *m, X509 *x);                 /* DER; NULL allowed */
void worker_message_put_x509_stack(WorkerMessage *m, STACK_OF(X509) *s); /* NULL allowed, comes back NULL */
/* Adds a duplicate of fd (m keeps it until sent and done); returns its index
 * or a negative errno (-E2BIG past WORKER_FDS_MAX). */
int worker_message_put_fd(WorkerMessage *m, int fd);
/* The same with fd itself, which is m's from now on, also on failure (it is
 * closed then; a negative fd fails m with that errno). */
int worker_message_put_fd_take(WorkerMessage *m, int fd);

/* Reading fields in the order they were put: 0, or -EBADMSG for a field of
 * another type or one that does not fit the payload, -ENOMEM. Strings,
 * blobs, lists and certificates are new allocations, the caller's. After
 * one failure every get fails with the same error. */
int worker_message_get_u32(WorkerMessage *m, uint32_t *ret);
int worker_message_get_i32(WorkerMessage *m, int32_t *ret);
int worker_message_get_u64(WorkerMessage *m, uint64_t *ret);
int worker_message_get_bool(WorkerMessage *m, bool *ret);
int worker_message_get_string(WorkerMessage *m, char **ret);
int worker_message_get_blob(WorkerMessage *m, uint8_t **ret, size_t *ret_size);
int worker_message_get_strv(WorkerMessage *m, char ***ret);
int worker_message_get_x509(WorkerMessage *m, X509 **ret);
int worker_message_get_x509_stack(WorkerMessage *m, STACK_OF(X509) **ret);
/* 0 when every field has been read, -EBADMSG when more follow: for a
 * receiver that wants to refuse a message longer than it expects. */
int worker_message_get_end(WorkerMessage *m);
/* The fd at index, now the caller's; -EBADF when there is none (or it was
 * taken already). */
int worker_message_take_fd(WorkerMessage *m, unsigned index);

/* Sends one whole message with its fds (which m keeps). Blocks. -EPIPE or
 * -ECONNRESET when the peer is gone, m->error when a put failed. */
int worker_message_send(int sock, WorkerMessage *m);
/* Receives one message into *ret (initialized here; worker_message_done()
 * it even on failure). Blocks. -ECONNRESET when the peer is gone before
 * the message starts (EOF), -EBADMSG for a frame that is not one (bad
 * magic, too long, EOF inside it, fds that do not match the header). The
 * fds arrive with O_CLOEXEC. */
int worker_message_receive(int sock, WorkerMessage *ret);

/* The same with a deadline (CLOCK_MONOTONIC, µs, as worker_now_usec()
 * tells; WORKER_NO_DEADLINE: none):
 * the socket is used with MSG_DONTWAIT and waited for with poll(); -ETIME
 * when the deadline passes. A half-sent or half-received message is lost
 * then: the connection is of no further use. */
#define WORKER_NO_DEADLINE UINT64_MAX
int worker_message_send_until(int sock, WorkerMessage *m, uint64_t deadline);
int worker_message_receive_until(int sock, WorkerMessage *ret, uint64_t deadline);

/* CLOCK_MONOTONIC in µs. */
uint64_t worker_now_usec(void);

/* ---- WORKER_REPLY ---- */

/* (Re)initializes m as a WORKER_REPLY carrying error (0 or a negative
 * errno), error_code (an SMIMED_ERR_*, or 0 for none; sent as an i32, by
 * the numbering of this build, which smimed and smimed-worker share) and
 * message (a sentence for a person, or NULL); whatever m held before is
 * released. */
void worker_reply_init(WorkerMessage *m, int error, SmimedError error_code, const char *message);
/* Reads that status from the start of reply (and leaves the cursor after
 * it for the request-specific fields). ret_error_code and ret_message may
 * be NULL; an error code that is not one of SmimedError's comes back as 0
 * (the worker is not trusted). -EBADMSG when reply is not a WORKER_REPLY. */
int worker_reply_read_status(WorkerMessage *reply, int *ret_error, SmimedError *ret_error_code, char **ret_message);
