/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "message.h"
#include "smime-limits.h"
#include "worker-process.h"

#ifndef SMIMED_LIBEXECDIR
#define SMIMED_LIBEXECDIR "/usr/libexec"
#endif

#define WORKER_BINARY_NAME "smimed-worker"

/* After its socket closed, how long a worker may take to become a zombie
 * before it is killed: it is exiting then. */
#define WORKER_EXIT_GRACE_USEC (1000U * 1000U)

struct WorkerProcess {
        pid_t pid;              /* 0 once reaped */
        int sock;
        WorkerLimits limits;
        bool dead;
};

static pthread_mutex_t binary_lock = PTHREAD_MUTEX_INITIALIZER;
static char *binary_override;

int worker_process_set_binary(const char *path) {
        char *copy = NULL;

        if (path) {
                copy = strdup(path);
                if (!copy)
                        return -ENOMEM;
        }
        pthread_mutex_lock(&binary_lock);
        free(binary_override);
        binary_override = copy;
        pthread_mutex_unlock(&binary_lock);
        return 0;
}

/* The smimed-worker to start, in a new string. */
static int find_binary(char **ret) {
        char self[PATH_MAX], *slash, *path = NULL;
        ssize_t n;

        pthread_mutex_lock(&binary_lock);
        if (binary_override)
                path = strdup(binary_override);
        pthread_mutex_unlock(&binary_lock);
        if (binary_override && !path)
                return -ENOMEM;

        if (!path) {
                /* Beside smimed: a build directory, or libexecdir itself. */
                n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                if (n > 0) {
                        self[n] = 0;
                        slash = strrchr(self, '/');
                        if (slash) {
                                slash[1] = 0;
                                if (asprintf(&path, "%s%s", self, WORKER_BINARY_NAME) < 0)
                                        return -ENOMEM;
                                if (access(path, X_OK) < 0)
                                        path = mfree(path);
                        }
                }
        }
        if (!path && asprintf(&path, "%s/%s", SMIMED_LIBEXECDIR, WORKER_BINARY_NAME) < 0)
                return -ENOMEM;
        *ret = path;
        return 0;
}

/* fd moved above the fds the child's file actions write to (0, 1, 3), so
 * that none of them overwrites another's source. */
static int fd_above_targets(int fd) {
        int copy;

        if (fd > 3)
                return fd;
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 4);
        close(fd);
        return copy < 0 ? -errno : copy;
}

/* The environment: none, but in a sanitizer build its options, so that the
 * worker reports like the daemon, and the tests' switch that turns the
 * structure limits off (smime-limits.h), so that the worker meets what the
 * daemon was asked to let through. */
#define WORKER_ENVIRONMENT_MAX 5

static char **worker_environment(char *storage[static WORKER_ENVIRONMENT_MAX]) {
        static const char *const names[] = {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
                "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
#endif
                SMIME_NO_STRUCTURE_LIMITS_ENV,
        };
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(names) && n < WORKER_ENVIRONMENT_MAX - 1; i++) {
                const char *v = getenv(names[i]);

                if (v && asprintf(&storage[n], "%s=%s", names[i], v) >= 0)
                        n++;
        }
        storage[n] = NULL;
        return storage;
}

static int spawn(const char *path, const WorkerLimits *limits, int child_sock, int devnull, pid_t *ret_pid) {
        char memory[64], cpu[64], *env_storage[WORKER_ENVIRONMENT_MAX] = {};
        char *argv[] = { (char *) path, (char *) "--socket-fd=3", memory, cpu, NULL };
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int r;

        (void) snprintf(memory, sizeof(memory), "--memory-max=%" PRIu64, limits->memory_max);
        (void) snprintf(cpu, sizeof(cpu), "--cpu-seconds=%u", limits->cpu_seconds);
        sigemptyset(&none);
        sigfillset(&all);

        r = posix_spawn_file_actions_init(&actions);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&actions);
                return -r;
        }
        if ((r = posix_spawn_file_actions_adddup2(&actions, devnull, STDIN_FILENO)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&actions, devnull, STDOUT_FILENO)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&actions, child_sock, 3)) == 0 &&
            (r = posix_spawn_file_actions_addclosefrom_np(&actions, 4)) == 0 &&
            /* The daemon's threads block signals and it ignores SIGPIPE: none of it carries over. */
            (r = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
            (r = posix_spawnattr_setsigdefault(&attr, &all)) == 0 &&
            (r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0)
                r = posix_spawn(ret_pid, path, &actions, &attr, argv, worker_environment(env_storage));

        for (size_t i = 0; env_storage[i]; i++)
                free(env_storage[i]);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&actions);
        return -r;
}

