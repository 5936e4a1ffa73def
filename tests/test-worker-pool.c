/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the worker pool: owners take turns, an owner's queued work
 * can be cancelled, and files left to it are closed before the loop hears
 * of the work running then. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker-pool.h"

typedef struct Log {
        pthread_mutex_t lock;
        char ran[32];
        size_t n_ran;
        char done[32];
        int results[32];
        size_t n_done;
        int gate[2];          /* the first item waits until it is written to */
} Log;

typedef struct Item {
        Log *log;
        char name;
} Item;

static Item items[16];

static int work(void *userdata) {
        Item *i = userdata;
        char c;

        if (i->name == '0')
                assert_int_equal(read(i->log->gate[0], &c, 1), 1);
        pthread_mutex_lock(&i->log->lock);
        i->log->ran[i->log->n_ran++] = i->name;
        pthread_mutex_unlock(&i->log->lock);
        return 0;
}

static void done(int result, void *userdata) {
        Item *i = userdata;

        i->log->results[i->log->n_done] = result;
        i->log->done[i->log->n_done++] = i->name;
}

static void submit(WorkerPool *pool, Log *log, uint64_t owner, char name) {
        static size_t n = 0;
        Item *i = &items[n++];

        *i = (Item) { log, name };
        assert_int_equal(worker_pool_submit(pool, owner, work, done, i), 0);
}

static void test_turns_and_cancel(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(worker_pool_freep) WorkerPool *pool = NULL;
        Log log = { .lock = PTHREAD_MUTEX_INITIALIZER };

        (void) state;
        assert_int_equal(pipe(log.gate), 0);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(worker_pool_new(e, 1, &pool), 0);

        submit(pool, &log, 0, '0');  /* holds the one worker until the rest is queued */
        submit(pool, &log, 1, 'a');
        submit(pool, &log, 1, 'b');
        submit(pool, &log, 1, 'c');
        submit(pool, &log, 2, 'X');
        submit(pool, &log, 3, 'p');
        submit(pool, &log, 3, 'q');
        assert_int_equal(worker_pool_cancel_owner(pool, 3), 2U);
        assert_int_equal(worker_pool_cancel_owner(pool, 4), 0U);
        assert_int_equal(write(log.gate[1], "go", 1), 1);

        while (log.n_done < 7)
                assert_true(sd_event_run(e, UINT64_MAX) >= 0);

        /* The owner with many items does not make the other wait for all of them. */
        assert_int_equal(log.n_ran, 5U);
        assert_memory_equal(log.ran, "0aXbc", 5);
        /* Cancelled work is not done; its done() still comes, with -ECANCELED. */
        for (size_t i = 0; i < log.n_done; i++)
                assert_int_equal(log.results[i], (log.done[i] == 'p' || log.done[i] == 'q') ? -ECANCELED : 0);
        close(log.gate[0]);
        close(log.gate[1]);
}

/* Whether the reading end of a pipe sees its writing end closed. */
static bool pipe_hung_up(int read_end) {
        struct pollfd p = {.fd = read_end, .events = POLLIN};

        assert_true(poll(&p, 1, 0) >= 0);
        return p.revents & POLLHUP;
}

/* Work that says it started, then waits to be let go. */
typedef struct Holder {
        int started[2];
        int go[2];
        int watched; /* a pipe's reading end, looked at in done() */
        bool hung_up_in_done;
        unsigned n_done;
} Holder;

static int hold(void *userdata) {
        Holder *h = userdata;
        char c;

        assert_int_equal(write(h->started[1], "s", 1), 1);
        assert_int_equal(read(h->go[0], &c, 1), 1);
        return 0;
}

static void hold_done(int result, void *userdata) {
        Holder *h = userdata;

        assert_int_equal(result, 0);
        h->hung_up_in_done = pipe_hung_up(h->watched);
        h->n_done++;
}

static void test_close_later(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(worker_pool_freep) WorkerPool *pool = NULL;
        Holder h = {};
        int p[2], big;
        char c;

        (void) state;
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(worker_pool_new(e, 1, &pool), 0);

        /* Nothing runs: closed at once. */
        assert_int_equal(pipe(p), 0);
        worker_pool_close_later(pool, p[1]);
        assert_true(pipe_hung_up(p[0]));
        close(p[0]);

        /* Work runs. */
        assert_int_equal(pipe(h.started), 0);
        assert_int_equal(pipe(h.go), 0);
        assert_int_equal(worker_pool_submit(pool, 1, hold, hold_done, &h), 0);
        assert_int_equal(read(h.started[0], &c, 1), 1);

        /* A file above 256 KiB is closed at once even so. */
        big = memfd_create("test-big", MFD_CLOEXEC);
        assert_true(big >= 0);
        assert_int_equal(ftruncate(big, 300 * 1024), 0);
        worker_pool_close_later(pool, big);
        assert_int_equal(fcntl(big, F_GETFD), -1);
        assert_int_equal(errno, EBADF);

        /* A small one waits for the running thread, which closes it before
         * the loop hears that its work is done. */
        assert_int_equal(pipe(p), 0);
        h.watched = p[0];
        worker_pool_close_later(pool, p[1]);
        assert_false(pipe_hung_up(p[0]));
        assert_int_equal(write(h.go[1], "g", 1), 1);
        while (h.n_done < 1)
                assert_true(sd_event_run(e, UINT64_MAX) >= 0);
        assert_true(h.hung_up_in_done);

        close(p[0]);
        for (size_t i = 0; i < 2; i++) {
                close(h.started[i]);
                close(h.go[i]);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_turns_and_cancel),
                cmocka_unit_test(test_close_later),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
