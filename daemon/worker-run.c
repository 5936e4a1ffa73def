/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "message.h"
#include "sha256-fd.h"
#include "smimed-error.h"
#include "spool.h"
#include "worker-run.h"

/* The limits of the workers started from now on, and their generation:
 * a thread whose worker was started under older limits replaces it. */
static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;
static WorkerLimits limits;
static uint64_t limits_generation;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static __thread WorkerProcess *thread_worker;
static __thread uint64_t thread_worker_generation;

/* Started ahead, for threads that have none yet; all of the current
 * generation (a change of limits starts them again). */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static WorkerProcess **spares;
static size_t n_spares;

static uint64_t current_limits(WorkerLimits *ret) {
        uint64_t generation;

        pthread_mutex_lock(&limits_lock);
        *ret = limits;
        generation = limits_generation;
        pthread_mutex_unlock(&limits_lock);
        return generation;
}

static bool limits_equal(const WorkerLimits *a, const WorkerLimits *b) {
        /* Field by field: the padding of a compound literal is undefined. */
        return a->memory_max == b->memory_max && a->cpu_seconds == b->cpu_seconds &&
               a->timeout_usec == b->timeout_usec;
}

int worker_run_set_limits(const WorkerLimits *l) {
        bool changed;

        pthread_mutex_lock(&limits_lock);
        changed = !limits_equal(&limits, l);
        if (changed) {
                limits = *l;
                limits_generation++;
        }
        pthread_mutex_unlock(&limits_lock);
        return changed;
}

/* A thread that ends takes its worker process with it. */
static void thread_ended(void *p) {
        worker_process_free(p);
}

static void key_create(void) {
        if (pthread_key_create(&key, thread_ended) != 0)
                abort();
}

static void set_thread_worker(WorkerProcess *w) {
        thread_worker = w;
        (void) pthread_setspecific(key, w);
}

int worker_run_start_spares(unsigned n) {
        WorkerProcess **more;
        WorkerLimits l;
        int r = 0;

        (void) current_limits(&l);
        pthread_mutex_lock(&spare_lock);
        more = reallocarray(spares, n_spares + n, sizeof(WorkerProcess *));
        if (!more)
                r = -ENOMEM;
        else
                spares = more;
        for (unsigned i = 0; r >= 0 && i < n; i++) {
                r = worker_process_new(&l, &spares[n_spares]);
                if (r >= 0)
                        n_spares++;
        }
        pthread_mutex_unlock(&spare_lock);
        return r;
}

void worker_run_stop_spares(void) {
        pthread_mutex_lock(&spare_lock);
        for (size_t i = 0; i < n_spares; i++)
                worker_process_free(spares[i]);
        spares = mfree(spares);
        n_spares = 0;
        pthread_mutex_unlock(&spare_lock);
}

static WorkerProcess *take_spare(void) {
        WorkerProcess *w = NULL;

        pthread_mutex_lock(&spare_lock);
        while (!w && n_spares > 0) {
                w = spares[--n_spares];
                if (!worker_process_alive(w))
                        w = worker_process_free(w);
        }
        pthread_mutex_unlock(&spare_lock);
        return w;
}

int worker_run_put_spool(WorkerMessage *request, const char *dir, uint64_t size_hint) {
        return worker_message_put_fd_take(request, spool_tmpfile_sized(dir, size_hint));
}

/* The spool files the worker asked for: it sends those it keeps back in
 * its reply (as new fds), so smimed's copies close after the call. */
typedef struct RunContext {
        const WorkerCallbacks *cb;
        int *spools;
        size_t n_spools;
} RunContext;

static void run_context_done(RunContext *c) {
        for (size_t i = 0; i < c->n_spools; i++)
                closep(&c->spools[i]);
        c->spools = mfree(c->spools);
        c->n_spools = 0;
}

static int run_spool(uint64_t size_hint, void *userdata) {
        RunContext *c = userdata;
        int *more, fd;

        if (!c->cb->spool)
                return -EPERM;
        more = reallocarray(c->spools, c->n_spools + 1, sizeof(int));
        if (!more)
                return -ENOMEM;
        c->spools = more;
        fd = c->cb->spool(size_hint, c->cb->userdata);
        if (fd >= 0)
                c->spools[c->n_spools++] = fd;
        return fd;
}

static int run_key_op(const KeyOpRequest *request, uint8_t **ret, size_t *ret_size, void *userdata) {
        RunContext *c = userdata;

        return c->cb->key_op ? c->cb->key_op(request, ret, ret_size, c->cb->userdata) : -EPERM;
}

static int run_choose_key(WorkerMessage *call, uint32_t *ret_index, uint64_t *ret_size_hint, void *userdata) {
        RunContext *c = userdata;

        return c->cb->choose_key ? c->cb->choose_key(call, ret_index, ret_size_hint, c->cb->userdata) : -ENOKEY;
}

int worker_run(WorkerMessage *request, const WorkerCallbacks *cb, int input, WorkerMessage *ret_reply, int *ret_error,
               SmimedError *ret_error_code, char **ret_message) {
        _cleanup_free_ char *message = NULL;
        _cleanup_(run_context_done) RunContext context = {.cb = cb};
        const WorkerCallbacks run_cb = {
                .key_op = run_key_op,
                .spool = run_spool,
                .choose_key = run_choose_key,
                .userdata = &context,
        };
        uint64_t generation;
        WorkerLimits l;
        int error = 0, r;

        *ret_error_code = 0;
        (void) pthread_once(&key_once, key_create);
        generation = current_limits(&l);
        if (thread_worker && (!worker_process_alive(thread_worker) || thread_worker_generation != generation))
                set_thread_worker(worker_process_free(thread_worker));
        if (!thread_worker) {
                /* A spare is of the current generation (or gone, and one is started here). */
                WorkerProcess *w = take_spare();

                r = w ? 0 : worker_process_new(&l, &w);
                set_thread_worker(w);
                thread_worker_generation = generation;
                if (r < 0) {
                        *ret_error_code = SMIMED_ERR_WORKER_FAILED;
                        return message_fail(ret_message, r, "Cannot start a worker process: %m");
                }
        }

        r = worker_process_call(thread_worker, request, &run_cb, ret_reply, &message);
        if (r < 0) {
                _cleanup_free_ char *sha256 = input >= 0 ? sha256_fd(input) : NULL;

                if (!worker_process_alive(thread_worker))
                        set_thread_worker(worker_process_free(thread_worker));
                log_warning("A worker process failed on a message (SHA-256 %s): %s", sha256 ? sha256 : "unknown",
                            message ? message : strerror(-r));
                *ret_error_code = SMIMED_ERR_WORKER_FAILED;
                if (message) {
                        *ret_message = TAKE_PTR(message);
                        return r;
                }
                return message_fail(ret_message, r, "The worker process handling the message failed: %m");
        }

        r = worker_reply_read_status(ret_reply, &error, ret_error_code, &message);
        if (r < 0) {
                *ret_error_code = SMIMED_ERR_WORKER_FAILED;
                return message_fail(ret_message, r, "The worker process's answer cannot be read.");
        }
        *ret_error = error;
        *ret_message = TAKE_PTR(message);
        return 0;
}
