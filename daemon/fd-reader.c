/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fd-reader.h"
#include "fd-util.h"

#define READ_CHUNK 65536U
/* A file never blocks: one turn of the loop reads at most this many chunks
 * of it (1 MiB), so that a large message does not hold up other clients. */
#define FILE_TURN_CHUNKS 16U

struct FdReader {
        FdIo io;             /* the client's fd, as the client opened it */
        int sink;            /* >= 0: data goes to this file (the caller's), not to memory */
        unsigned char *data;
        size_t size;
        size_t allocated;
        size_t max_size;
        sd_event_source *io_source;
        sd_event_source *timer;
        sd_event_source *defer;
        int result;
        bool whole; /* fd_reader_new_whole(): nothing to read */
        FdReaderCharge charge;
        FdReaderDone done;
        void *userdata;
};

FdReader *fd_reader_free(FdReader *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->io_source);
        sd_event_source_disable_unref(r->timer);
        sd_event_source_disable_unref(r->defer);
        fd_io_close(&r->io);
        if (r->data) {
                explicit_bzero(r->data, r->allocated);
                free(r->data);
        }
        return mfree(r);
}

const void *fd_reader_data(const FdReader *r, size_t *ret_size) {
        *ret_size = r->size;
        return r->data ? (const void *) r->data : (const void *) "";
}

/* The same as fd_reader_pull(), into the sink file through a fixed buffer. */
static int fd_reader_pull_to_sink(FdReader *r, unsigned max_chunks) {
        unsigned char buf[READ_CHUNK];

        for (unsigned i = 0; i < max_chunks; i++) {
                ssize_t n = fd_io_read(&r->io, buf, sizeof(buf));
                int k;

                if (n == -EAGAIN)
                        return 0;
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return 1;
                r->size += (size_t) n;
                if (r->size > r->max_size)
                        return -EFBIG;
                if (r->charge) {
                        k = r->charge((size_t) n, r->userdata);
                        if (k < 0)
                                return k;
                }
                k = fd_write_all(r->sink, buf, (size_t) n);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Reads what is there now, at most max_chunks reads: 1 at EOF, 0 when more
 * is to come, < 0 on error. */
static int fd_reader_pull(FdReader *r, unsigned max_chunks) {
        if (r->sink >= 0)
                return fd_reader_pull_to_sink(r, max_chunks);

        for (unsigned i = 0; i < max_chunks; i++) {
                ssize_t n;

                if (r->allocated - r->size < READ_CHUNK) {
                        size_t want = r->allocated + READ_CHUNK * 4;
                        unsigned char *d;

                        if (r->size >= r->max_size + 1)
                                return -EFBIG;
                        d = malloc(want);
                        if (!d)
                                return -ENOMEM;
                        if (r->data) {
                                memcpy(d, r->data, r->size);
                                explicit_bzero(r->data, r->allocated);
                                free(r->data);
                        }
                        r->data = d;
                        r->allocated = want;
                }

                n = fd_io_read(&r->io, r->data + r->size, r->allocated - r->size);
                if (n == -EAGAIN)
                        return 0;
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return 1;
                r->size += (size_t) n;
                if (r->size > r->max_size)
                        return -EFBIG;
        }
        return 0;
}

static void fd_reader_finish(FdReader *r, int result) {
        r->io_source = sd_event_source_disable_unref(r->io_source);
        r->timer = sd_event_source_disable_unref(r->timer);
        r->defer = sd_event_source_disable_unref(r->defer);
        fd_io_close(&r->io);
        r->done(r, result, r->userdata);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FdReader *r = userdata;
        int k = fd_reader_pull(r, UINT_MAX);

        if (k != 0)
                fd_reader_finish(r, k < 0 ? k : 0);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fd_reader_finish(userdata, -ETIMEDOUT);
        return 0;
}

/* A file, a turn at a time. */
static int on_defer(sd_event_source *s, void *userdata) {
        FdReader *r = userdata;
        int k = r->result;

        if (k == 0 && !r->whole) {
                k = fd_reader_pull(r, FILE_TURN_CHUNKS);
                if (k == 0)
                        /* Again, after what became pending meanwhile (a source
                         * that stays on would keep its place before the bus). */
                        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        fd_reader_finish(r, k < 0 ? k : 0);
        return 0;
}

int fd_reader_new_to_file(sd_event *event, int fd, int sink, size_t max_size, uint64_t timeout_usec,
                          FdReaderCharge charge, FdReaderDone done, void *userdata, FdReader **ret) {
        _cleanup_(fd_reader_freep) FdReader *r = NULL;
        int k;

        r = calloc(1, sizeof(FdReader));
        if (!r)
                return -ENOMEM;
        r->io = FD_IO_NULL;
        r->sink = -1;
        r->max_size = max_size;
        r->charge = charge;
        r->done = done;
        r->userdata = userdata;

        k = fd_io_open(&r->io, fd, O_RDONLY);
        if (k < 0)
                return k;
        r->sink = sink;

        if (!fd_io_pollable(&r->io)) {
                /* Files and /dev/null do not block: read from the loop, a turn at a time. */
                if (r->io.size != UINT64_MAX && r->io.size > max_size)
                        r->result = -EFBIG;
                k = sd_event_add_defer(event, &r->defer, on_defer, r);
                if (k < 0)
                        return k;
        } else {
                k = sd_event_add_io(event, &r->io_source, r->io.fd, EPOLLIN, on_io, r);
                if (k < 0)
                        return k;
                k = sd_event_add_time_relative(event, &r->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_timeout, r);
                if (k < 0)
                        return k;
        }

        *ret = TAKE_PTR(r);
        return 0;
}

int fd_reader_new_whole(sd_event *event, uint64_t size, size_t max_size, FdReaderCharge charge, FdReaderDone done,
                        void *userdata, FdReader **ret) {
        _cleanup_(fd_reader_freep) FdReader *r = NULL;
        int k;

        r = calloc(1, sizeof(FdReader));
        if (!r)
                return -ENOMEM;
        r->io = FD_IO_NULL;
        r->sink = -1;
        r->whole = true;
        r->done = done;
        r->userdata = userdata;
        if (size > max_size)
                r->result = -EFBIG;
        else {
                r->size = (size_t) size;
                r->result = charge ? charge(r->size, userdata) : 0;
        }
        k = sd_event_add_defer(event, &r->defer, on_defer, r);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}

int fd_reader_new(sd_event *event, int fd, size_t max_size, uint64_t timeout_usec, FdReaderDone done,
                  void *userdata, FdReader **ret) {
        return fd_reader_new_to_file(event, fd, -1, max_size, timeout_usec, NULL, done, userdata, ret);
}

size_t fd_reader_size(const FdReader *r) {
        return r->size;
}
