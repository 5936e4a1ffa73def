/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "io-util.h"
#include "libsmimed-internal.h"
#include "macro.h"

int fd_check_input(int fd, smimed_error *error) {
        int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

        if (flags < 0)
                return error_set(error, -EBADF, NULL, "The input is not an open file descriptor.");
        /* smimed would refuse these; said here with the reason. */
        if (flags & O_PATH)
                return error_set(error, -EBADF, NULL,
                                 "The input is an O_PATH descriptor; smimed reads only one opened for reading.");
        if ((flags & O_ACCMODE) == O_WRONLY)
                return error_set(error, -EBADF, NULL, "The input is not open for reading.");
        if (isatty(fd))
                return error_set(error, -EOPNOTSUPP, NULL,
                                 "The input is a terminal; smimed reads a file, pipe or socket.");
        return 0;
}

int fd_check_output(int fd, smimed_error *error) {
        int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

        if (flags < 0)
                return error_set(error, -EBADF, NULL, "The output is not an open file descriptor.");
        if (flags & O_PATH)
                return error_set(error, -EBADF, NULL,
                                 "The output is an O_PATH descriptor; smimed writes only one opened for writing.");
        if ((flags & O_ACCMODE) == O_RDONLY)
                return error_set(error, -EBADF, NULL, "The output is not open for writing.");
        return 0;
}

/* A regular file on FUSE, which smimed refuses (its server could keep
 * smimed waiting, and every client with it); the caller may wait on its
 * own files. */
static bool file_on_fuse(int fd, const struct stat *st) {
        struct statfs sfs;

        return S_ISREG(st->st_mode) && fstatfs(fd, &sfs) >= 0 && sfs.f_type == FUSE_SUPER_MAGIC;
}

int input_relay_open(InputRelay *r, int input_fd, smimed_error *error) {
        _cleanup_(closep) int copy = -1;
        char buf[65536];
        struct stat st;

        *r = (InputRelay){.fd = input_fd, .copy = -1};
        if (fstat(input_fd, &st) < 0)
                return error_set(error, -errno, NULL, strerror(errno));
        if (!file_on_fuse(input_fd, &st))
                return 0;

        /* What is left of it, read here, in a sealed memfd. */
        copy = memfd_create("smimed-input", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (copy < 0)
                return error_set(error, -errno, NULL, strerror(errno));
        for (;;) {
                ssize_t n = read(input_fd, buf, sizeof(buf));
                int k;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(error, -errno, NULL, strerror(errno));
                if (n == 0)
                        break;
                k = fd_write_all(copy, buf, (size_t) n);
                if (k < 0)
                        return error_set(error, k, NULL, strerror(-k));
        }
        if (fcntl(copy, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0 ||
            lseek(copy, 0, SEEK_SET) < 0)
                return error_set(error, -errno, NULL, strerror(errno));
        r->fd = r->copy = TAKE_FD(copy);
        return 0;
}

void input_relay_done(InputRelay *r) {
        closep(&r->copy);
        *r = (InputRelay){.fd = -1, .copy = -1};
}

int output_relay_open(OutputRelay *r, int output_fd, smimed_error *error) {
        struct stat st;

        *r = (OutputRelay) { .fd = output_fd, .output = -1 };
        if (fstat(output_fd, &st) < 0)
                return error_set(error, -errno, NULL, strerror(errno));
        if (!S_ISCHR(st.st_mode) && !file_on_fuse(output_fd, &st))
                return 0; /* a file, pipe or socket: smimed writes it itself */

        /* A terminal or device: smimed takes none (it may block whatever
         * smimed asks); nor a file on FUSE. */
        r->fd = memfd_create("smimed-output", MFD_CLOEXEC);
        if (r->fd < 0) {
                r->fd = output_fd;
                return error_set(error, -errno, NULL, strerror(errno));
        }
        r->output = output_fd;
        return 0;
}

/* Waits until fd takes data again, for an output the caller made non-blocking. */
static int wait_writable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };

        for (;;) {
                int n = poll(&p, 1, -1);

                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return -errno;
        }
}

int output_relay_finish(OutputRelay *r, smimed_error *error) {
        char buf[65536];
        off_t offset = 0;

        if (r->output < 0)
                return 0;
        for (;;) {
                ssize_t n = pread(r->fd, buf, sizeof(buf), offset);
                int k;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(error, -errno, NULL, strerror(errno));
                if (n == 0)
                        return 0;
                for (char *p = buf; n > 0;) {
                        ssize_t w = write(r->output, p, (size_t) n);

                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0 && errno == EAGAIN) {
                                k = wait_writable(r->output);
                                if (k < 0)
                                        return error_set(error, k, NULL, strerror(-k));
                                continue;
                        }
                        if (w < 0)
                                return error_set(error, -errno, NULL, strerror(errno));
                        p += w;
                        n -= w;
                        offset += w;
                }
        }
}

void output_relay_done(OutputRelay *r) {
        if (r->output >= 0)
                closep(&r->fd);
        *r = (OutputRelay) { .fd = -1, .output = -1 };
}
