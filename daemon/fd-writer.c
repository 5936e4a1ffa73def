/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "fd-writer.h"

#define WRITE_CHUNK 65536U

struct FdWriter {
        int source;
        int destination;
        bool socket;         /* written with MSG_DONTWAIT */
        unsigned char buf[WRITE_CHUNK];
        size_t buf_start, buf_end;
        bool source_done;
        sd_event_source *io;
        sd_event_source *timer;
        sd_event_source *defer;
        int result;
        FdWriterDone done;
        void *userdata;
};

FdWriter *fd_writer_free(FdWriter *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        sd_event_source_disable_unref(w->defer);
        closep(&w->source);
        closep(&w->destination);
        return mfree(w);
}

/* Moves data until the destination would block: 1 when all is written, 0 to
 * wait, < 0 on error. */
static int fd_writer_push(FdWriter *w) {
        for (;;) {
                ssize_t n;

                if (w->buf_start == w->buf_end) {
                        if (w->source_done)
                                return 1;
                        n = read(w->source, w->buf, sizeof(w->buf));
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (n == 0) {
                                w->source_done = true;
                                return 1;
                        }
                        w->buf_start = 0;
                        w->buf_end = (size_t) n;
                }

                n = fd_write_nonblocking(w->destination, w->socket, w->buf + w->buf_start, w->buf_end - w->buf_start);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                w->buf_start += (size_t) n;
        }
}

static void fd_writer_finish(FdWriter *w, int result) {
        w->io = sd_event_source_disable_unref(w->io);
        w->timer = sd_event_source_disable_unref(w->timer);
        w->defer = sd_event_source_disable_unref(w->defer);
        closep(&w->destination);
        w->destination = -1;
        w->done(w, result, w->userdata);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FdWriter *w = userdata;
        int k = fd_writer_push(w);

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

static int on_defer(sd_event_source *s, void *userdata) {
        FdWriter *w = userdata;

        fd_writer_finish(w, w->result);
        return 0;
}

int fd_writer_new(sd_event *event, int source, int destination, uint64_t timeout_usec, FdWriterDone done,
                  void *userdata, FdWriter **ret) {
        _cleanup_(fd_writer_freep) FdWriter *w = NULL;
        struct stat st;
        int k;

        w = calloc(1, sizeof(FdWriter));
        if (!w)
                return -ENOMEM;
        w->done = done;
        w->userdata = userdata;
        w->source = w->destination = -1;

        w->source = fcntl(source, F_DUPFD_CLOEXEC, 3);
        w->destination = w->source >= 0 ? fcntl(destination, F_DUPFD_CLOEXEC, 3) : -1;
        if (w->source < 0 || w->destination < 0)
                return -errno;
        if ((fcntl(destination, F_GETFL) & O_ACCMODE) == O_RDONLY)
                return -EBADF; /* not open for writing */
        if (lseek(w->source, 0, SEEK_SET) < 0)
                return -errno;
        if (fstat(w->destination, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;

        if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
                k = fd_writer_push(w);
                w->result = k < 0 ? k : 0;
                k = sd_event_add_defer(event, &w->defer, on_defer, w);
                if (k < 0)
                        return k;
        } else {
                /* A private non-blocking handle: the client's own stays as it is. */
                int private_fd = fd_open_private_nonblocking(destination, O_WRONLY, &w->socket);

                if (private_fd < 0)
                        return private_fd;
                close(w->destination);
                w->destination = private_fd;

                k = sd_event_add_io(event, &w->io, w->destination, EPOLLOUT, on_io, w);
                if (k == -EPERM) {
                        /* A device epoll cannot watch (/dev/null): it does not block either. */
                        k = fd_writer_push(w);
                        w->result = k < 0 ? k : 0;
                        k = sd_event_add_defer(event, &w->defer, on_defer, w);
                        if (k < 0)
                                return k;
                        *ret = TAKE_PTR(w);
                        return 0;
                }
                if (k < 0)
                        return k;
                k = sd_event_add_time_relative(event, &w->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_timeout, w);
                if (k < 0)
                        return k;
        }

        *ret = TAKE_PTR(w);
        return 0;
}