int worker_process_new(const WorkerLimits *limits, WorkerProcess **ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(closep) int devnull = -1, child_sock = -1;
        int pair[2], r;
        WorkerProcess *w;
        pid_t pid;

        r = find_binary(&path);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        child_sock = fd_above_targets(pair[1]);
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0 || child_sock < 0) {
                r = devnull < 0 ? -errno : child_sock;
                close(pair[0]);
                return r;
        }
        devnull = fd_above_targets(devnull);
        if (devnull < 0) {
                close(pair[0]);
                return devnull;
        }

        r = spawn(path, limits, child_sock, devnull, &pid);
        if (r < 0) {
                close(pair[0]);
                return r;
        }

        w = malloc(sizeof(WorkerProcess));
        if (!w) {
                close(pair[0]);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return -ENOMEM;
        }
        *w = (WorkerProcess) { .pid = pid, .sock = pair[0], .limits = *limits };
        *ret = w;
        return 0;
}

static int wait_pid(pid_t pid, int *ret_status, int flags) {
        for (;;) {
                pid_t r = waitpid(pid, ret_status, flags);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                return r == pid;
        }
}

/* Kills and reaps w's process (if not reaped yet); its status when asked. */
static void kill_and_reap(WorkerProcess *w, int *ret_status) {
        int status = 0;

        if (w->pid > 0) {
                (void) kill(w->pid, SIGKILL);
                if (wait_pid(w->pid, &status, 0) <= 0)
                        status = 0;
                w->pid = 0;
        }
        if (ret_status)
                *ret_status = status;
}

/* The worker closed its socket: it is exiting (or it closed it on purpose,
 * and is killed). Its exit status. */
static int reap_exited(WorkerProcess *w) {
        uint64_t deadline = worker_now_usec() + WORKER_EXIT_GRACE_USEC;
        int status;

        while (w->pid > 0 && worker_now_usec() < deadline) {
                if (wait_pid(w->pid, &status, WNOHANG) > 0) {
                        w->pid = 0;
                        return status;
                }
                (void) nanosleep(&(struct timespec) { .tv_nsec = 1000 * 1000 }, NULL);
        }
        kill_and_reap(w, &status);
        return status;
}

static const char *signal_hint(int sig) {
        switch (sig) {
        case SIGSYS:
                return " (it made a system call its sandbox forbids)";
        case SIGXCPU:
                return " (it used up the CPU time a message may take)";
        case SIGKILL:
                return " (out of memory, or stopped by hand)";
        default:
                return "";
        }
}

/* The call failed with r: w is killed (when alive) and reaped, marked dead,
 * and the failure put in words. */
static int fail_call(WorkerProcess *w, int r, char **ret_message) {
        int status;

        w->dead = true;
        if (w->sock >= 0)
                close(w->sock);
        w->sock = -1;

        switch (r) {
        case -ETIME:
                kill_and_reap(w, NULL);
                return message_fail(ret_message, -ETIME,
                                    "The worker process handling this message did not finish within %.1f s and was "
                                    "stopped.",
                                    (double) w->limits.timeout_usec / 1e6);
        case -EPIPE:
        case -ECONNRESET:
                status = reap_exited(w);
                if (WIFSIGNALED(status))
                        return message_fail(ret_message, -ECHILD,
                                            "The worker process handling this message was killed by signal SIG%s%s.",
                                            sigabbrev_np(WTERMSIG(status)) ?: "?", signal_hint(WTERMSIG(status)));
                if (WIFEXITED(status))
                        return message_fail(ret_message, -ECHILD,
                                            "The worker process handling this message exited with status %d.",
                                            WEXITSTATUS(status));
                return message_fail(ret_message, -ECHILD, "The worker process handling this message is gone.");
        case -EBADMSG:
        case -EPROTO:
                kill_and_reap(w, NULL);
                return message_fail(ret_message, -EPROTO,
                                    "The worker process handling this message sent something smimed does not "
                                    "expect, and was stopped.");
        default:
                kill_and_reap(w, NULL);
                return message_fail(ret_message, r,
                                    "The worker process handling this message was stopped: talking to it failed "
                                    "(%m).");
        }
}

/* The answer to a WORKER_CALL_KEY_OP in *result. -EPROTO for a call of the
 * wrong shape. */
static int serve_key_op(WorkerMessage *call, const WorkerCallbacks *cb, WorkerMessage *result) {
        _cleanup_(key_op_request_done) KeyOpRequest request = {};
        uint8_t *out = NULL;
        size_t n = 0;
        int r;

        if (key_op_request_get(call, &request) < 0 || worker_message_get_end(call) < 0 || call->n_fds > 0)
                return -EPROTO;

        r = cb && cb->key_op ? cb->key_op(&request, &out, &n, cb->userdata) : -EPERM;
        if (r >= 0 && (!out || n == 0))
                r = -EIO;
        worker_message_init(result, WORKER_CALL_RESULT);
        worker_message_put_i32(result, r < 0 ? r : 0);
        if (r >= 0)
                worker_message_put_blob(result, out, n);
        if (out) {
                OPENSSL_cleanse(out, n);
                free(out);
        }
        return 0;
}

