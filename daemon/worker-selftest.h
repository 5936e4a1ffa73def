/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "worker-ops.h"

/* TEST ONLY. Requests that exercise the worker infrastructure from
 * tests/test-worker-process.c: a key operation and a spool file served by
 * smimed's side, and a worker that misbehaves (hangs, spins, crashes, calls
 * execve()) so that its death or timeout can be seen. smimed never sends
 * them; a worker that gets one only harms itself. */

/* request: x509 certificate, string digest name, i32 padding (RSA), blob
 * digest → reply: blob signature, made with worker_session_remote_key() of
 * the certificate (one WORKER_CALL_KEY_OP). */
#define WORKER_SELFTEST_SIGN 900U

/* request: u64 size hint, string text → reply: u64 bytes written; the text
 * is written to a spool file asked of smimed (one WORKER_CALL_SPOOL). */
#define WORKER_SELFTEST_SPOOL 901U

/* request: u32 one of the below (and for SELFTEST_HANG an fd, for
 * SELFTEST_ALLOCATE a u64 size) → reply: nothing, if it comes back. */
#define WORKER_SELFTEST_MISBEHAVE 902U

typedef enum SelftestMisbehaviour {
        SELFTEST_HANG,          /* reads its fd, which never gets data: smimed's timeout */
        SELFTEST_SPIN,          /* burns CPU: RLIMIT_CPU, SIGXCPU */
        SELFTEST_EXECVE,        /* execve("/bin/true"): the seccomp filter kills it, SIGSYS */
        SELFTEST_CRASH,         /* raise(SIGSEGV) */
        SELFTEST_ALLOCATE,      /* malloc() of the size: -ENOMEM past RLIMIT_AS */
        SELFTEST_GARBAGE,       /* writes bytes that are not a frame on its socket */
} SelftestMisbehaviour;

extern const WorkerOp worker_selftest_ops[];
extern const size_t worker_selftest_ops_count;
