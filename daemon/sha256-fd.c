/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hexdecoct.h"
#include "sha256-fd.h"

char *sha256_fd(int fd) {
        unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
        unsigned int len = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ssize_t n = 0;
        off_t offset = 0;
        bool ok;

        if (!ctx)
                return NULL;
        ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        while (ok && (n = pread(fd, buf, sizeof(buf), offset)) > 0) {
                ok = EVP_DigestUpdate(ctx, buf, (size_t) n);
                offset += n;
        }
        ok = ok && n == 0 && EVP_DigestFinal_ex(ctx, md, &len);
        EVP_MD_CTX_free(ctx);
        return ok ? hexmem(md, len) : NULL;
}
