/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
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
                if (stderr_is_journal < 0)
                        stderr_is_journal = check_stderr_is_journal();

                flockfile(stderr);
                if (stderr_is_journal)
                        fprintf(stderr, "<%i>", level);
                errno = error;
                va_start(ap, format);
                vfprintf(stderr, format, ap);
                va_end(ap);
                fputc('\n', stderr);
                funlockfile(stderr);
        }

        errno = saved_errno;
        return -error;
}

bool log_stderr_is_journal(void) {
        if (stderr_is_journal < 0)
                stderr_is_journal = check_stderr_is_journal();
        return stderr_is_journal;
}
