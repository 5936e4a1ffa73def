/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fd-util.h"
#include "fuse-mounts.h"
#include "macro.h"

#define IO_CHUNK 65536U

/* /dev/null, /dev/zero and /dev/full: reads and writes that never wait.
 * Not every device epoll refuses is one (a printer port has no poll either). */
static bool is_null_device(dev_t rdev) {
        return major(rdev) == 1 && (minor(rdev) == 3 || minor(rdev) == 5 || minor(rdev) == 7);
}

static int fd_classify_sized(int fd, int access, FdKind *ret, uint64_t *ret_size) {
        struct statx stx;
        FdKind kind;
        int flags, r;

        flags = fcntl(fd, F_GETFL);
        /* AT_STATX_DONT_SYNC: what the kernel knows of the file, without
         * asking a FUSE or network file system's server for more (a FUSE
         * server may not answer at all). Local file systems always know. */
        if (flags < 0 || statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_SIZE, &stx) < 0)
                return -errno;
        /* F_GETFL of O_PATH says O_RDONLY, yet only a reopen could read it. */
        if (flags & O_PATH)
                return -EBADF;
        if ((flags & O_ACCMODE) != O_RDWR && (flags & O_ACCMODE) != access)
                return -EBADF;

        switch (stx.stx_mode & S_IFMT) {
        case S_IFREG:
                /* Its reads and writes would wait for whoever serves it. */
                r = fuse_mounts_contain(makedev(stx.stx_dev_major, stx.stx_dev_minor));
                if (r != 0)
                        return r < 0 ? r : -EREMOTE;
                kind = FD_KIND_FILE;
                break;
        case S_IFBLK:
                kind = FD_KIND_FILE;
                break;
        case S_IFSOCK:
                kind = FD_KIND_SOCKET;
                break;
        case S_IFIFO:
                kind = FD_KIND_PIPE;
                break;
        case S_IFDIR:
                return -EISDIR;
        case S_IFCHR:
                if (is_null_device(makedev(stx.stx_rdev_major, stx.stx_rdev_minor))) {
                        kind = FD_KIND_DEVICE;
                        break;
                }
                return -EOPNOTSUPP; /* a terminal reads as its user types, if ever */
        default:
                return -EOPNOTSUPP; /* anonymous inodes: an eventfd read waits for its counter */
        }
        if (ret)
                *ret = kind;
        if (ret_size)
                *ret_size = S_ISREG(stx.stx_mode) ? stx.stx_size : UINT64_MAX;
        return 0;
}

int fd_classify(int fd, int access, FdKind *ret) {
        return fd_classify_sized(fd, access, ret, NULL);
}

const char *fd_error_to_string(int error) {
        switch (error) {
        case -EBADF:
                return "smimed reads an input and writes an output as they were opened, and this one is not open for "
                       "that (or is an O_PATH descriptor)";
        case -EOPNOTSUPP:
                return "a terminal or device cannot be passed; use a file, pipe or socket";
        case -EISDIR:
                return "a directory cannot be passed; use a file, pipe or socket";
        case -EREMOTE:
                return "a file on a FUSE file system cannot be passed (its server could keep smimed waiting); use a "
                       "pipe, a memfd or a file on another file system";
        default:
                return strerror(-error);
        }
}

int fd_io_take(FdIo *io, int fd, int access) {
        int r;

        *io = FD_IO_NULL;
        if (fd < 0)
                return fd;
        io->fd = fd;
        r = fd_classify_sized(io->fd, access, &io->kind, &io->size);
        if (r < 0)
                fd_io_close(io);
        return r;
}

int fd_io_open(FdIo *io, int fd, int access) {
        int copy;

        /* The duplicate is what is used: classify that one. */
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return fd_io_take(io, copy < 0 ? -errno : copy, access);
}

void fd_io_close(FdIo *io) {
        closep(&io->fd);
        closep(&io->bounce[0]);
        closep(&io->bounce[1]);
        *io = FD_IO_NULL;
}

/* A FIFO: splice() with SPLICE_F_NONBLOCK does not wait for the client's
 * pipe, whatever its O_NONBLOCK; it moves the data into smimed's own
 * non-blocking pipe, read from there. That one is empty between calls, so
 * all that was moved fits into buf. */
