/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "worker-process.h"
#include "worker-protocol.h"

/* The message work of a job, on a worker thread (worker-pool.h): each
 * thread drives a smimed-worker process of its own, started when it first
 * needs one and again after one died, and stopped when the thread ends.
 * Never on the event loop. */

/* The limits of the worker processes started from now on; a thread
 * replaces a worker started under other limits before its next request.
 * Returns whether they changed (then restart the spares). */
int worker_run_set_limits(const WorkerLimits *limits);

/* Starts n worker processes ahead, for the threads to take when they first
 * need one (so that smimed's fds do not change with the first calls), and
 * stops those not taken. From the loop. */
int worker_run_start_spares(unsigned n);
void worker_run_stop_spares(void);

/* Puts a new spool file for about size_hint bytes in dir into request (the
 * worker uses it instead of asking for one: a round trip less). */
int worker_run_put_spool(WorkerMessage *request, const char *dir, uint64_t size_hint);

/* Runs request on this thread's worker process (see worker_process_call()).
 * On success the reply's status is read: *ret_error is its error (0 or a
 * negative errno), *ret_error_code its SMIMED_ERR_* (0 when it gave none,
 * or one that is not ours), *ret_message its words; the reply's fields
 * follow. A worker that died or overran its limits gives -ECHILD or -ETIME
 * (the call fails, not the thread), with SMIMED_ERR_WORKER_FAILED and what
 * happened; input, when not negative, is the message whose digest is
 * logged with it. */
int worker_run(WorkerMessage *request, const WorkerCallbacks *cb, int input, WorkerMessage *ret_reply, int *ret_error,
               SmimedError *ret_error_code, char **ret_message);
