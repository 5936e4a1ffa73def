/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "string-list.h"

char **string_list_free(char **l) {
        for (char **s = l; s && *s; s++)
                free(*s);
        free(l);
        return NULL;
}

size_t string_list_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

int string_list_consume(char ***l, char *s) {
        size_t n = string_list_length(*l);
        char **grown;

        if (!s)
                return -ENOMEM;
        grown = reallocarray(*l, n + 2, sizeof(char *));
        if (!grown) {
                free(s);
                return -ENOMEM;
        }
        grown[n] = s;
        grown[n + 1] = NULL;
        *l = grown;
        return 0;
}

int string_list_extend(char ***l, const char *s) {
        return string_list_consume(l, strdup(s));
}
