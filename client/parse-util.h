/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Hex identifiers as people write them (fingerprints, key ids): any case,
 * with or without ':' between the bytes. Writes the lower-case digits to
 * *ret; -EINVAL when empty, not hex, or longer than max_digits. */
int parse_hex_id(const char *s, size_t max_digits, char **ret);
