/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "worker-ops.h"

/* The worker's request loop (smimed-worker's main work). No bus, no token. */

/* Serves requests on fd, the socket to smimed: receives one, dispatches it
 * by type to worker_ops[] (worker-ops.h) or the self-test ops
 * (worker-selftest.h), sends its WORKER_REPLY; an unknown type is answered
 * -EOPNOTSUPP. Before each request the process gets cpu_seconds of CPU time
 * (sandbox_job_cpu_limit(); 0: no limit). Returns 0 when smimed closes the
 * socket, a negative errno when it sends something that is not a message
 * or the socket fails. */
int worker_session_serve(int fd, unsigned cpu_seconds);

/* A session over fd (not closed with it) without the loop: for tests that
 * run a handler's code, or worker_session_remote_key(), in-process. */
int worker_session_new(int fd, WorkerSession **ret);
WorkerSession *worker_session_free(WorkerSession *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(WorkerSession *, worker_session_free);

/* The socket to smimed, for the self-tests (worker-selftest.c), which
 * write on it what a sane worker never would. */
int worker_session_socket(WorkerSession *s);
