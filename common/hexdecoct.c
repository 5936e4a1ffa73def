/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hexdecoct.h"

char *hex_encode(const void *p, size_t l, char *out) {
        static const char digits[] = "0123456789abcdef";
        const unsigned char *b = p;

        for (size_t i = 0; i < l; i++) {
                out[2 * i] = digits[b[i] >> 4];
                out[2 * i + 1] = digits[b[i] & 15];
        }
        out[2 * l] = '\0';
        return out;
}

char *hexmem(const void *p, size_t l) {
        char *out = malloc(2 * l + 1);

        return out ? hex_encode(p, l, out) : NULL;
}

int unhexmem(const char *s, unsigned char **ret, size_t *ret_len) {
        unsigned char *buf, *copy;
        long len = 0;

        if (strlen(s) % 2 != 0 || strchr(s, ':'))
                return -EINVAL;
        if (s[0] == '\0') {
                *ret = calloc(1, 1);
                *ret_len = 0;
                return *ret ? 0 : -ENOMEM;
        }
        buf = OPENSSL_hexstr2buf(s, &len);
        if (!buf)
                return -EINVAL;
        copy = malloc((size_t) len);
        if (copy)
                memcpy(copy, buf, (size_t) len);
        OPENSSL_free(buf);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        *ret_len = (size_t) len;
        return 0;
}
