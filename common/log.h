/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdlib.h>
#include <syslog.h>

#include "macro.h"

/* Logging to stderr. When stderr is a journal stream, each line carries its
 * syslog priority as a "<N>" prefix so journald files it at the right level.
 * The _errno variants format %m from the given error and return -abs(error),
 * so a failure can be logged and propagated in one statement. */

void log_set_max_level(int level);
int log_get_max_level(void);

#include <stdbool.h>

/* Whether stderr is connected to the journal (JOURNAL_STREAM). */
bool log_stderr_is_journal(void);

int log_internal(int level, int error, const char *format, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...) log_internal((level), (error), __VA_ARGS__)

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(error, ...) log_internal(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...) log_internal(LOG_INFO, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_internal(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_internal(LOG_ERR, (error), __VA_ARGS__)

#define log_oom() log_internal(LOG_ERR, ENOMEM, "Out of memory.")
