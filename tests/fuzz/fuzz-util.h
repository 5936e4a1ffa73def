/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* The daemon reads untrusted input from file descriptors: so do the
 * targets. Returns a memfd with data, at offset 0, or -1. */
static inline int fuzz_memfd(const uint8_t *data, size_t size) {
        int fd = memfd_create("fuzz", MFD_CLOEXEC);

        if (fd < 0)
                return -1;
        if (size > 0 && write(fd, data, size) != (ssize_t) size) {
                close(fd);
                return -1;
        }
        lseek(fd, 0, SEEK_SET);
        return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
