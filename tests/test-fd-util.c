/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fd-util: which client fds smimed takes as they are, and reading and
 * writing them without waiting and without changing them (their flags, and
 * RWF_NOWAIT on a pipe, stay as they were). Pipes, FIFOs, sockets, files,
 * /dev/null, terminals, O_PATH, in this process. */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "fd-util.h"
#include "fuse-mounts.h"
#include "macro.h"

static char dir[] = "/tmp/test-fd-util.XXXXXX";

static char *path_in(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

static int memfd_with(const char *text) {
        int fd = memfd_create("test", MFD_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static int classify(int fd, int access) {
        FdKind kind;
        int r = fd_classify(fd, access, &kind);

        return r < 0 ? r : (int) kind;
}

static void test_classify(void **state) {
        _cleanup_free_ char *file = path_in("file");
        _cleanup_(closep) int opath = -1, ro = -1, wo = -1, rw = -1, null = -1, zero = -1, master = -1, slave = -1,
                              efd = -1, d = -1, urandom = -1;
        int p[2], s[2];

        (void) state;
        ro = open(file, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
        wo = open(file, O_WRONLY | O_CLOEXEC);
        rw = open(file, O_RDWR | O_CLOEXEC);
        opath = open(file, O_PATH | O_CLOEXEC);
        assert_true(ro >= 0 && wo >= 0 && rw >= 0 && opath >= 0);

        assert_int_equal(classify(ro, O_RDONLY), FD_KIND_FILE);
        assert_int_equal(classify(ro, O_WRONLY), -EBADF);
        assert_int_equal(classify(wo, O_WRONLY), FD_KIND_FILE);
        assert_int_equal(classify(wo, O_RDONLY), -EBADF);
        assert_int_equal(classify(rw, O_RDONLY), FD_KIND_FILE);
        assert_int_equal(classify(rw, O_WRONLY), FD_KIND_FILE);
        /* F_GETFL says O_RDONLY for it: refused all the same. */
        assert_int_equal(fcntl(opath, F_GETFL) & O_ACCMODE, O_RDONLY);
        assert_int_equal(classify(opath, O_RDONLY), -EBADF);
        assert_int_equal(classify(opath, O_WRONLY), -EBADF);
        assert_int_equal(fd_classify(opath, O_RDONLY, NULL), -EBADF);

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(classify(p[0], O_RDONLY), FD_KIND_PIPE);
        assert_int_equal(classify(p[1], O_WRONLY), FD_KIND_PIPE);
        assert_int_equal(classify(p[0], O_WRONLY), -EBADF);
        close(p[0]);
        close(p[1]);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
        assert_int_equal(classify(s[0], O_RDONLY), FD_KIND_SOCKET);
        assert_int_equal(classify(s[0], O_WRONLY), FD_KIND_SOCKET);
        close(s[0]);
        close(s[1]);

        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        assert_int_equal(classify(null, O_WRONLY), FD_KIND_DEVICE);
        assert_int_equal(classify(zero, O_RDONLY), FD_KIND_DEVICE);
        /* epoll cannot watch it either, yet it is no null device: refused. */
        assert_int_equal(classify(urandom, O_RDONLY), -EOPNOTSUPP);

        assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
        assert_int_equal(classify(slave, O_RDONLY), -EOPNOTSUPP);
        assert_int_equal(classify(slave, O_WRONLY), -EOPNOTSUPP);
        assert_int_equal(classify(master, O_RDONLY), -EOPNOTSUPP);

        efd = eventfd(0, EFD_CLOEXEC);
        assert_int_equal(classify(efd, O_RDONLY), -EOPNOTSUPP);
        d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(classify(d, O_RDONLY), -EISDIR);

        assert_non_null(strstr(fd_error_to_string(-EOPNOTSUPP), "terminal"));
        assert_non_null(strstr(fd_error_to_string(-EBADF), "O_PATH"));
        assert_string_equal(fd_error_to_string(-ENOMEM), strerror(ENOMEM));
}

/* Reads everything from io until it would wait: the bytes, and what ended it. */
static size_t read_available(FdIo *io, char *buf, size_t size, size_t chunk, ssize_t *ret_last) {
        size_t n = 0;

        for (;;) {
                ssize_t k = fd_io_read(io, buf + n, chunk < size - n ? chunk : size - n);

                if (k <= 0) {
                        *ret_last = k;
                        return n;
                }
                n += (size_t) k;
                assert_true(n <= size);
        }
}

static bool nowait_works(int fd) {
        char c;
        struct iovec iov = { &c, 1 };

        return preadv2(fd, &iov, 1, -1, RWF_NOWAIT) >= 0 || errno != EOPNOTSUPP;
}

/* A blocking pipe end of the caller's, read in chunks of chunk bytes. */
static void read_pipe(int rd, int wr, size_t chunk, bool fifo) {
        _cleanup_(fd_io_close) FdIo io = FD_IO_NULL;
        static const char text[] = "the first part, and the second";
        char buf[128];
        ssize_t last;
        size_t n;
        int flags = fcntl(rd, F_GETFL);

        assert_false(flags & O_NONBLOCK);
        assert_int_equal(fd_io_open(&io, rd, O_RDONLY), 0);
        assert_int_equal(io.kind, FD_KIND_PIPE);

        /* Empty: it does not wait. */
        assert_int_equal(fd_io_read(&io, buf, sizeof(buf)), -EAGAIN);
        assert_int_equal(io.splice, fifo);

        assert_int_equal(write(wr, text, 15), 15);
        n = read_available(&io, buf, sizeof(buf), chunk, &last);
        assert_int_equal(last, -EAGAIN);
        assert_int_equal(n, 15);
        assert_int_equal(write(wr, text + 15, sizeof(text) - 15), (ssize_t) (sizeof(text) - 15));
        close(wr);
        n += read_available(&io, buf + n, sizeof(buf) - n, chunk, &last);
        assert_int_equal(last, 0);
        assert_int_equal(n, sizeof(text));
        assert_memory_equal(buf, text, sizeof(text));

        /* The caller's open file is as it was. */
        assert_int_equal(fcntl(rd, F_GETFL), flags);
        if (!fifo)
                assert_true(nowait_works(rd));
}

static void test_read_pipe(void **state) {
        int p[2];

        (void) state;
        for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                read_pipe(p[0], p[1], chunk, false);
                close(p[0]);
        }
}

static void test_read_fifo(void **state) {
        _cleanup_free_ char *fifo = path_in("fifo");

        (void) state;
        assert_int_equal(mkfifo(fifo, 0600), 0);
        for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
                int rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC), wr = open(fifo, O_WRONLY | O_CLOEXEC);

                assert_true(rd >= 0 && wr >= 0);
                assert_int_equal(fcntl(rd, F_SETFL, 0), 0); /* left blocking, as a caller may */
                read_pipe(rd, wr, chunk, true);
                close(rd);
        }
        assert_int_equal(unlink(fifo), 0);
}

/* Writes source into the caller's blocking pipe end until it is full, then
 * drains and finishes: nothing waits, nothing is lost. */
static void write_pipe(int rd, int wr, bool fifo) {
        _cleanup_(fd_io_close) FdIo io = FD_IO_NULL;
        _cleanup_(closep) int source = -1;
        _cleanup_free_ char *text = malloc(3 * 4096 + 1), *got = malloc(3 * 4096 + 1);
        off_t offset = 0;
        size_t total = 3 * 4096, got_size = 0;
        int flags = fcntl(wr, F_GETFL);

        assert_non_null(text);
        assert_non_null(got);
        for (size_t i = 0; i < total; i++)
                text[i] = (char) ('a' + i % 26);
        text[total] = '\0';
        source = memfd_with(text);
        assert_true(fcntl(wr, F_SETPIPE_SZ, 4096) >= 4096);
        assert_false(flags & O_NONBLOCK);

        assert_int_equal(fd_io_open(&io, wr, O_WRONLY), 0);
        assert_int_equal(io.kind, FD_KIND_PIPE);
        assert_int_equal(fd_io_write_from(&io, source, &offset, 65536), 4096);
        assert_int_equal(io.splice, fifo);
        assert_int_equal(fd_io_write_from(&io, source, &offset, 65536), -EAGAIN);
        assert_int_equal(offset, 4096);
        for (;;) {
                ssize_t n = read(rd, got + got_size, total - got_size);

                assert_true(n > 0);
                got_size += (size_t) n;
                if (got_size == total)
                        break;
                n = fd_io_write_from(&io, source, &offset, 65536);
                assert_true(n > 0);
        }
        assert_int_equal(fd_io_write_from(&io, source, &offset, 65536), 0);
        assert_int_equal(offset, (off_t) total);
        assert_memory_equal(got, text, total);
        /* The source's own position is not used. */
        assert_int_equal(lseek(source, 0, SEEK_CUR), 0);

        assert_int_equal(fcntl(wr, F_GETFL), flags);
        close(rd);
        assert_int_equal(lseek(source, 0, SEEK_SET), 0);
        offset = 0;
        assert_int_equal(fd_io_write_from(&io, source, &offset, 65536), -EPIPE);
}

static void test_write_pipe(void **state) {
        int p[2];

        (void) state;
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        write_pipe(p[0], p[1], false);
        close(p[1]);
}

static void test_write_fifo(void **state) {
        _cleanup_free_ char *fifo = path_in("out-fifo");
        int rd, wr;

        (void) state;
        assert_int_equal(mkfifo(fifo, 0600), 0);
        rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        wr = open(fifo, O_WRONLY | O_CLOEXEC);
        assert_true(rd >= 0 && wr >= 0);
        assert_int_equal(fcntl(rd, F_SETFL, 0), 0);
        write_pipe(rd, wr, true);
        close(wr);
        assert_int_equal(unlink(fifo), 0);
}

static void test_socket_and_file(void **state) {
        _cleanup_(fd_io_close) FdIo in = FD_IO_NULL, out = FD_IO_NULL, file = FD_IO_NULL, null = FD_IO_NULL;
        _cleanup_(closep) int source = memfd_with("through a socket"), null_fd = -1;
        off_t offset = 0;
        char buf[64];
        int s[2];

        (void) state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
        assert_int_equal(fd_io_open(&in, s[0], O_RDONLY), 0);
        assert_int_equal(fd_io_open(&out, s[1], O_WRONLY), 0);
        assert_int_equal(fd_io_read(&in, buf, sizeof(buf)), -EAGAIN);
        assert_int_equal(fd_io_write_from(&out, source, &offset, 65536), 16);
        assert_int_equal(fd_io_write_from(&out, source, &offset, 65536), 0);
        assert_int_equal(fd_io_read(&in, buf, sizeof(buf)), 16);
        assert_memory_equal(buf, "through a socket", 16);
        close(s[0]);
        close(s[1]);

        /* A file at its current offset, then its end. */
        assert_int_equal(lseek(source, 8, SEEK_SET), 8);
        assert_int_equal(fd_io_open(&file, source, O_RDONLY), 0);
        assert_int_equal(file.kind, FD_KIND_FILE);
        assert_int_equal(fd_io_read(&file, buf, sizeof(buf)), 8);
        assert_memory_equal(buf, "a socket", 8);
        assert_int_equal(fd_io_read(&file, buf, sizeof(buf)), 0);

        null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        assert_int_equal(fd_io_open(&null, null_fd, O_WRONLY), 0);
        assert_false(fd_io_pollable(&null));
        offset = 0;
        assert_int_equal(fd_io_write_from(&null, source, &offset, 65536), 16);
        assert_int_equal(fd_io_write_from(&null, source, &offset, 65536), 0);
}

static void test_open_refuses(void **state) {
        _cleanup_(fd_io_close) FdIo io = FD_IO_NULL;
        _cleanup_(closep) int master = -1, slave = -1;

        (void) state;
        assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
        assert_int_equal(fd_io_open(&io, slave, O_RDONLY), -EOPNOTSUPP);
        assert_int_equal(io.fd, -1);
        assert_int_equal(fd_io_open(&io, -1, O_RDONLY), -EBADF);
}

static int setup(void **state) {
        (void) state;
        (void) signal(SIGPIPE, SIG_IGN); /* as smimed */
        return mkdtemp(dir) ? 0 : -errno;
}

static int teardown(void **state) {
        _cleanup_free_ char *file = path_in("file");

        (void) state;
        (void) unlink(file);
        return rmdir(dir) < 0 ? -errno : 0;
}

/* ---- sealed memfds, truncation ---- */

static int memfd_sealed(const char *text, int seals) {
        int fd = memfd_create("fd-util-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
        return fd;
}

static void test_take_sealed(void **state) {
        const int sealed = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
        uint64_t size = 0;
        char buf[32] = "";
        int fd, shared, own;

        (void) state;
        fd = memfd_sealed("sealed text", sealed);
        shared = fd_take_sealed(fd, &size);
        assert_true(shared >= 0 && shared != fd);
        assert_int_equal(size, strlen("sealed text"));
        assert_true(fcntl(shared, F_GETFD) & FD_CLOEXEC);
        /* The client's offset at the end, as after reading; the duplicate shares it. */
        assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t) strlen("sealed text"));
        assert_int_equal(lseek(shared, 0, SEEK_CUR), (off_t) strlen("sealed text"));

        /* Opened again: the same bytes, read-only, with an offset of its own. */
        own = fd_reopen_read_only(shared);
        assert_true(own >= 0 && own != shared);
        assert_int_equal(read(own, buf, sizeof(buf)), (ssize_t) strlen("sealed text"));
        assert_string_equal(buf, "sealed text");
        assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t) strlen("sealed text"));
        assert_int_equal(fcntl(own, F_GETFL) & O_ACCMODE, O_RDONLY);
        assert_true(fcntl(own, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(write(own, "x", 1), -1);
        assert_int_equal(fd_reopen_read_only(-1), -ENOENT); /* no such fd in /proc/self/fd */
        close(own);
        close(shared);

        /* Again where the client's offset is now: not at the start. */
        assert_int_equal(fd_take_sealed(fd, &size), -EMEDIUMTYPE);
        close(fd);

        /* Bytes that may still change, or anything but a memfd: not taken. */
        fd = memfd_sealed("x", F_SEAL_WRITE | F_SEAL_SHRINK);
        assert_int_equal(fd_take_sealed(fd, &size), -EMEDIUMTYPE);
        close(fd);
        fd = memfd_sealed("x", F_SEAL_GROW | F_SEAL_SHRINK);
        assert_int_equal(fd_take_sealed(fd, &size), -EMEDIUMTYPE);
        close(fd);
        fd = memfd_create("fd-util-plain", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fd_take_sealed(fd, &size), -EMEDIUMTYPE);
        close(fd);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fd_take_sealed(fd, &size), -EMEDIUMTYPE);
        close(fd);
}