/* Puts the spool files fds (they stay the callback's: copies go) after
 * result's fields; when they cannot go, the result is -EMFILE instead, not
 * the worker's fault. */
static void result_put_spools(WorkerMessage *result, const int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (worker_message_put_fd(result, fds[i]) < 0) {
                        worker_message_done(result);
                        worker_message_init(result, WORKER_CALL_RESULT);
                        worker_message_put_i32(result, -EMFILE);
                        return;
                }
}

/* The answer to a WORKER_CALL_SPOOL in *result. */
static int serve_spool(WorkerMessage *call, const WorkerCallbacks *cb, WorkerMessage *result) {
        uint64_t hint;
        int fd;

        if (worker_message_get_u64(call, &hint) < 0 || worker_message_get_end(call) < 0 || call->n_fds > 0)
                return -EPROTO;

        fd = cb && cb->spool ? cb->spool(hint, cb->userdata) : -EPERM;
        worker_message_init(result, WORKER_CALL_RESULT);
        worker_message_put_i32(result, fd < 0 ? fd : 0);
        if (fd >= 0)
                result_put_spools(result, &fd, 1);
        return 0;
}

/* The answer to a WORKER_CALL_CHOOSE_KEY in *result. */
static int serve_choose_key(WorkerMessage *call, const WorkerCallbacks *cb, WorkerMessage *result) {
        int spools[3] = {-1, -1, -1};
        uint32_t index = 0;
        uint64_t hint = 0;
        int r;

        if (call->n_fds > 0)
                return -EPROTO;
        r = cb && cb->choose_key ? cb->choose_key(call, &index, &hint, cb->userdata) : -ENOKEY;
        if (r == -EPROTO)
                return r;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(spools); i++) {
                spools[i] = cb->spool ? cb->spool(hint, cb->userdata) : -EPERM; /* they stay the callback's */
                if (spools[i] < 0)
                        r = spools[i];
        }
        worker_message_init(result, WORKER_CALL_RESULT);
        worker_message_put_i32(result, r < 0 ? r : 0);
        if (r < 0)
                return 0;
        worker_message_put_u32(result, index);
        result_put_spools(result, spools, ELEMENTSOF(spools));
        return 0;
}

int worker_process_call(WorkerProcess *w, WorkerMessage *request, const WorkerCallbacks *cb,
                        WorkerMessage *ret_reply, char **ret_message) {
        uint64_t deadline = WORKER_NO_DEADLINE;
        int r;

        if (ret_message)
                *ret_message = NULL;
        if (w->dead || w->sock < 0)
                return message_fail(ret_message, -ECHILD, "The worker process is gone.");
        if (request->error < 0)
                return request->error;
        if (w->limits.timeout_usec > 0)
                deadline = worker_now_usec() + w->limits.timeout_usec;

        r = worker_message_send_until(w->sock, request, deadline);
        if (r < 0)
                return fail_call(w, r, ret_message);
        worker_message_close_fds(request);

        for (;;) {
                _cleanup_(worker_message_done) WorkerMessage m = {}, result = {};
                uint64_t started;

                r = worker_message_receive_until(w->sock, &m, deadline);
                if (r < 0)
                        return fail_call(w, r, ret_message);

                started = worker_now_usec();
                switch (m.type) {
                case WORKER_REPLY:
                        *ret_reply = m;
                        m = (WorkerMessage) {};
                        return 0;
                case WORKER_CALL_KEY_OP:
                        r = serve_key_op(&m, cb, &result);
                        break;
                case WORKER_CALL_SPOOL:
                        r = serve_spool(&m, cb, &result);
                        break;
                case WORKER_CALL_CHOOSE_KEY:
                        r = serve_choose_key(&m, cb, &result);
                        break;
                default:
                        r = -EPROTO;
                }
                /* The time smimed spent (a token can be slow) is not the worker's. */
                if (deadline != WORKER_NO_DEADLINE)
                        deadline += worker_now_usec() - started;
                if (r >= 0)
                        r = worker_message_send_until(w->sock, &result, deadline);
                if (r < 0)
                        return fail_call(w, r, ret_message);
        }
}

pid_t worker_process_pid(const WorkerProcess *w) {
        return w->pid;
}

bool worker_process_alive(const WorkerProcess *w) {
        siginfo_t si = {};

        if (w->dead || w->pid <= 0)
                return false;
        /* Exited (a zombie) without reaping it: WNOWAIT. */
        if (waitid(P_PID, (id_t) w->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return false;
        return si.si_pid == 0;
}

WorkerProcess *worker_process_free(WorkerProcess *w) {
        if (!w)
                return NULL;
        if (w->sock >= 0)
                close(w->sock);
        kill_and_reap(w, NULL);
        free(w);
        return NULL;
}
