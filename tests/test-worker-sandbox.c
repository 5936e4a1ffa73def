/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sandbox of smimed-worker, seen from outside: the built worker, started
 * by hand with its socket on fd 3. `--check-sandbox` enters the sandbox and
 * reports what it tried: opening files, sockets, connect, fork, memfd,
 * signals, executable memory must fail with EPERM; reading and writing an
 * fd that came in a message, memory, randomness and its CPU limit must work.
 * execve() and ptrace() kill it with SIGSYS. A serving worker maps no
 * PKCS#11 module, p11-kit, engine, libsystemd or SQLite, holds only the fds
 * it was given, has no capabilities, a seccomp filter, no new privileges and
 * its limits; it cannot allocate past --memory-max. */
#include <dirent.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"
#include "worker-protocol.h"
#include "worker-selftest.h"

typedef struct Worker {
        pid_t pid;
        int sock;       /* our end of its socket */
        int out;        /* its stdout, when asked for */
} Worker;

/* In the child, before execve(): what smimed's unit gives smimed, and so its
 * workers: no capabilities (CapabilityBoundingSet=, User=), no new
 * privileges, and a seccomp filter of @system-service without @privileged
 * and @resources, of which what the worker uses: seccomp(), capset() and
 * capget(), setrlimit() fail with EPERM (SystemCallErrorNumber=EPERM). */
static void confine_like_the_unit(void) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
        static const char *const forbidden[] = { "seccomp", "capset", "capget", "setrlimit" };
        scmp_filter_ctx ctx;

        for (unsigned long c = 0; c <= CAP_LAST_CAP; c++)
                (void) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
        if (syscall(SYS_capset, &header, data) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                _exit(126);
        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                _exit(126);
        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++)
                if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), seccomp_syscall_resolve_name(forbidden[i]), 0) < 0)
                        _exit(126);
        if (seccomp_load(ctx) < 0)
                _exit(126);
}

/* Starts the worker with args after --socket-fd=3, its stdout in w.out
 * when asked. Fds open in this process without O_CLOEXEC are inherited:
 * the worker must close them itself. */
static Worker start_as(const char *const *args, bool capture_stdout, bool like_the_unit) {
        char *argv[8] = { (char *) SMIMED_WORKER_BINARY, (char *) "--socket-fd=3" }, *envp[] = { NULL };
        Worker w = { .out = -1 };
        int s[2], p[2] = { -1, -1 };
        size_t n = 2;

        for (; args && *args && n < ELEMENTSOF(argv) - 1; args++)
                argv[n++] = (char *) *args;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
        if (capture_stdout)
                assert_int_equal(pipe2(p, O_CLOEXEC), 0);

        w.pid = fork();
        assert_true(w.pid >= 0);
        if (w.pid == 0) {
                if (dup2(s[1], 3) < 0 || (capture_stdout && dup2(p[1], STDOUT_FILENO) < 0))
                        _exit(126);
                if (like_the_unit)
                        confine_like_the_unit();
                execve(argv[0], argv, envp);
                _exit(127);
        }
        close(s[1]);
        if (capture_stdout) {
                close(p[1]);
                w.out = p[0];
        }
        w.sock = s[0];
        return w;
}

static Worker start(const char *const *args, bool capture_stdout, int leaked) {
        (void) leaked; /* open in this process: inherited */
        return start_as(args, capture_stdout, false);
}

static int wait_worker(Worker *w) {
        int status;

        /* EOF on its socket: a serving worker exits by itself. */
        close(w->sock);
        assert_int_equal(waitpid(w->pid, &status, 0), w->pid);
        if (w->out >= 0)
                close(w->out);
        return status;
}

static char *read_all_fd(int fd) {
        size_t size = 0, allocated = 4096;
        char *buf = malloc(allocated);
        ssize_t n;

        assert_non_null(buf);
        while ((n = read(fd, buf + size, allocated - size - 1)) > 0) {
                size += (size_t) n;
                if (allocated - size < 1024) {
                        allocated *= 2;
                        buf = realloc(buf, allocated);
                        assert_non_null(buf);
                }
        }
        buf[size] = 0;
        return buf;
}

/* The result the worker printed for probe ("ok", "EPERM", …). */
static void assert_probe(const char *report, const char *probe, const char *expected) {
        char line[128];

        (void) snprintf(line, sizeof(line), "\n%s: %s\n", probe, expected);
        if (!strstr(report, line) && !(strncmp(report, line + 1, strlen(line) - 1) == 0)) {
                print_error("probe %s: expected %s in:\n%s", probe, expected, report);
                fail();
        }
}

