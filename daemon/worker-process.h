/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "key-op.h"
#include "macro.h"
#include "worker-protocol.h"

/* smimed's side of a smimed-worker process: starting one, sending it a
 * request and serving its calls (a private-key operation, a spool file)
 * until its reply, and telling a person why it failed when it dies. Calls
 * block (poll() with a deadline): they run on the daemon's worker threads,
 * never on the event loop. One thread uses a WorkerProcess at a time. No
 * bus. */

typedef struct WorkerLimits {
        uint64_t memory_max;    /* the worker's address space (RLIMIT_AS), bytes; 0: none */
        unsigned cpu_seconds;   /* CPU time per request (RLIMIT_CPU: SIGXCPU past it); 0: none */
        uint64_t timeout_usec;  /* to answer a request, not counting smimed's callbacks; 0: none */
} WorkerLimits;

typedef struct WorkerProcess WorkerProcess;

/* Starts smimed-worker (posix_spawn(): nothing runs between fork and exec)
 * with its socket on fd 3, /dev/null as stdin and stdout, smimed's stderr,
 * no other fd and an empty environment. The binary is the one set with
 * worker_process_set_binary(), else smimed-worker beside smimed's own
 * executable, else the one in libexecdir. */
int worker_process_new(const WorkerLimits *limits, WorkerProcess **ret);
/* SIGKILL and reap. */
WorkerProcess *worker_process_free(WorkerProcess *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(WorkerProcess *, worker_process_free);

pid_t worker_process_pid(const WorkerProcess *w);
/* False once a call found it dead or killed it, or when it has exited. */
bool worker_process_alive(const WorkerProcess *w);

/* Which smimed-worker to start (a copy is kept; NULL: the default). For
 * tests, which run the one in the build directory. */
int worker_process_set_binary(const char *path);

typedef struct WorkerCallbacks {
        /* The worker asks for a private-key operation: check it fits the job,
         * perform it (key_op_perform() on the job's authorized token key).
         * 0 with *ret (free()d here), or a negative errno, which the worker
         * gets as the answer: a refusal is not a crash. NULL: all refused. */
        int (*key_op)(const KeyOpRequest *request, uint8_t **ret, size_t *ret_size, void *userdata);
        /* The worker asks for a new empty spool file of about size_hint
         * bytes: an fd that stays the callback's (it reads what the worker
         * wrote there when the reply says so; the worker gets a duplicate),
         * or a negative errno. NULL: all refused. */
        int (*spool)(uint64_t size_hint, void *userdata);
        /* The worker read an enveloped layer; call holds its answer
         * (WORKER_CALL_CHOOSE_KEY). 0 with the index of the recipient to
         * decrypt with at once and a size hint for its spool files (made with
         * spool()); -ENOKEY: not at once; -EPROTO: a call of the wrong shape
         * (the worker is stopped). NULL: never at once. */
        int (*choose_key)(WorkerMessage *call, uint32_t *ret_index, uint64_t *ret_size_hint, void *userdata);
        void *userdata;
} WorkerCallbacks;

/* Sends request (its fds go along and are closed here once sent, so that
 * the worker's copies are the last: their pages are freed by the worker,
 * after its reply, not by the caller waiting for it), serves the
 * worker's calls with cb until its WORKER_REPLY, which it returns in
 * *ret_reply (read it with worker_reply_read_status()).
 * A worker that dies (crash, seccomp kill, SIGXCPU, out of memory) fails
 * the call with -ECHILD, one that does not answer within timeout_usec
 * (it is killed then) with -ETIME, one that sends what smimed does not
 * expect (it is killed) with -EPROTO; *ret_message says so in words a person
 * can act on ("The worker process handling this message was killed by
 * signal SIGSEGV."). The WorkerProcess is dead afterwards
 * (worker_process_alive() is false) and the caller replaces it.
 * A request whose put failed is not sent: its error, the worker lives. */
int worker_process_call(WorkerProcess *w, WorkerMessage *request, const WorkerCallbacks *cb,
                        WorkerMessage *ret_reply, char **ret_message);
