/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "fd-writer.h"

#define WRITE_CHUNK 65536U
/* A file never blocks: one turn of the loop writes at most this many chunks
 * to it (1 MiB), so that a large result does not hold up other clients. */
#define FILE_TURN_CHUNKS 16U

struct FdWriter {
        int source;             /* the caller's */
        off_t offset;           /* in source: what is written up to here */
        FdIo destination;       /* the client's fd, as the client opened it */
        sd_event_source *io_source;
        sd_event_source *timer;
        sd_event_source *defer;
        FdWriterDone done;
        void *userdata;
};

FdWriter *fd_writer_free(FdWriter *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io_source);
        sd_event_source_disable_unref(w->timer);
        sd_event_source_disable_unref(w->defer);
        fd_io_close(&w->destination);
        return mfree(w);
}

/* Moves data until the destination would block, at most max_chunks writes:
 * 1 when all is written, 0 when more is to come, < 0 on error. */
static int fd_writer_push(FdWriter *w, unsigned max_chunks) {
        for (unsigned i = 0; i < max_chunks; i++) {
                ssize_t n = fd_io_write_from(&w->destination, w->source, &w->offset, WRITE_CHUNK);

                if (n == 0)
                        return 1;
                if (n == -EAGAIN)
                        return 0;
                if (n < 0)
                        return (int) n;
        }
        return 0;
}

static void fd_writer_finish(FdWriter *w, int result) {
        w->io_source = sd_event_source_disable_unref(w->io_source);
        w->timer = sd_event_source_disable_unref(w->timer);
        w->defer = sd_event_source_disable_unref(w->defer);
        fd_io_close(&w->destination);
        w->done(w, result, w->userdata);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FdWriter *w = userdata;
        int k = fd_writer_push(w, UINT_MAX);

        if (k == 0 && (revents & (EPOLLERR | EPOLLHUP)))
                k = -EPIPE;
        if (k != 0)
                fd_writer_finish(w, k < 0 ? k : 0);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fd_writer_finish(userdata, -ETIMEDOUT);
        return 0;
}

/* A file, a turn at a time. */
static int on_defer(sd_event_source *s, void *userdata) {
        FdWriter *w = userdata;
        int k = fd_writer_push(w, FILE_TURN_CHUNKS);

        if (k == 0)
                /* Again, after what became pending meanwhile (a source that
                 * stays on would keep its place before the bus). */
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        fd_writer_finish(w, k < 0 ? k : 0);
        return 0;
}

int fd_writer_new(sd_event *event, int source, int destination, uint64_t timeout_usec, FdWriterDone done,
                  void *userdata, FdWriter **ret) {
        _cleanup_(fd_writer_freep) FdWriter *w = NULL;
        int k;

        w = calloc(1, sizeof(FdWriter));
        if (!w) {
                (void) close(destination);
                return -ENOMEM;
        }
        w->done = done;
        w->userdata = userdata;
        w->destination = FD_IO_NULL;
        w->source = source;
        k = fd_io_take(&w->destination, destination, O_WRONLY);
        if (k < 0)
                return k;

        if (!fd_io_pollable(&w->destination)) {
                /* Files and /dev/null do not block: write from the loop, a turn at a time. */
                k = sd_event_add_defer(event, &w->defer, on_defer, w);
                if (k < 0)
                        return k;
        } else {
                k = sd_event_add_io(event, &w->io_source, w->destination.fd, EPOLLOUT, on_io, w);
                if (k < 0)
                        return k;
                k = sd_event_add_time_relative(event, &w->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_timeout, w);
                if (k < 0)
                        return k;
        }

        *ret = TAKE_PTR(w);
        return 0;
}