static void check_probes(bool like_the_unit) {
        static const char *const refused[] = {
                "open", "openat", "creat", "socket-unix", "socket-inet", "connect", "fork", "memfd_create",
                "kill", "prlimit-other", "setuid", "ioctl", "sendmsg-other", "mmap-exec", "mprotect-exec",
        };
        static const char *const allowed[] = {
                "mmap", "malloc", "getrandom", "cpu-limit", "recvmsg", "fd-write", "fd-pread", "fd-lseek",
                "fd-fstat", "fd-ftruncate", "fd-dup", "sendmsg",
        };
        const char *args[] = { "--check-sandbox", NULL };
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        _cleanup_free_ char *report = NULL, *message = NULL;
        _cleanup_(closep) int spool = memfd_create("spool", MFD_CLOEXEC);
        Worker w = start_as(args, true, like_the_unit);
        char written[64] = {};
        int status, error;

        assert_true(spool >= 0);
        worker_message_init(&m, 1);
        assert_int_equal(worker_message_put_fd(&m, spool), 0);
        assert_int_equal(worker_message_send(w.sock, &m), 0);
        assert_int_equal(worker_message_receive(w.sock, &reply), 0);
        assert_int_equal(worker_reply_read_status(&reply, &error, NULL, &message), 0);
        assert_string_equal(message, "probed");

        report = read_all_fd(w.out);
        status = wait_worker(&w);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                assert_probe(report, refused[i], "EPERM");
        if (strstr(report, "openat2:"))
                assert_probe(report, "openat2", "EPERM");
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                assert_probe(report, allowed[i], "ok");

        /* What the worker wrote into the fd it was given. */
        assert_int_equal(pread(spool, written, sizeof(written), 0), 22);
        assert_string_equal(written, "written in the sandbox");
}

static void test_probes(void **state) {
        (void) state;
        check_probes(false);
}

/* smimed's unit forbids seccomp(), capset() and setrlimit(): the worker
 * still confines itself (prctl(PR_SET_SECCOMP), prlimit64()) and has no
 * capabilities to drop. */
static void test_probes_under_the_unit(void **state) {
        (void) state;
        check_probes(true);
}

static void assert_killed_by_sigsys(const char *mode, bool like_the_unit) {
        char arg[64];
        const char *args[] = { arg, NULL };
        _cleanup_free_ char *report = NULL;
        Worker w;
        int status;

        (void) snprintf(arg, sizeof(arg), "--check-sandbox=%s", mode);
        w = start_as(args, true, like_the_unit);
        report = read_all_fd(w.out);
        status = wait_worker(&w);
        if (!WIFSIGNALED(status))
                print_error("%s: not killed; it said: %s", mode, report);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGSYS);
        assert_null(strstr(report, "survived"));
}

static void test_execve_kills(void **state) {
        (void) state;
        assert_killed_by_sigsys("execve", false);
        /* There the filter kills the thread (all there is), not the process. */
        assert_killed_by_sigsys("execve", true);
}

static void test_ptrace_kills(void **state) {
        (void) state;
        assert_killed_by_sigsys("ptrace", false);
}

/* A PING answered: the worker is in its loop, inside the sandbox. */
static void ping(int sock) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        _cleanup_free_ char *echo = NULL;
        int error;

        worker_message_init(&m, 100 /* WORKER_PING */);
        worker_message_put_string(&m, "ping");
        assert_int_equal(worker_message_send(sock, &m), 0);
        assert_int_equal(worker_message_receive(sock, &reply), 0);
        assert_int_equal(worker_reply_read_status(&reply, &error, NULL, NULL), 0);
        assert_int_equal(error, 0);
        assert_int_equal(worker_message_get_string(&reply, &echo), 0);
        assert_string_equal(echo, "ping");
}

static char *proc_file(pid_t pid, const char *name) {
        char path[64];
        int fd;
        char *s;

        (void) snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        s = read_all_fd(fd);
        close(fd);
        return s;
}

