/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"

int fd_open_private_nonblocking(int fd, int access, bool *ret_socket) {
        char path[64];
        struct stat st;
        int flags, nfd;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fstat(fd, &st) < 0)
                return -errno;
        if ((flags & O_ACCMODE) != O_RDWR && (flags & O_ACCMODE) != access)
                return -EBADF;

        if (S_ISSOCK(st.st_mode)) {
                nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (nfd < 0)
                        return -errno;
                *ret_socket = true;
                return nfd;
        }

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        nfd = open(path, access | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (nfd < 0)
                return -errno;
        *ret_socket = false;
        return nfd;
}

ssize_t fd_read_nonblocking(int fd, bool socket, void *buf, size_t size) {
        return socket ? recv(fd, buf, size, MSG_DONTWAIT) : read(fd, buf, size);
}

ssize_t fd_write_nonblocking(int fd, bool socket, const void *buf, size_t size) {
        return socket ? send(fd, buf, size, MSG_DONTWAIT | MSG_NOSIGNAL) : write(fd, buf, size);
}