static ssize_t pipe_read_spliced(FdIo *io, void *buf, size_t size) {
        size_t done = 0;
        ssize_t n;

        if (io->bounce[0] < 0 && pipe2(io->bounce, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        do
                n = splice(io->fd, NULL, io->bounce[1], NULL, size < IO_CHUNK ? size : IO_CHUNK, SPLICE_F_NONBLOCK);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return n < 0 ? -errno : 0;

        while (done < (size_t) n) {
                ssize_t k = read(io->bounce[0], (char *) buf + done, (size_t) n - done);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                done += (size_t) k;
        }
        return n;
}

/* Whether a failed RWF_NOWAIT means that the file does not take it (a FIFO,
 * an older kernel's pipe): splice() then. */
static bool nowait_unsupported(int error) {
        return error == EOPNOTSUPP || error == ENOSYS;
}

ssize_t fd_io_read(FdIo *io, void *buf, size_t size) {
        for (;;) {
                struct iovec iov = { buf, size };
                ssize_t n;

                switch (io->kind) {
                case FD_KIND_SOCKET:
                        n = recv(io->fd, buf, size, MSG_DONTWAIT);
                        break;
                case FD_KIND_PIPE:
                        if (io->splice)
                                return pipe_read_spliced(io, buf, size);
                        /* Unlike splice(), leaves the client's pipe able to do it too. */
                        n = preadv2(io->fd, &iov, 1, -1, RWF_NOWAIT);
                        if (n < 0 && nowait_unsupported(errno)) {
                                io->splice = true;
                                continue;
                        }
                        break;
                default:
                        n = read(io->fd, buf, size);
                }
                if (n >= 0)
                        return n;
                if (errno != EINTR)
                        return -errno;
        }
}

ssize_t fd_io_write_from(FdIo *io, int source, off_t *offset, size_t size) {
        unsigned char buf[IO_CHUNK];
        ssize_t n, k;

        if (size > sizeof(buf))
                size = sizeof(buf);
        for (;;) {
                struct iovec iov = { buf, 0 };

                if (io->kind == FD_KIND_PIPE && io->splice) {
                        /* From the file into the client's FIFO; not waiting on the FIFO. */
                        loff_t off = *offset;

                        n = splice(source, &off, io->fd, NULL, size, SPLICE_F_NONBLOCK);
                        if (n >= 0) {
                                *offset = off;
                                return n;
                        }
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }

                n = pread(source, buf, size, *offset);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : 0;

                iov.iov_len = (size_t) n;
                switch (io->kind) {
                case FD_KIND_SOCKET:
                        k = send(io->fd, buf, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL);
                        break;
                case FD_KIND_PIPE:
                        k = pwritev2(io->fd, &iov, 1, -1, RWF_NOWAIT);
                        if (k < 0 && nowait_unsupported(errno)) {
                                io->splice = true;
                                continue;
                        }
                        break;
                default:
                        k = write(io->fd, buf, (size_t) n);
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO; /* 0 means the end of source to the caller */
                *offset += k;
                return k;
        }
}

int fd_take_sealed(int fd, uint64_t *ret_size) {
        const int sealed = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
        int seals, flags, copy;
        struct stat st;

        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & sealed) != sealed)
                return -EMEDIUMTYPE;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || (flags & O_PATH) || ((flags & O_ACCMODE) != O_RDONLY && (flags & O_ACCMODE) != O_RDWR))
                return -EMEDIUMTYPE;
        if (lseek(fd, 0, SEEK_CUR) != 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return -EMEDIUMTYPE;
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return -errno;
        (void) lseek(fd, 0, SEEK_END);
        *ret_size = (uint64_t) st.st_size;
        return copy;
}

int fd_reopen_read_only(int fd) {
        char path[sizeof("/proc/self/fd/") + 12];
        int copy;

        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        copy = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        return copy < 0 ? -errno : copy;
}

uint64_t fd_size_hint(int fd) {
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return UINT64_MAX;
        return (uint64_t) st.st_size;
}

int fd_zero(int fd, size_t size) {
        static const char zeros[4096];
        struct iovec iov[FD_ZERO_MAX / sizeof(zeros)];
        size_t n = 0;

        if (size > FD_ZERO_MAX)
                return -EIO;
        for (size_t left = size; left > 0; n++) {
                iov[n] = (struct iovec){.iov_base = (void *) zeros,
                                        .iov_len = left < sizeof(zeros) ? left : sizeof(zeros)};
                left -= iov[n].iov_len;
        }
        return n == 0 || pwritev(fd, iov, (int) n, 0) == (ssize_t) size ? 0 : -EIO;
}

int fd_truncate_here(int fd) {
        off_t end = lseek(fd, 0, SEEK_CUR);

        if (end < 0 || ftruncate(fd, end) < 0)
                return -errno;
        return 0;
}

int fd_pread_all(int fd, void *p, size_t n, off_t offset) {
        char *q = p;

        while (n > 0) {
                ssize_t k = pread(fd, q, n, offset);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                q += k;
                n -= (size_t) k;
                offset += k;
        }
        return 0;
}

int fd_copy_all(int from, int to) {
        char buf[65536];
        ssize_t n;

        if (lseek(from, 0, SEEK_SET) < 0)
                return -errno;
        for (;;) {
                int r;

                n = read(from, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : 0;
                r = fd_write_all(to, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}