static void test_zero(void **state) {
        char buf[8192], zeros[8192] = {0};
        int fd = memfd_create("fd-util-zero", MFD_CLOEXEC);

        (void) state;
        assert_true(fd >= 0);
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t) sizeof(buf));
        assert_int_equal(fd_zero(fd, 5000), 0);
        assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t) sizeof(buf));
        assert_memory_equal(buf, zeros, 5000);
        assert_int_equal(buf[5000], 'x'); /* only as far as asked, the size kept */
        assert_int_equal(fd_zero(fd, 0), 0);
        assert_int_equal(fd_zero(fd, FD_ZERO_MAX + 1), -EIO);
        close(fd);
}

static void test_truncate_here(void **state) {
        struct stat st;
        int fd = memfd_create("fd-util-truncate", MFD_CLOEXEC);

        (void) state;
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "a longer first text", 19), 19);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(write(fd, "short", 5), 5);
        assert_int_equal(fd_truncate_here(fd), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, 5);
        close(fd);
}

static void test_pread_all(void **state) {
        char buf[16] = {0};
        int fd = memfd_create("fd-util-pread", MFD_CLOEXEC);

        (void) state;
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "0123456789", 10), 10);
        assert_int_equal(fd_pread_all(fd, buf, 4, 3), 0);
        assert_memory_equal(buf, "3456", 4);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 10); /* the offset left alone */
        assert_int_equal(fd_pread_all(fd, buf, 0, 0), 0);
        assert_int_equal(fd_pread_all(fd, buf, 8, 5), -EIO); /* the file ends first */
        assert_int_equal(fd_pread_all(-1, buf, 1, 0), -EBADF);
        close(fd);
}

