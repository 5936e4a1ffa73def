/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A client's pipe or terminal must not change under it: setting O_NONBLOCK
 * on the descriptor it passed would change its own open file too (and the
 * client could clear it again, blocking the loop). So smimed reopens such a
 * file through /proc/self/fd for a private, non-blocking open file of its
 * own; sockets cannot be reopened and are used with MSG_DONTWAIT instead.
 * access is O_RDONLY or O_WRONLY; -EBADF when fd is not open for it. */
int fd_open_private_nonblocking(int fd, int access, bool *ret_socket);

/* read()/write() that do not block, for what fd_open_private_nonblocking()
 * gave. */
ssize_t fd_read_nonblocking(int fd, bool socket, void *buf, size_t size);
ssize_t fd_write_nonblocking(int fd, bool socket, const void *buf, size_t size);
