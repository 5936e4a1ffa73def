/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "output-file.h"

static int open_direct(OutputFile *f, const char *path, int flags, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | flags, mode);

        if (fd < 0)
                return -errno;
        f->fd = f->owned_fd = fd;
        return 0;
}

/* "<dir>/.<name>.XXXXXX" for mkostemp(). */
static char *temp_template(const char *path) {
        _cleanup_free_ char *a = strdup(path), *b = strdup(path);
        char *t = NULL;

        if (!a || !b)
                return NULL;
        if (asprintf(&t, "%s/.%s.XXXXXX", dirname(a), basename(b)) < 0)
                return NULL;
        return t;
}

static mode_t current_umask(void) {
        mode_t u = umask(0);

        umask(u);
        return u;
}

int output_file_open(OutputFile *f, const char *path, mode_t mode) {
        _cleanup_free_ char *target = NULL, *temp = NULL;
        _cleanup_(closep) int fd = -1;
        struct stat st;
        bool exists;

        *f = OUTPUT_FILE_NULL;
        if (!path || streq(path, "-")) {
                if (fcntl(STDOUT_FILENO, F_GETFL) < 0)
                        return -errno;
                f->fd = STDOUT_FILENO;
                return 0;
        }

        exists = stat(path, &st) >= 0;
        if (!exists && errno != ENOENT)
                return -errno;
        if (exists && S_ISDIR(st.st_mode))
                return -EISDIR;
        if (exists && !S_ISREG(st.st_mode))
                return open_direct(f, path, 0, 0); /* a FIFO, a terminal, /dev/null */
        /* The rename must not replace a file the caller may not write. */
        if (exists && access(path, W_OK) < 0)
                return -errno;

        /* Replace the file a symbolic link points to, not the link. */
        target = exists ? realpath(path, NULL) : strdup(path);
        if (!target)
                return errno > 0 ? -errno : -ENOMEM;
        temp = temp_template(target);
        if (!temp)
                return -ENOMEM;

        fd = mkostemp(temp, O_CLOEXEC);
        if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS))
                /* A directory only the file in it may be written to: no rename, then. */
                return open_direct(f, path, O_CREAT | O_TRUNC, mode);
        if (fd < 0)
                return -errno;

        if (exists) {
                (void) fchown(fd, st.st_uid, st.st_gid); /* as the file was, where allowed */
                mode = st.st_mode & 07777;
        } else
                mode &= ~current_umask();
        if (fchmod(fd, mode) < 0) {
                int r = -errno;

                (void) unlink(temp);
                return r;
        }

        f->fd = f->owned_fd = TAKE_FD(fd);
        f->target = TAKE_PTR(target);
        f->temp = TAKE_PTR(temp);
        return 0;
}

int output_file_commit(OutputFile *f) {
        if (f->owned_fd >= 0 && close(TAKE_FD(f->owned_fd)) < 0)
                return -errno; /* a write the file system could not finish */
        f->fd = -1;
        if (!f->temp)
                return 0;
        if (rename(f->temp, f->target) < 0)
                return -errno;
        f->temp = mfree(f->temp);
        return 0;
}

void output_file_done(OutputFile *f) {
        closep(&f->owned_fd);
        if (f->temp)
                (void) unlink(f->temp);
        free(f->temp);
        free(f->target);
        *f = OUTPUT_FILE_NULL;
}
