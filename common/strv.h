/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "macro.h"

/* NULL-terminated string arrays. */

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
size_t strv_length(char *const *l);
/* Appends s (taking ownership) to *l. On failure frees s. */
int strv_consume(char ***l, char *s);
int strv_extend(char ***l, const char *s);
int strv_contains(char *const *l, const char *s);
/* A deep copy (an empty strv for NULL); NULL when out of memory. */
char **strv_copy(char *const *l);
/* The strings of l with separator between them ("" for NULL or empty); NULL
 * when out of memory. */
char *strv_join(char *const *l, const char *separator);
