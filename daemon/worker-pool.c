/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "worker-pool.h"

/* What may wait to be closed: at most 64 files of at most 256 KiB, so that
 * what the loop is done with holds at most 16 MiB for longer (the callers'
 * charges for it are returned at once). A larger file's close is a small
 * part of its message's cost. */
#define WORKER_POOL_CLOSE_LATER_MAX 64U
#define WORKER_POOL_CLOSE_LATER_SIZE_MAX (256U * 1024U)

typedef struct WorkItem WorkItem;

struct WorkItem {
        uint64_t owner;
        WorkFunction work;
        WorkDone done;
        void *userdata;
        int result;
        WorkItem *next;
};

/* The work of one owner waiting for a worker, in order. */
typedef struct OwnerQueue OwnerQueue;

struct OwnerQueue {
        uint64_t owner;
        WorkItem *head, *tail;
        OwnerQueue *next;
};

struct WorkerPool {
        pthread_mutex_t lock;
        pthread_cond_t wake;          /* work queued, or stopping */
        pthread_cond_t idle;          /* a worker finished something */
        OwnerQueue *queue, *queue_tail; /* owners with work waiting, whose turn is next first */
        unsigned n_queued;
        WorkItem *finished;           /* waiting for the loop */
        unsigned running;
        bool stopping;

        /* Spool files the loop is done with, for the next thread that
         * finishes work to close: the last close of a spool file frees its
         * pages, about a tenth of the loop's time for a small Sign. */
        int closing[WORKER_POOL_CLOSE_LATER_MAX];
        unsigned n_closing;

        pthread_t *threads;
        unsigned n_threads;

        int eventfd;
        sd_event_source *source;
};

/* The next item, taking turns between owners; under the lock. */
static WorkItem *queue_pop(WorkerPool *pool) {
        OwnerQueue *q = pool->queue;
        WorkItem *item;

        if (!q)
                return NULL;
        item = q->head;
        q->head = item->next;
        item->next = NULL;
        pool->queue = q->next;
        if (!pool->queue)
                pool->queue_tail = NULL;
        q->next = NULL;
        if (q->head) {
                /* More of this owner's: to the back of the line. */
                if (pool->queue_tail)
                        pool->queue_tail->next = q;
                else
                        pool->queue = q;
                pool->queue_tail = q;
        } else
                free(q);
        pool->n_queued--;
        return item;
}

/* Under the lock: moves the fds waiting to be closed to fds. */
static unsigned take_closing(WorkerPool *pool, int fds[static WORKER_POOL_CLOSE_LATER_MAX]) {
        unsigned n = pool->n_closing;

        memcpy(fds, pool->closing, n * sizeof(int));
        pool->n_closing = 0;
        return n;
}

static void close_all(int *fds, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                closep(&fds[i]);
}

static void *worker_main(void *userdata) {
        WorkerPool *pool = userdata;

        pthread_mutex_lock(&pool->lock);
        for (;;) {
                int closing[WORKER_POOL_CLOSE_LATER_MAX];
                unsigned n_closing;
                WorkItem *item;
                uint64_t one = 1;
                bool wake_loop;

                while (!pool->queue && !pool->stopping)
                        pthread_cond_wait(&pool->wake, &pool->lock);
                if (pool->stopping)
                        break;

                item = queue_pop(pool);
                pool->running++;
                pthread_mutex_unlock(&pool->lock);

                item->result = item->work(item->userdata);

                pthread_mutex_lock(&pool->lock);
                /* The files left to running threads, before this one's work
                 * counts as done and the loop can answer for it: once the
                 * loop answers the last call, nothing of the earlier calls
                 * is open. worker_pool_close_later() leaves a file only
                 * while a thread runs, and the list is empty when running
                 * is counted down. */
                while ((n_closing = take_closing(pool, closing)) > 0) {
                        pthread_mutex_unlock(&pool->lock);
                        close_all(closing, n_closing);
                        pthread_mutex_lock(&pool->lock);
                }
                pool->running--;
                wake_loop = !pool->finished; /* else the loop is woken already and takes this one too */
                item->next = pool->finished;
                pool->finished = item;
                pthread_cond_broadcast(&pool->idle);
                if (wake_loop) {
                        /* Not under the lock: the loop takes it first thing. */
                        pthread_mutex_unlock(&pool->lock);
                        if (write(pool->eventfd, &one, sizeof(one)) < 0)
                                log_error_errno(errno, "Failed to wake up the event loop: %m");
                        pthread_mutex_lock(&pool->lock);
                }
        }
        pthread_mutex_unlock(&pool->lock);
        return NULL;
}

/* On the loop: the done() of everything finished, in no particular order. */
static void worker_pool_dispatch(WorkerPool *pool) {
        WorkItem *done;

        pthread_mutex_lock(&pool->lock);
        done = pool->finished;
        pool->finished = NULL;
        pthread_mutex_unlock(&pool->lock);

        while (done) {
                WorkItem *item = done;

                done = item->next;
                item->done(item->result, item->userdata);
                free(item);
        }
}

static int on_eventfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t n;

        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                log_warning_errno(errno, "Failed to read the worker eventfd: %m");
        worker_pool_dispatch(userdata);
        return 0;
}

