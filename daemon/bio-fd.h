/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/bio.h>

/* A BIO over fd (not closed with it) behind a 64 KiB buffer. A bare fd BIO
 * makes one read() per byte in BIO_gets() (how OpenSSL reads MIME headers)
 * and one write() per base64 line. Flush before freeing after writing.
 * NULL on allocation failure. */
BIO *bio_new_fd_buffered(int fd);
