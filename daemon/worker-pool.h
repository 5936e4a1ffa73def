/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"

/* Threads for the work that may take long: private-key operations in the
 * token, and the CPU work of S/MIME (digests, ciphers, MIME). The event loop
 * hands work over and gets called back when it is done, so it never waits
 * on the token. work() runs on a worker and must not touch the bus, the
 * store or anything the loop owns; done() runs on the loop. */

typedef struct WorkerPool WorkerPool;

typedef int (*WorkFunction)(void *userdata);
typedef void (*WorkDone)(int result, void *userdata);

int worker_pool_new(sd_event *event, unsigned n_workers, WorkerPool **ret);
/* Waits for the work in progress, drops what is queued (its done() is not
 * called), stops the threads. */
WorkerPool *worker_pool_free(WorkerPool *pool);
DEFINE_TRIVIAL_CLEANUP_FUNC(WorkerPool *, worker_pool_free);

/* owner names whose work it is (a client, 0 for smimed's own): workers
 * take the queued work of the owners in turn, so that one owner's many
 * items do not make another's wait behind all of them. */
int worker_pool_submit(WorkerPool *pool, uint64_t owner, WorkFunction work, WorkDone done, void *userdata);
/* Queued work of owner that no worker has started is not done: its done()
 * runs from the loop with -ECANCELED. Returns how many. */
unsigned worker_pool_cancel_owner(WorkerPool *pool, uint64_t owner);

/* Blocks until nothing is queued or running (done() callbacks of finished
 * work are run first). For the rare moments the loop must change what the
 * workers use, such as reopening the token. */
void worker_pool_drain(WorkerPool *pool);

/* Takes fd and closes it: a small file on a thread that runs work now,
 * before that thread hands its work back, else here and now (none runs, a
 * file above 256 KiB, 64 waiting already, or pool is NULL). For spool files
 * the loop is done with: their last close frees their pages. Not for fds
 * whose close someone waits for (a pipe's end, a client's file). */
void worker_pool_close_later(WorkerPool *pool, int fd);

unsigned worker_pool_size(const WorkerPool *pool);