int worker_pool_new(sd_event *event, unsigned n_workers, WorkerPool **ret) {
        _cleanup_(worker_pool_freep) WorkerPool *pool = NULL;
        int r;

        pool = calloc(1, sizeof(WorkerPool));
        if (!pool)
                return -ENOMEM;
        pool->eventfd = -1;
        pthread_mutex_init(&pool->lock, NULL);
        pthread_cond_init(&pool->wake, NULL);
        pthread_cond_init(&pool->idle, NULL);

        pool->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (pool->eventfd < 0)
                return -errno;
        r = sd_event_add_io(event, &pool->source, pool->eventfd, EPOLLIN, on_eventfd, pool);
        if (r < 0)
                return r;

        pool->threads = calloc(n_workers ? n_workers : 1, sizeof(pthread_t));
        if (!pool->threads)
                return -ENOMEM;
        for (unsigned i = 0; i < n_workers; i++) {
                r = -pthread_create(&pool->threads[i], NULL, worker_main, pool);
                if (r < 0)
                        return log_error_errno(r, "Failed to start worker %u: %m", i);
                pool->n_threads++;
        }

        *ret = TAKE_PTR(pool);
        return 0;
}

WorkerPool *worker_pool_free(WorkerPool *pool) {
        if (!pool)
                return NULL;

        pthread_mutex_lock(&pool->lock);
        pool->stopping = true;
        for (WorkItem *item; (item = queue_pop(pool));)
                free(item);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);

        for (unsigned i = 0; i < pool->n_threads; i++)
                pthread_join(pool->threads[i], NULL);
        free(pool->threads);

        while (pool->finished) {
                WorkItem *item = pool->finished;

                pool->finished = item->next;
                free(item);
        }
        close_all(pool->closing, pool->n_closing);
        sd_event_source_disable_unref(pool->source);
        closep(&pool->eventfd);
        pthread_cond_destroy(&pool->wake);
        pthread_cond_destroy(&pool->idle);
        pthread_mutex_destroy(&pool->lock);
        return mfree(pool);
}

int worker_pool_submit(WorkerPool *pool, uint64_t owner, WorkFunction work, WorkDone done, void *userdata) {
        WorkItem *item = calloc(1, sizeof(WorkItem));
        OwnerQueue *q;

        if (!item)
                return -ENOMEM;
        item->owner = owner;
        item->work = work;
        item->done = done;
        item->userdata = userdata;

        pthread_mutex_lock(&pool->lock);
        for (q = pool->queue; q; q = q->next)
                if (q->owner == owner)
                        break;
        if (!q) {
                q = calloc(1, sizeof(OwnerQueue));
                if (!q) {
                        pthread_mutex_unlock(&pool->lock);
                        free(item);
                        return -ENOMEM;
                }
                q->owner = owner;
                if (pool->queue_tail)
                        pool->queue_tail->next = q;
                else
                        pool->queue = q;
                pool->queue_tail = q;
        }
        if (q->tail)
                q->tail->next = item;
        else
                q->head = item;
        q->tail = item;
        pool->n_queued++;
        pthread_mutex_unlock(&pool->lock);
        /* After the unlock: a worker woken under it would find the lock
         * taken, sleep on it and be woken a second time. */
        pthread_cond_signal(&pool->wake);
        return 0;
}

unsigned worker_pool_cancel_owner(WorkerPool *pool, uint64_t owner) {
        OwnerQueue *q = NULL, *prev = NULL;
        unsigned n = 0;
        uint64_t one = 1;

        pthread_mutex_lock(&pool->lock);
        for (q = pool->queue; q; prev = q, q = q->next)
                if (q->owner == owner)
                        break;
        if (q) {
                if (prev)
                        prev->next = q->next;
                else
                        pool->queue = q->next;
                if (pool->queue_tail == q)
                        pool->queue_tail = prev;
                while (q->head) {
                        WorkItem *item = q->head;

                        q->head = item->next;
                        item->result = -ECANCELED;
                        item->next = pool->finished;
                        pool->finished = item;
                        pool->n_queued--;
                        n++;
                }
                free(q);
                if (write(pool->eventfd, &one, sizeof(one)) < 0)
                        log_error_errno(errno, "Failed to wake up the event loop: %m");
        }
        pthread_mutex_unlock(&pool->lock);
        return n;
}

void worker_pool_drain(WorkerPool *pool) {
        bool busy;

        /* done() may queue more work: repeat until nothing is left. */
        do {
                pthread_mutex_lock(&pool->lock);
                while (pool->n_queued > 0 || pool->running > 0)
                        pthread_cond_wait(&pool->idle, &pool->lock);
                pthread_mutex_unlock(&pool->lock);
                worker_pool_dispatch(pool);

                pthread_mutex_lock(&pool->lock);
                busy = pool->n_queued > 0 || pool->running > 0;
                pthread_mutex_unlock(&pool->lock);
        } while (busy);
}

void worker_pool_close_later(WorkerPool *pool, int fd) {
        struct stat st;

        if (fd < 0)
                return;
        if (pool && fstat(fd, &st) >= 0 && st.st_size <= WORKER_POOL_CLOSE_LATER_SIZE_MAX) {
                bool later;

                pthread_mutex_lock(&pool->lock);
                later = pool->running > 0 && pool->n_closing < WORKER_POOL_CLOSE_LATER_MAX;
                if (later)
                        pool->closing[pool->n_closing++] = fd;
                pthread_mutex_unlock(&pool->lock);
                if (later)
                        return;
        }
        closep(&fd);
}

unsigned worker_pool_size(const WorkerPool *pool) {
        return pool->n_threads;
}
