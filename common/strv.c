/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **c;

        if (!s)
                return -ENOMEM;
        c = realloc(*l, (n + 2) * sizeof(char *));
        if (!c) {
                free(s);
                return -ENOMEM;
        }
        c[n] = s;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *s) {
        return strv_consume(l, strdup(s));
}

int strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (strcmp(l[i], s) == 0)
                        return 1;
        return 0;
}

char **strv_copy(char *const *l) {
        size_t n = strv_length(l);
        char **copy = calloc(n + 1, sizeof(char *));

        if (!copy)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                copy[i] = strdup(l[i]);
                if (!copy[i])
                        return strv_free(copy);
        }
        return copy;
}

char *strv_join(char *const *l, const char *separator) {
        size_t len = 1, k = 0, sep = strlen(separator);
        char *s;

        for (char *const *a = l; a && *a; a++)
                len += strlen(*a) + sep;
        s = malloc(len);
        if (!s)
                return NULL;
        for (char *const *a = l; a && *a; a++) {
                size_t n = strlen(*a);

                if (a != l) {
                        memcpy(s + k, separator, sep);
                        k += sep;
                }
                memcpy(s + k, *a, n);
                k += n;
        }
        s[k] = '\0';
        return s;
}
