/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "macro.h"

/* NULL-terminated string arrays, for libsmimed and smimectl. (common/ may
 * grow its own strv helpers; these names stay out of their way.) */

char **string_list_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, string_list_free);
size_t string_list_length(char *const *l);
/* Appends s to *l, taking ownership of s (freed on failure too). */
int string_list_consume(char ***l, char *s);
/* Appends a copy of s to *l. */
int string_list_extend(char ***l, const char *s);
