/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "message.h"

int message_failv(char **ret_message, int r, const char *format, va_list ap) {
        if (!ret_message)
                return r;
        errno = r < 0 ? -r : r;
        if (vasprintf(ret_message, format, ap) < 0)
                *ret_message = NULL;
        return r;
}

int message_fail(char **ret_message, int r, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        r = message_failv(ret_message, r, format, ap);
        va_end(ap);
        return r;
}
