/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>

#include "macro.h"

/* Sets *ret_message (when ret_message is not NULL) to a sentence for a person
 * and returns r, a negative errno, so a failure and its explanation travel in
 * one statement: return message_fail(ret_message, -EBADMSG, "item %zu: …", i).
 * %m in format stands for strerror(-r). *ret_message is NULL when out of
 * memory. */
int message_fail(char **ret_message, int r, const char *format, ...) _printf_(3, 4);
/* The same with the arguments as a va_list, for functions that take a format of their own. */
int message_failv(char **ret_message, int r, const char *format, va_list ap) _printf_(3, 0);
