/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Blocking: writes all n bytes at p to fd, again after EINTR and short
 * writes. 0 or a negative errno. One for smimed, libsmimed and smimectl. */
int fd_write_all(int fd, const void *p, size_t n);
