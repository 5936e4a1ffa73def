/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "io-util.h"

/* A client's file descriptor is used as the client opened it. smimed never
 * reopens one (through /proc/self/fd, with smimed's rights, an O_PATH
 * descriptor would open a file the client may not), but for a sealed memfd
 * it can read (fd_take_sealed(), below), and never changes its
 * open file, which the client shares (O_NONBLOCK set there could be cleared
 * again by the client, blocking the loop). What can be read and written
 * that way without blocking the loop: */
typedef enum FdKind {
        FD_KIND_FILE,   /* regular file (not on FUSE), block device: read and written at once, they wait for no peer */
        FD_KIND_DEVICE, /* /dev/null, /dev/zero, /dev/full: the same (epoll cannot watch them) */
        FD_KIND_SOCKET, /* recv()/send() with MSG_DONTWAIT, when epoll says so */
        FD_KIND_PIPE,   /* pipe, FIFO: RWF_NOWAIT, else splice() with SPLICE_F_NONBLOCK, when epoll says so */
} FdKind;

/* What fd is, when it is open for access (O_RDONLY for an input, O_WRONLY
 * for an output; O_RDWR serves both). -EBADF: opened with O_PATH, or not
 * for access; -EISDIR; -EOPNOTSUPP: a terminal or another device (which may
 * block whatever smimed asks), or something else (an eventfd, an inotify
 * fd); -EREMOTE: a regular file on FUSE (fuse-mounts.h), whose server could
 * hold each stat, read or write as long as it likes. Nothing here asks a
 * file system's server anything (statx() with AT_STATX_DONT_SYNC). ret may
 * be NULL, to check an fd before it is needed. */
int fd_classify(int fd, int access, FdKind *ret);

/* The client's text for an error of fd_classify(): a sentence for the
 * refusals, strerror() for the rest. */
const char *fd_error_to_string(int error);

/* A client's fd, duplicated, with what reading and writing it needs. */
typedef struct FdIo {
        int fd;
        FdKind kind;
        uint64_t size; /* a regular file's size when opened, else UINT64_MAX */
        bool splice;   /* a pipe without RWF_NOWAIT (a FIFO): moved with splice() */
        int bounce[2]; /* for splice() into memory: a pipe of smimed's own */
} FdIo;

#define FD_IO_NULL ((FdIo){.fd = -1, .size = UINT64_MAX, .bounce = {-1, -1}})

/* fd_classify(), then a duplicate of fd in io. */
int fd_io_open(FdIo *io, int fd, int access);
/* The same with fd itself, which is io's from now on (closed on failure;
 * a negative fd is returned as the error). */
int fd_io_take(FdIo *io, int fd, int access);
void fd_io_close(FdIo *io);

/* Pipes and sockets are read and written when epoll says so; files and
 * devices at once. */
static inline bool fd_io_pollable(const FdIo *io) {
        return io->kind == FD_KIND_PIPE || io->kind == FD_KIND_SOCKET;
}

/* Reads what is there, without waiting: the bytes read, 0 at the end,
 * -EAGAIN when nothing is there yet, or a negative errno. */
ssize_t fd_io_read(FdIo *io, void *buf, size_t size);

/* Writes up to size bytes of the file source from *offset on (which it
 * advances), without waiting: the bytes written, 0 at the end of source,
 * -EAGAIN when nothing can be written yet, or a negative errno. */
ssize_t fd_io_write_from(FdIo *io, int source, off_t *offset, size_t size);

/* The one exception to "never reopened": a sealed memfd (F_SEAL_WRITE,
 * F_SEAL_GROW and F_SEAL_SHRINK, so its bytes can no longer change, as
 * libsmimed passes a message) that fd can read, at its start.
 * fd_take_sealed() returns a duplicate of it and its size, and moves fd's
 * offset to the end, as reading it would have; -EMEDIUMTYPE for anything
 * else, which is read as before. The duplicate still shares the client's
 * offset: fd_reopen_read_only() gives a new open file of the same bytes,
 * read-only, with an offset of smimed's own (a worker may read it while the
 * client's fd is used elsewhere), or a negative errno (no /proc). It grants
 * nothing fd does not. The two are apart because the second walks
 * /proc/self/fd, the dearest system call the loop made for a Sign: smimed
 * does it on the job's thread (job_own_input()), not on the loop. */
int fd_take_sealed(int fd, uint64_t *ret_size);
int fd_reopen_read_only(int fd);

/* The size of a regular file, UINT64_MAX for anything else. */
uint64_t fd_size_hint(int fd);

/* Overwrites the first size bytes of the file fd with zeros (at most
 * FD_ZERO_MAX), keeping its pages: cheaper than a new file. 0 or -EIO. */
#define FD_ZERO_MAX (64U * 1024U)
int fd_zero(int fd, size_t size);

/* Ends the file fd where its offset is: what was written last is all of
 * it, whatever a reused file held beyond. 0 or a negative errno. */
int fd_truncate_here(int fd);

/* Blocking, for files and the worker's own fds: copies all of from, from
 * its start, to the end of to (fd_write_all(), io-util.h, writes bytes).
 * 0 or a negative errno. */
int fd_copy_all(int from, int to);
/* Reads exactly n bytes at offset into p (the file offset is left alone);
 * -EIO when the file ends before. 0 or a negative errno. */
int fd_pread_all(int fd, void *p, size_t n, off_t offset);
