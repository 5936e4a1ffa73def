/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bio-fd.h"

#define BIO_FD_BUFFER_SIZE (64 * 1024)

BIO *bio_new_fd_buffered(int fd) {
        BIO *buffer = BIO_new(BIO_f_buffer()), *raw = BIO_new_fd(fd, BIO_NOCLOSE);

        if (!buffer || !raw || BIO_set_buffer_size(buffer, BIO_FD_BUFFER_SIZE) <= 0) {
                BIO_free(buffer);
                BIO_free(raw);
                return NULL;
        }
        return BIO_push(buffer, raw);
}
