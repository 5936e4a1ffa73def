/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Lower-case hex of l bytes into out (2 * l + 1 bytes). Returns out. */
char *hex_encode(const void *p, size_t l, char *out);
/* The same, newly allocated; NULL when out of memory. */
char *hexmem(const void *p, size_t l);
/* Decodes hex (either case); -EINVAL when s is not hex. */
int unhexmem(const char *s, unsigned char **ret, size_t *ret_len);