/* mountinfo lines: FUSE by the type after " - ", whatever the path says. */
static void test_fuse_mounts_parse_line(void **state) {
        dev_t dev = 0;

        (void) state;
        assert_true(fuse_mounts_parse_line(
                "52 29 0:47 / /home/u/remote rw,nosuid,nodev shared:30 - fuse.sshfs u@host:/ rw,user_id=1000", &dev));
        assert_true(dev == makedev(0, 47));
        assert_true(fuse_mounts_parse_line("60 29 0:51 / /mnt/f rw - fuse /dev/fuse rw,allow_other", &dev));
        assert_true(dev == makedev(0, 51));
        assert_true(fuse_mounts_parse_line("61 29 8:17 / /mnt/win rw master:2 - fuseblk /dev/sdb1 rw", &dev));
        assert_true(dev == makedev(8, 17));

        dev = makedev(1, 1);
        assert_false(fuse_mounts_parse_line("25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw", &dev));
        assert_false(fuse_mounts_parse_line("40 22 0:38 / /sys/fs/fuse/connections rw - fusectl fusectl rw", &dev));
        assert_false(fuse_mounts_parse_line("41 22 0:39 / /a\\040-\\040fuse rw - tmpfs fuse rw", &dev));
        assert_false(fuse_mounts_parse_line("42 22 0:40 / /x rw - fuse.", &dev));
        assert_false(fuse_mounts_parse_line("garbage", &dev));
        assert_false(fuse_mounts_parse_line("", &dev));
        assert_true(dev == makedev(1, 1)); /* untouched */
}

/* What is not on FUSE is said so, from the table of this process's mounts. */
static void test_fuse_mounts_contain(void **state) {
        char path[] = "/tmp/test-fd-util-XXXXXX";
        struct stat st;
        int fd;

        (void) state;
        fd = memfd_create("test", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(fuse_mounts_contain(st.st_dev), 0);
        close(fd);

        fd = mkostemp(path, O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(fuse_mounts_contain(st.st_dev), 0);
        /* Asked again: the table is kept while no mount changes. */
        assert_int_equal(fuse_mounts_contain(st.st_dev), 0);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_classify),
                cmocka_unit_test(test_read_pipe),
                cmocka_unit_test(test_read_fifo),
                cmocka_unit_test(test_write_pipe),
                cmocka_unit_test(test_write_fifo),
                cmocka_unit_test(test_socket_and_file),
                cmocka_unit_test(test_open_refuses),
                cmocka_unit_test(test_take_sealed),
                cmocka_unit_test(test_zero),
                cmocka_unit_test(test_truncate_here),
                cmocka_unit_test(test_pread_all),
                cmocka_unit_test(test_fuse_mounts_parse_line),
                cmocka_unit_test(test_fuse_mounts_contain),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