static void test_serving_worker(void **state) {
        static const char *const absent[] = { "softhsm", "p11-kit", "pkcs11", "libp11", "libsystemd", "sqlite" };
        const char *args[] = { "--memory-max=1073741824", "--cpu-seconds=30", NULL };
        _cleanup_free_ char *maps = NULL, *status_text = NULL, *limits = NULL;
        /* Open in this process, inheritable: the worker must close it itself. */
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC), leaked = fcntl(null, F_DUPFD, 10);
        char fd_dir[64];
        unsigned fds = 0, seen = 0;
        struct dirent *de;
        int status;
        Worker w;
        DIR *d;

        (void) state;
        close(null);
        assert_true(leaked >= 10);
        assert_false(fcntl(leaked, F_GETFD) & FD_CLOEXEC);
        w = start(args, false, leaked);
        close(leaked);
        ping(w.sock);

        maps = proc_file(w.pid, "maps");
        if (!maps || !*maps) {
                /* Not dumpable: only a process with CAP_SYS_PTRACE sees inside. */
                (void) kill(w.pid, SIGKILL);
                (void) wait_worker(&w);
                skip();
        }
        assert_non_null(strstr(maps, "libcrypto"));
        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                if (strstr(maps, absent[i])) {
                        print_error("the worker maps %s:\n%s", absent[i], maps);
                        fail();
                }

        (void) snprintf(fd_dir, sizeof(fd_dir), "/proc/%d/fd", (int) w.pid);
        d = opendir(fd_dir);
        assert_non_null(d);
        while ((de = readdir(d))) {
                int fd;

                if (de->d_name[0] == '.')
                        continue;
                fd = atoi(de->d_name);
                if (fd > 3) {
                        print_error("the worker holds fd %d\n", fd);
                        fail();
                }
                seen |= 1U << fd;
                fds++;
        }
        closedir(d);
        assert_int_equal(fds, 4);
        assert_int_equal(seen, 0xf);

        status_text = proc_file(w.pid, "status");
        assert_non_null(status_text);
        assert_non_null(strstr(status_text, "NoNewPrivs:\t1"));
        assert_non_null(strstr(status_text, "Seccomp:\t2"));
        assert_non_null(strstr(status_text, "CapEff:\t0000000000000000"));
        assert_non_null(strstr(status_text, "CapPrm:\t0000000000000000"));

        limits = proc_file(w.pid, "limits");
        assert_non_null(limits);
        assert_non_null(strstr(limits, "Max open files            64                   64"));
        assert_non_null(strstr(limits, "Max processes             0                    0"));
        assert_non_null(strstr(limits, "Max core file size        0                    0"));
        if (!sandbox_under_asan())
                assert_non_null(strstr(limits, "Max address space         1073741824           1073741824"));

        status = wait_worker(&w);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* Past --memory-max, malloc() fails: the request fails, the worker lives. */
static void test_memory_limit(void **state) {
        const char *args[] = { "--memory-max=268435456", NULL };
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        Worker w;
        int error, status;

        (void) state;
        if (sandbox_under_asan())
                skip(); /* no RLIMIT_AS under AddressSanitizer */
        w = start(args, false, -1);
        worker_message_init(&m, WORKER_SELFTEST_MISBEHAVE);
        worker_message_put_u32(&m, SELFTEST_ALLOCATE);
        worker_message_put_u64(&m, 512U << 20);
        assert_int_equal(worker_message_send(w.sock, &m), 0);
        assert_int_equal(worker_message_receive(w.sock, &reply), 0);
        assert_int_equal(worker_reply_read_status(&reply, &error, NULL, NULL), 0);
        assert_int_equal(error, -ENOMEM);

        /* Within it, it works. */
        worker_message_done(&m);
        worker_message_done(&reply);
        worker_message_init(&m, WORKER_SELFTEST_MISBEHAVE);
        worker_message_put_u32(&m, SELFTEST_ALLOCATE);
        worker_message_put_u64(&m, 64U << 20);
        assert_int_equal(worker_message_send(w.sock, &m), 0);
        assert_int_equal(worker_message_receive(w.sock, &reply), 0);
        assert_int_equal(worker_reply_read_status(&reply, &error, NULL, NULL), 0);
        assert_int_equal(error, 0);
        ping(w.sock);
        status = wait_worker(&w);
        assert_true(WIFEXITED(status));
}

/* Without a socket it does not start. */
static void test_needs_socket(void **state) {
        char *argv[] = { (char *) SMIMED_WORKER_BINARY, NULL }, *envp[] = { NULL };
        pid_t pid;
        int status;

        (void) state;
        assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, envp), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_probes),
                cmocka_unit_test(test_probes_under_the_unit),
                cmocka_unit_test(test_execve_kills),
                cmocka_unit_test(test_ptrace_kills),
                cmocka_unit_test(test_serving_worker),
                cmocka_unit_test(test_memory_limit),
                cmocka_unit_test(test_needs_socket),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
