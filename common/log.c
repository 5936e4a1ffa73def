/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "log.h"

static int max_level = LOG_INFO;
static int stderr_is_journal = -1;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

static bool check_stderr_is_journal(void) {
        unsigned long long dev, ino;
        const char *e;
        struct stat st;

        e = getenv("JOURNAL_STREAM");
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

int log_internal(int level, int error, const char *format, ...) {
        int saved_errno = errno;
        va_list ap;

        if (error < 0)
                error = -error;

        if (level <= max_level) {
                char line[2048], *p = line;
                int prefix = 0, n;

                if (stderr_is_journal < 0)
                        stderr_is_journal = check_stderr_is_journal();

                /* One line, one write(): stderr is unbuffered, and lines of
                 * several processes (or threads) must not interleave. */
                if (stderr_is_journal)
                        prefix = snprintf(line, sizeof(line), "<%i>", level);
                errno = error;
                va_start(ap, format);
                n = vsnprintf(line + prefix, sizeof(line) - (size_t) prefix - 1, format, ap);
                va_end(ap);
                if (n >= 0 && (size_t) n >= sizeof(line) - (size_t) prefix - 1) {
                        errno = error;
                        va_start(ap, format);
                        if (vasprintf(&p, format, ap) < 0)
                                p = NULL;
                        va_end(ap);
                        if (p) {
                                fprintf(stderr, "%.*s%s\n", prefix, line, p);
                                free(p);
                        }
                } else if (n >= 0) {
                        line[prefix + n] = '\n';
                        (void) fwrite(line, 1, (size_t) prefix + (size_t) n + 1, stderr);
                }
        }

        errno = saved_errno;
        return -error;
}

bool log_stderr_is_journal(void) {
        if (stderr_is_journal < 0)
                stderr_is_journal = check_stderr_is_journal();
        return stderr_is_journal;
}
