/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "macro.h"
#include "spool.h"

char *spool_dir_for(const char *store_path) {
        _cleanup_free_ char *copy = strdup(store_path);

        return copy ? strdup(dirname(copy)) : NULL;
}

int spool_tmpfile_sized(const char *dir, uint64_t size_hint) {
        int fd = -1;

        if (size_hint <= SPOOL_MEMORY_MAX)
                fd = memfd_create("smimed-spool", MFD_CLOEXEC);
        if (fd < 0)
                fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0)
                fd = memfd_create("smimed-spool", MFD_CLOEXEC);
        return fd >= 0 ? fd : -errno;
}

int spool_tmpfile_for(const char *store_path, uint64_t size_hint) {
        _cleanup_free_ char *dir = spool_dir_for(store_path);

        return dir ? spool_tmpfile_sized(dir, size_hint) : -ENOMEM;
}
