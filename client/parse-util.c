/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "parse-util.h"

int parse_hex_id(const char *s, size_t max_digits, char **ret) {
        _cleanup_free_ char *hex = malloc(strlen(s) + 1);
        size_t n = 0;

        if (!hex)
                return -ENOMEM;
        for (const char *p = s; *p; p++) {
                if (*p == ':')
                        continue;
                if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
                        hex[n++] = *p;
                else if (*p >= 'A' && *p <= 'F')
                        hex[n++] = *p - 'A' + 'a';
                else
                        return -EINVAL;
        }
        hex[n] = '\0';
        if (n == 0 || n > max_digits)
                return -EINVAL;
        *ret = TAKE_PTR(hex);
        return 0;
}
