/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimed-worker: the sandboxed process that does smimed's message work.
 * smimed starts it (worker-process.c) with its socket on fd 3, stdin and
 * stdout /dev/null, stderr smimed's, an empty environment:
 *   smimed-worker --socket-fd=3 [--memory-max=BYTES] [--cpu-seconds=N]
 * It serves requests until smimed closes the socket. For tests,
 * --check-sandbox[=probes|execve|ptrace] enters the sandbox and reports on
 * stdout what it can and cannot do (test-worker-sandbox). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "heap.h"
#include "log.h"
#include "sandbox.h"
#include "worker-protocol.h"
#include "worker-session.h"

typedef struct Arguments {
        int socket_fd;
        uint64_t memory_max;
        unsigned cpu_seconds;
        const char *check; /* --check-sandbox mode, or NULL */
} Arguments;

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || *s == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_arguments(int argc, char *argv[], Arguments *ret) {
        Arguments a = { .socket_fd = -1 };

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];
                uint64_t v;

                if (strncmp(arg, "--socket-fd=", 12) == 0) {
                        if (parse_u64(arg + 12, &v) < 0 || v < 3 || v > INT_MAX)
                                return log_error_errno(EINVAL, "smimed-worker: bad %s", arg);
                        a.socket_fd = (int) v;
                } else if (strncmp(arg, "--memory-max=", 13) == 0) {
                        if (parse_u64(arg + 13, &a.memory_max) < 0)
                                return log_error_errno(EINVAL, "smimed-worker: bad %s", arg);
                } else if (strncmp(arg, "--cpu-seconds=", 14) == 0) {
                        if (parse_u64(arg + 14, &v) < 0 || v > UINT_MAX)
                                return log_error_errno(EINVAL, "smimed-worker: bad %s", arg);
                        a.cpu_seconds = (unsigned) v;
                } else if (streq(arg, "--check-sandbox"))
                        a.check = "probes";
                else if (strncmp(arg, "--check-sandbox=", 16) == 0)
                        a.check = arg + 16;
                else
                        return log_error_errno(EINVAL, "smimed-worker: unknown argument %s", arg);
        }
        if (a.socket_fd < 0)
                return log_error_errno(EINVAL, "smimed-worker: --socket-fd= is needed (it is started by smimed).");
        *ret = a;
        return 0;
}

/* close_range(), else each fd that is open. */
static int close_fd_range(int first, int last) {
        long max;

        if (first > last)
                return 0;
        if (close_range((unsigned) first, (unsigned) last, 0) >= 0)
                return 0;
        max = sysconf(_SC_OPEN_MAX);
        for (long fd = first; fd <= last && fd < (max > 0 ? max : 65536); fd++)
                (void) close((int) fd);
        return 0;
}

/* Nothing but stdin, stdout, stderr and the socket stays open; the first
 * three are /dev/null when missing, so that no fd received later becomes
 * one of them. */
