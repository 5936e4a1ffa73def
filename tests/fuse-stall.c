/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuse-stall: a FUSE file system that answers one user and makes everyone
 * else wait, the server a local user controls once FUSE lets others in
 * (allow_other). It serves two files, "message" (the text given, to read)
 * and "output" (empty, to write to), with no attribute or entry caching, so
 * that every stat, read and write is a request to this process ("output"
 * keeps what is written to it, to be read back). Requests
 * from the answered uid are served; a request from anyone else for one of
 * the files is held until this process is killed (then the kernel fails it
 * with ENOTCONN).
 *
 *   fuse-stall MOUNTPOINT ANSWERED-UID TEXT
 *
 * It mounts with allow_other (root may), writes "ready\n" to standard
 * output once the mount is in place, and serves in the foreground, one
 * request at a time. Unmounting is its starter's: umount2(MNT_DETACH). */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *text;
static uid_t answered_uid;
static char *written; /* what "output" holds */
static size_t n_written;

/* Whatever else walks the mounts meanwhile (df, a test beside this one)
 * may look at the root: only the files are held. */
static void hold_unless_answered(const char *path) {
        if (fuse_get_context()->uid == answered_uid || strcmp(path, "/") == 0)
                return;
        for (;;)
                pause();
}

static void *stall_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
        (void) conn;
        cfg->entry_timeout = 0;
        cfg->attr_timeout = 0;
        cfg->negative_timeout = 0;
        cfg->direct_io = 1;
        return NULL;
}

static int stall_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
        (void) fi;
        hold_unless_answered(path);
        memset(st, 0, sizeof(*st));
        if (strcmp(path, "/") == 0) {
                st->st_mode = S_IFDIR | 0755;
                st->st_nlink = 2;
        } else if (strcmp(path, "/message") == 0) {
                st->st_mode = S_IFREG | 0644;
                st->st_nlink = 1;
                st->st_size = (off_t) strlen(text);
        } else if (strcmp(path, "/output") == 0) {
                st->st_mode = S_IFREG | 0666;
                st->st_nlink = 1;
                st->st_size = (off_t) n_written;
        } else
                return -ENOENT;
        st->st_uid = answered_uid;
        return 0;
}

static int stall_open(const char *path, struct fuse_file_info *fi) {
        (void) fi;
        hold_unless_answered(path);
        return strcmp(path, "/message") == 0 || strcmp(path, "/output") == 0 ? 0 : -ENOENT;
}

static int stall_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
        const char *content = strcmp(path, "/output") == 0 ? written : text;
        size_t length = content == written ? n_written : strlen(text);

        (void) fi;
        hold_unless_answered(path);
        if (strcmp(path, "/message") != 0 && strcmp(path, "/output") != 0)
                return -EINVAL;
        if ((size_t) offset >= length)
                return 0;
        if (size > length - (size_t) offset)
                size = length - (size_t) offset;
        memcpy(buf, content + offset, size);
        return (int) size;
}

static int resize_output(size_t size) {
        char *p = realloc(written, size ? size : 1);

        if (!p)
                return -ENOMEM;
        if (size > n_written)
                memset(p + n_written, 0, size - n_written);
        written = p;
        n_written = size;
        return 0;
}

static int stall_write(const char *path, const char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
        int r;

        (void) fi;
        hold_unless_answered(path);
        if (strcmp(path, "/output") != 0)
                return -EINVAL;
        if ((size_t) offset + size > n_written && (r = resize_output((size_t) offset + size)) < 0)
                return r;
        memcpy(written + offset, buf, size);
        return (int) size;
}

static int stall_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
        (void) fi;
        hold_unless_answered(path);
        return strcmp(path, "/output") == 0 ? resize_output((size_t) size) : -EINVAL;
}

static int stall_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                         enum fuse_readdir_flags flags) {
        (void) offset;
        (void) fi;
        (void) flags;
        hold_unless_answered(path);
        if (strcmp(path, "/") != 0)
                return -ENOENT;
        fill(buf, ".", NULL, 0, 0);
        fill(buf, "..", NULL, 0, 0);
        fill(buf, "message", NULL, 0, 0);
        fill(buf, "output", NULL, 0, 0);
        return 0;
}

static const struct fuse_operations operations = {
        .init = stall_init,
        .getattr = stall_getattr,
        .open = stall_open,
        .read = stall_read,
        .write = stall_write,
        .truncate = stall_truncate,
        .readdir = stall_readdir,
};

int main(int argc, char *argv[]) {
        char *fuse_argv[] = {argv[0], (char *) "-o", (char *) "allow_other", NULL};
        struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
        struct fuse *fuse;
        char *end;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: fuse-stall MOUNTPOINT ANSWERED-UID TEXT\n");
                return 2;
        }
        answered_uid = (uid_t) strtoul(argv[2], &end, 10);
        if (*end != '\0')
                return 2;
        text = argv[3];

        fuse = fuse_new(&args, &operations, sizeof(operations), NULL);
        if (!fuse)
                return 1;
        if (fuse_mount(fuse, argv[1]) < 0) {
                fuse_destroy(fuse);
                return 1;
        }
        if (printf("ready\n") < 0 || fflush(stdout) != 0)
                return 1;
        r = fuse_loop(fuse);
        fuse_unmount(fuse);
        fuse_destroy(fuse);
        return r == 0 ? 0 : 1;
}
