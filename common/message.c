/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "message.h"

int message_fail(char **ret_message, int r, const char *format, ...) {
        va_list ap;

        if (!ret_message)
                return r;
        errno = r < 0 ? -r : r;
        va_start(ap, format);
        if (vasprintf(ret_message, format, ap) < 0)
                *ret_message = NULL;
        va_end(ap);
        return r;
}