static int close_other_fds(int socket_fd) {
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0) {
                        int n = open("/dev/null", O_RDWR);

                        if (n < 0)
                                return -errno;
                        if (n != fd) {
                                close(n);
                                return -EBADF;
                        }
                }
        if (close_fd_range(3, socket_fd - 1) < 0 || close_fd_range(socket_fd + 1, INT_MAX) < 0)
                return -errno;
        /* A socket for requests, not one to hand on. */
        if (fcntl(socket_fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        return 0;
}

/* ---- --check-sandbox ---- */

static void report(const char *probe, long result) {
        if (result < 0)
                printf("%s: %s\n", probe, strerrorname_np(errno) ?: "?");
        else
                printf("%s: ok\n", probe);
}

/* The same for a function that returns a negative errno. */
static void report_errno(const char *probe, int r) {
        errno = r < 0 ? -r : 0;
        report(probe, r < 0 ? -1 : 0);
}

static long close_if_fd(long fd) {
        if (fd >= 0)
                close((int) fd);
        return fd;
}

static long fork_probe(void) {
        pid_t pid = fork();

        if (pid == 0)
                _exit(EXIT_SUCCESS); /* a sandbox that let it fork: the report says so */
        return pid;
}

/* What the sandbox refuses, and that what it allows works. The fd to probe
 * reading and writing comes in a message on the socket. */
static int check_probes(int socket_fd) {
        _cleanup_(worker_message_done) WorkerMessage m = {};
        struct sockaddr_un bus = { .sun_family = AF_UNIX, .sun_path = "/run/dbus/system_bus_socket" };
        static const char text[] = "written in the sandbox";
        char buf[sizeof(text)] = {};
        struct stat st;
        void *p;
        int fd, r;

        report("open", close_if_fd(open("/etc/passwd", O_RDONLY | O_CLOEXEC)));
        report("openat", close_if_fd(openat(AT_FDCWD, "/etc/passwd", O_RDONLY | O_CLOEXEC)));
#ifdef SYS_openat2
        {
                struct { uint64_t flags, mode, resolve; } how = { .flags = O_RDONLY };
                report("openat2", close_if_fd(syscall(SYS_openat2, AT_FDCWD, "/etc/passwd", &how, sizeof(how))));
        }
#endif
        report("creat", close_if_fd(creat("/tmp/smimed-worker-probe", 0600)));
        report("socket-unix", close_if_fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)));
        report("socket-inet", close_if_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)));
        report("connect", connect(socket_fd, (struct sockaddr *) &bus, sizeof(bus)));
        report("fork", fork_probe());
        report("memfd_create", close_if_fd(memfd_create("probe", MFD_CLOEXEC)));
        report("kill", kill(1, 0));
        report("prlimit-other", prlimit(1, RLIMIT_CPU, NULL, &(struct rlimit) {}));
        report("setuid", setuid(0));
        report("ioctl", ioctl(STDIN_FILENO, FIONREAD, &r));
        report("sendmsg-other", send(STDOUT_FILENO, "x", 1, MSG_DONTWAIT));

        p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        report("mmap-exec", p == MAP_FAILED ? -1 : 0);
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        report("mmap", p == MAP_FAILED ? -1 : 0);
        if (p != MAP_FAILED) {
                report("mprotect-exec", mprotect(p, 4096, PROT_READ | PROT_EXEC));
                munmap(p, 4096);
        }
        p = malloc(16 << 20);
        report("malloc", p ? 0 : -1);
        free(p);
        report("getrandom", getrandom(buf, sizeof(buf), 0));
        report_errno("cpu-limit", sandbox_job_cpu_limit(5));

        /* The fd that came with a message: the worker's spool files. */
        report_errno("recvmsg", worker_message_receive(socket_fd, &m));
        fd = worker_message_take_fd(&m, 0);
        if (fd >= 0) {
                report("fd-write", write(fd, text, sizeof(text) - 1) == sizeof(text) - 1 ? 0 : -1);
                report("fd-pread", pread(fd, buf, sizeof(text) - 1, 0) == sizeof(text) - 1 &&
                                                   memcmp(buf, text, sizeof(text) - 1) == 0
                                           ? 0
                                           : (errno = EIO, -1));
                report("fd-lseek", lseek(fd, 0, SEEK_END));
                report("fd-fstat", fstat(fd, &st));
                report("fd-ftruncate", ftruncate(fd, sizeof(text) - 1));
                report("fd-dup", close_if_fd(fcntl(fd, F_DUPFD_CLOEXEC, 3)));
                close(fd);
        }
        worker_message_done(&m);
        worker_reply_init(&m, 0, 0, "probed");
        report_errno("sendmsg", worker_message_send(socket_fd, &m));
        return fflush(stdout) == 0 ? 0 : -EIO;
}

static int check_sandbox(const char *mode, int socket_fd) {
        char *argv[] = { (char *) "/bin/true", NULL }, *envp[] = { NULL };

        if (streq(mode, "probes"))
                return check_probes(socket_fd);
        (void) fflush(stdout);
        if (streq(mode, "execve"))
                (void) execve(argv[0], argv, envp);
        else if (streq(mode, "ptrace"))
                (void) ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        else
                return -EINVAL;
        /* Alive: the sandbox did not kill it. */
        printf("%s: survived (%s)\n", mode, strerrorname_np(errno) ?: "?");
        (void) fflush(stdout);
        return -EPERM;
}

int main(int argc, char *argv[]) {
        Arguments a = {};
        int r;

        r = parse_arguments(argc, argv, &a);
        if (r < 0)
                return EXIT_FAILURE;
        r = close_other_fds(a.socket_fd);
        if (r < 0) {
                log_error_errno(r, "smimed-worker: cannot close the fds it inherited: %m");
                return EXIT_FAILURE;
        }
        /* Writing to a spool file never raises SIGPIPE, but a broken pipe must not kill it either. */
        (void) signal(SIGPIPE, SIG_IGN);
        heap_keep_for_reuse();

        r = sandbox_init_openssl();
        if (r < 0)
                return EXIT_FAILURE;
        r = sandbox_enter(&(SandboxLimits) { .memory_max = a.memory_max, .socket_fd = a.socket_fd });
        if (r < 0)
                return EXIT_FAILURE;

        /* From here on _exit(): exit handlers (LeakSanitizer's, in the ASan
         * build) would want what the sandbox forbids. */
        if (a.check)
                r = check_sandbox(a.check, a.socket_fd);
        else
                r = worker_session_serve(a.socket_fd, a.cpu_seconds);
        _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
