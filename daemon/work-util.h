/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "worker-ops.h"
#include "worker-protocol.h"

/* For smimed-worker's handlers (worker-ops.h): an outcome for the person
 * in the reply. Each returns 0, what the handler then returns. */

/* error (a negative errno), error_code (an SMIMED_ERR_*, or 0 for one
 * derived from error) and message (NULL: the errno's words). */
int work_fail(WorkerMessage *reply, int error, SmimedError error_code, const char *message);
/* The same without an error code, the message formatted ("%m": error). */
int work_fail_errno(WorkerMessage *reply, int error, const char *format, ...) _printf_(3, 4);
int work_fail_message(WorkerMessage *reply, int error, SmimedError error_code, const char *format, ...) _printf_(4, 5);

/* The spool file smimed sent with the request as its fd index, else a new
 * one asked of smimed (a round trip) for about size_hint bytes. */
int work_spool(WorkerSession *s, WorkerMessage *request, unsigned index, uint64_t size_hint);

/* The same for a scratch file (worker_session_scratch()): the request's
 * fd index (smimed sends them for a large message), else a kept or new
 * one. Give it back with worker_session_scratch_done(). */
int work_scratch(WorkerSession *s, WorkerMessage *request, unsigned index, uint64_t size_hint);

/* The end of a handler that put its fields: 0, or the error a put ran into. */
int work_reply_done(WorkerMessage *reply);
