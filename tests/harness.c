/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "harness.h"
#include "pg-server.h"
#include "smimed-bus-names.h"

#define POLKIT_ACTIONS_DIR "/usr/share/polkit-1/actions"
#define POLKIT_RULES_DIR "/etc/polkit-1/rules.d"
/* Their stand-ins in the test's directory. */
#define POLKIT_ACTIONS_NAME "polkit-actions"
#define POLKIT_RULES_NAME "polkit-rules.d"
#define POLKITD_PATH "/usr/lib/polkit-1/polkitd"
#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

extern char **environ;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int deadline_ms(uint64_t deadline) {
        uint64_t now = now_usec();

        return now >= deadline ? 0 : (int) ((deadline - now + 999) / 1000);
}

static char *path_join(const char *dir, const char *name) {
        char *p;

        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return NULL;
        return p;
}

char *harness_read_file(const char *path) {
        _cleanup_(closep) int fd = -1;
        char *buf = NULL;
        size_t size = 0, allocated = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;

        for (;;) {
                ssize_t n;

                if (allocated - size < 4097) {
                        char *b = realloc(buf, allocated + 65536);
                        if (!b) {
                                free(buf);
                                return NULL;
                        }
                        buf = b;
                        allocated += 65536;
                }
                n = read(fd, buf + size, allocated - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        free(buf);
                        return NULL;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        buf[size] = '\0';
        return buf;
}

/* owner and group (uid_t) -1 and (gid_t) -1 leave them as they are. */
static int write_file_owned(const char *path, const char *text, mode_t mode, uid_t owner, gid_t group) {
        _cleanup_(closep) int fd = -1;
        size_t len = strlen(text), done = 0;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        /* Mode and owner before the content: a secret is never readable by anyone else. */
        if (fchmod(fd, mode) < 0)
                return -errno;
        if ((owner != (uid_t) -1 || group != (gid_t) -1) && fchown(fd, owner, group) < 0)
                return -errno;
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0)
                        return -errno;
                done += (size_t) n;
        }
        return 0;
}

static int write_file(const char *path, const char *text, mode_t mode) {
        return write_file_owned(path, text, mode, (uid_t) -1, (gid_t) -1);
}

char *harness_write_file(Harness *h, const char *name, const char *text, mode_t mode) {
        char *path = path_join(h->dir, name);

        if (!path)
                return NULL;
        if (write_file(path, text, mode) < 0)
                return mfree(path);
        return path;
}

char *harness_write_smimed_file(Harness *h, const char *name, const char *text, mode_t mode) {
        char *path = path_join(h->dir, name);

        if (!path)
                return NULL;
        if (write_file_owned(path, text, mode, h->smimed_uid, h->smimed_gid) < 0)
                return mfree(path);
        return path;
}

static int status_to_exit(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return 255;
}

/* A user a child runs as, looked up by the parent: between fork and exec
 * (maybe of a threaded test) the child calls nothing that could take a lock. */
typedef struct SpawnUser {
        uid_t uid;
        gid_t gid;
        const gid_t *groups;
        int n_groups;
        char *const *env;       /* NULL-terminated "NAME=value", or NULL */
        int umask;              /* -1: inherited */
} SpawnUser;

static SpawnUser spawn_user(const Harness *h, HarnessUser user) {
        switch (user) {
        case HARNESS_USER_TEST:
                return (SpawnUser) { .uid = h->test_uid, .gid = h->test_gid, .umask = -1 };
        case HARNESS_USER_SMIMED:
                /* As the unit: User=, Group=, the user's groups, UMask=0077. */
                return (SpawnUser) { .uid = h->smimed_uid, .gid = h->smimed_gid, .groups = h->smimed_groups,
                                     .n_groups = h->n_smimed_groups, .env = h->smimed_env, .umask = 0077 };
        case HARNESS_USER_ROOT:
        default:
                return (SpawnUser) { .uid = 0, .gid = 0, .umask = -1 };
        }
}

static int drop_privileges(const SpawnUser *u) {
        if (setgroups((size_t) u->n_groups, u->groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
            setresuid(u->uid, u->uid, u->uid) < 0)
                return -errno;
        return 0;
}

/* After a change of credentials, which clears the parent-death signal. The
 * parent may have died before it was set: then we are some reaper's child. */
static int die_with_parent(pid_t parent) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
                return -errno;
        return getppid() == parent ? 0 : -ESRCH;
}

typedef struct SpawnOptions {
        int stdout_fd;          /* -1: /dev/null */
        int stderr_fd;          /* -1: /dev/null */
        bool die_with_parent;
        const SpawnUser *user;  /* NULL: root, as the test */
        char *const *extra_env;
        uint64_t rlimit_fsize;  /* 0: inherited */
        /* NULL, or pairs "source", "target", NULL: bound over the targets
         * in a mount namespace of the child's own, nobody else sees them. */
        const char *const *bind_mounts;
        /* > 2: a listening socket given to the child as fd 3 with
         * LISTEN_FDS=1 and LISTEN_PID, as systemd's socket activation does. */
        int listen_fd;
} SpawnOptions;

static int bind_privately(const char *const *mounts) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        for (const char *const *m = mounts; m[0] && m[1]; m += 2)
                if (mount(m[0], m[1], NULL, MS_BIND, NULL) < 0)
                        return -errno;
        return 0;
}

/* The soft limit only: a test may raise it again with prlimit(). */
static int set_rlimit_fsize(uint64_t limit) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_FSIZE, &rl) < 0)
                return -errno;
        rl.rlim_cur = (rlim_t) limit;
        return setrlimit(RLIMIT_FSIZE, &rl) < 0 ? -errno : 0;
}

static pid_t spawn(char *const *argv, const SpawnOptions *o) {
        pid_t parent = getpid(), pid;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid > 0)
                return pid;

        /* child */
        {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
                    dup2(o->stdout_fd >= 0 ? o->stdout_fd : null, STDOUT_FILENO) < 0 ||
                    dup2(o->stderr_fd >= 0 ? o->stderr_fd : null, STDERR_FILENO) < 0)
                        _exit(127);
        }
        if (o->listen_fd > 2) {
                /* Formatted by hand: nothing here may take a lock. */
                static char listen_pid[32] = "LISTEN_PID=";
                char digits[16];
                size_t n = 0, at = strlen(listen_pid);

                for (pid_t p = getpid(); p > 0 && n < sizeof(digits); p /= 10)
                        digits[n++] = (char) ('0' + p % 10);
                while (n > 0)
                        listen_pid[at++] = digits[--n];
                listen_pid[at] = '\0';
                /* dup2() onto itself would keep FD_CLOEXEC. */
                if ((o->listen_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(o->listen_fd, 3)) < 0 ||
                    putenv((char *) "LISTEN_FDS=1") < 0 || putenv(listen_pid) < 0)
                        _exit(127);
        }
        /* The user's environment first: a test's extra_env may override it. */
        for (char *const *e = o->user ? o->user->env : NULL; e && *e; e++)
                if (putenv(*e) < 0)
                        _exit(127);
        for (char *const *e = o->extra_env; e && *e; e++)
                if (putenv(*e) < 0)
                        _exit(127);
        if (o->bind_mounts && bind_privately(o->bind_mounts) < 0)
                _exit(127);
        if (o->user) {
                if (o->user->umask >= 0)
                        umask((mode_t) o->user->umask);
                if (drop_privileges(o->user) < 0)
                        _exit(127);
        }
        if (o->rlimit_fsize > 0 && set_rlimit_fsize(o->rlimit_fsize) < 0)
                _exit(127);
        if (o->die_with_parent && die_with_parent(parent) < 0)
                _exit(127);

        execvp(argv[0], argv);
        {
                /* Into the child's log: most likely the user cannot reach the program. */
                static const char msg[] = "harness: cannot execute ";

                (void) !write(STDERR_FILENO, msg, sizeof(msg) - 1);
                (void) !write(STDERR_FILENO, argv[0], strlen(argv[0]));
                (void) !write(STDERR_FILENO, "\n", 1);
        }
        _exit(127);
}

static int wait_pid(pid_t pid) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return status_to_exit(status);
}

static char *read_fd_all(int fd) {
        char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t n;

                if (allocated - size < 1025) {
                        char *b = realloc(buf, allocated + 8192);
                        if (!b)
                                return mfree(buf);
                        buf = b;
                        allocated += 8192;
                }
                n = read(fd, buf + size, allocated - size - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                size += (size_t) n;
        }
        buf[size] = '\0';
        return buf;
}

int harness_run(Harness *h, char *const *argv, bool as_test_user, char **ret_stdout, char **ret_stderr) {
        return harness_run_as(h, argv, as_test_user ? HARNESS_USER_TEST : HARNESS_USER_ROOT, ret_stdout, ret_stderr);
}

/* Captures through temporary files, so a chatty child cannot fill a pipe. */
int harness_run_as(Harness *h, char *const *argv, HarnessUser user, char **ret_stdout, char **ret_stderr) {
        _cleanup_(closep) int out = -1, err = -1;
        SpawnUser u = spawn_user(h, user);
        SpawnOptions o = { .die_with_parent = true, .user = user == HARNESS_USER_ROOT ? NULL : &u };
        pid_t pid;
        int status;

        out = open(h->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        err = open(h->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (out < 0 || err < 0)
                return -errno;
        /* The user need not reach them: it writes through the inherited fds. */
        o.stdout_fd = out;
        o.stderr_fd = err;

        pid = spawn(argv, &o);
        if (pid < 0)
                return pid;
        status = wait_pid(pid);

        if (ret_stdout) {
                lseek(out, 0, SEEK_SET);
                *ret_stdout = read_fd_all(out);
        }
        if (ret_stderr) {
                lseek(err, 0, SEEK_SET);
                *ret_stderr = read_fd_all(err);
        }
        return status;
}

static int run_quietly(Harness *h, char *const *argv, HarnessUser user) {
        _cleanup_free_ char *log = path_join(h->dir, "setup.log");
        _cleanup_(closep) int fd = -1;
        SpawnUser u = spawn_user(h, user);
        SpawnOptions o = { .die_with_parent = true, .user = user == HARNESS_USER_ROOT ? NULL : &u, .stdout_fd = -1 };
        pid_t pid;
        int status;

        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        o.stdout_fd = o.stderr_fd = fd;
        pid = spawn(argv, &o);
        if (pid < 0)
                return pid;
        status = wait_pid(pid);
        if (status != 0) {
                fprintf(stderr, "harness: %s exited with %d, see %s\n", argv[0], status, log);
                return -EIO;
        }
        return 0;
}

/* The user named last in useradd_argv, created with it when absent. Test
 * binaries run in parallel, and two useradds at once both pass their check
 * for the name (made before they lock /etc/passwd): the second replaces the
 * first one's entry with new ids, after the first test took them. So one
 * look and useradd at a time, under a lock of ours; a harness without it
 * (an older tree's) may still race for smimed-test, whose ids only matter
 * for a moment. Points into getpwnam()'s storage. */
static struct passwd *ensure_user(Harness *h, char *const *useradd_argv) {
        _cleanup_(closep) int lock = -1;
        const char *name;
        struct passwd *pw;
        size_t n = 0;

        while (useradd_argv[n + 1])
                n++;
        name = useradd_argv[n];

        lock = open("/run/lock/smimed-test-useradd.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lock < 0 || flock(lock, LOCK_EX) < 0) {
                fprintf(stderr, "harness: cannot lock /run/lock/smimed-test-useradd.lock: %m\n");
                return NULL;
        }
        pw = getpwnam(name);
        if (pw)
                return pw;
        (void) run_quietly(h, useradd_argv, HARNESS_USER_ROOT);
        pw = getpwnam(name);
        if (!pw)
                fprintf(stderr, "harness: cannot create the user %s\n", name);
        return pw;
}

static int ensure_test_user(Harness *h) {
        char *const argv[] = { "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                               "--shell", "/usr/sbin/nologin", HARNESS_TEST_USER, NULL };
        struct passwd *pw = ensure_user(h, argv);

        if (!pw)
                return -ENOENT;
        h->test_uid = pw->pw_uid;
        h->test_gid = pw->pw_gid;
        return 0;
}

/* smimed's user as systemd/smimed.sysusers makes it: a system user with its
 * own group, home /var/lib/smimed, no login, and (the "m" line) a member of
 * Debian's group softhsm when that exists. */
static int ensure_smimed_user(Harness *h) {
        char *argv[16] = { "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/var/lib/smimed",
                           "--shell", "/usr/sbin/nologin", "--comment", "S/MIME key service" };
        size_t k = 10;
        struct passwd *pw;
        int n = 16;

        if (getgrnam("softhsm")) {
                argv[k++] = "--groups";
                argv[k++] = "softhsm";
        }
        argv[k++] = HARNESS_SMIMED_USER;
        argv[k] = NULL;
        pw = ensure_user(h, argv);
        if (!pw)
                return -ENOENT;
        h->smimed_uid = pw->pw_uid;
        h->smimed_gid = pw->pw_gid;

        /* HOME, USER, LOGNAME and SHELL, which systemd sets for User=. */
        h->smimed_env = calloc(5, sizeof(char *));
        if (!h->smimed_env || asprintf(&h->smimed_env[0], "HOME=%s", pw->pw_dir) < 0 ||
            asprintf(&h->smimed_env[1], "USER=%s", pw->pw_name) < 0 ||
            asprintf(&h->smimed_env[2], "LOGNAME=%s", pw->pw_name) < 0 ||
            asprintf(&h->smimed_env[3], "SHELL=%s", pw->pw_shell) < 0)
                return -ENOMEM;

        /* Its supplementary groups, as systemd's initgroups() gives them. */
        for (;;) {
                gid_t *groups = realloc(h->smimed_groups, (size_t) n * sizeof(gid_t));

                if (!groups)
                        return -ENOMEM;
                h->smimed_groups = groups;
                if (getgrouplist(HARNESS_SMIMED_USER, h->smimed_gid, h->smimed_groups, &n) >= 0)
                        break;
        }
        h->n_smimed_groups = n;
        return 0;
}

static int generate_test_key(Harness *h, char **ret_private_path) {
        _cleanup_free_ char *priv = path_join(h->dir, "test-key.p8.pem");
        EVP_PKEY *pkey;
        FILE *f;
        int ok;

        h->key_pem = path_join(h->dir, "test-key.pub.pem");
        if (!priv || !h->key_pem)
                return -ENOMEM;

        pkey = EVP_RSA_gen(2048);
        if (!pkey)
                return -EIO;

        /* For softhsm2-util to import, which runs as smimed: readable by smimed alone. */
        {
                int fd = open(priv, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

                if (fd >= 0 && fchown(fd, h->smimed_uid, h->smimed_gid) < 0) {
                        close(fd);
                        fd = -1;
                }
                f = fd >= 0 ? fdopen(fd, "w") : NULL;
                if (fd >= 0 && !f)
                        close(fd);
        }
        ok = f && PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
        if (f)
                fclose(f);
        if (ok) {
                f = fopen(h->key_pem, "we");
                ok = f && PEM_write_PUBKEY(f, pkey);
                if (f)
                        fclose(f);
        }
        EVP_PKEY_free(pkey);
        if (!ok)
                return -EIO;

        *ret_private_path = TAKE_PTR(priv);
        return 0;
}

static int random_hex(char *buf, size_t bytes) {
        unsigned char raw[32];

        if (bytes > sizeof(raw) || RAND_bytes(raw, (int) bytes) != 1)
                return -EIO;
        for (size_t i = 0; i < bytes; i++)
                sprintf(buf + 2 * i, "%02x", raw[i]);
        return 0;
}

/* The token is smimed's: its directory, and every file SoftHSM2 makes in
 * it, since softhsm2-util runs as smimed. The configuration is readable by
 * smimed's group only, as Debian's (root:softhsm 0640). */
static int setup_token(Harness *h) {
        _cleanup_free_ char *tokens = path_join(h->dir, "tokens"), *conf_text = NULL, *priv = NULL,
                            *pin_text = NULL;
        char pin_hex[17];
        int r;

        if (!tokens || mkdir(tokens, 0700) < 0 || chown(tokens, h->smimed_uid, h->smimed_gid) < 0)
                return -errno;

        if (asprintf(&conf_text, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
                     tokens) < 0)
                return -ENOMEM;
        h->softhsm_conf = path_join(h->dir, "softhsm2.conf");
        if (!h->softhsm_conf)
                return -ENOMEM;
        r = write_file_owned(h->softhsm_conf, conf_text, 0640, 0, h->smimed_gid);
        if (r < 0)
                return r;
        if (setenv("SOFTHSM2_CONF", h->softhsm_conf, 1) < 0)
                return -errno;

        r = random_hex(pin_hex, 8);
        if (r < 0)
                return r;
        if (asprintf(&h->pin, "pin-%s", pin_hex) < 0 || asprintf(&pin_text, "%s\n", h->pin) < 0)
                return -ENOMEM;
        h->pin_file = harness_write_smimed_file(h, "token-pin", pin_text, 0600);
        if (!h->pin_file)
                return -EIO;

        {
                char *const argv[] = { "softhsm2-util", "--init-token", "--free", "--label", HARNESS_TOKEN_LABEL,
                                       "--pin", h->pin, "--so-pin", "so-pin-12345", NULL };
                r = run_quietly(h, argv, HARNESS_USER_SMIMED);
                if (r < 0)
                        return r;
        }

        r = generate_test_key(h, &priv);
        if (r < 0)
                return r;
        {
                char *const argv[] = { "softhsm2-util", "--import", priv, "--token", HARNESS_TOKEN_LABEL,
                                       "--label", HARNESS_KEY_LABEL, "--id", HARNESS_KEY_ID_HEX,
                                       "--pin", h->pin, NULL };
                r = run_quietly(h, argv, HARNESS_USER_SMIMED);
                if (r < 0)
                        return r;
        }
        /* Only the token holds the private key from here on. */
        (void) unlink(priv);
        return 0;
}

int harness_new(Harness **ret) {
        _cleanup_(harness_freep) Harness *h = NULL;
        char template[] = "/tmp/smimed-test.XXXXXX";
        int r;

        if (geteuid() != 0) {
                fprintf(stderr, "harness: the integration tests run as root (they add a test user and a polkit action)\n");
                return -EPERM;
        }

        h = calloc(1, sizeof(Harness));
        if (!h)
                return -ENOMEM;
        h->dbus_pid = h->bus_log_pid = h->polkit_pid = h->smimed_pid = -1;
        h->bus_daemon = "dbus-daemon";

        if (!mkdtemp(template))
                return -errno;
        h->dir = strdup(template);
        if (!h->dir)
                return -ENOMEM;
        /* polkitd, smimed and the test user must reach the bus socket in here. */
        if (chmod(h->dir, 0755) < 0)
                return -errno;

        h->smimed_log = path_join(h->dir, "smimed.log");
        if (!h->smimed_log)
                return -ENOMEM;

        r = ensure_test_user(h);
        if (r < 0)
                return r;
        r = ensure_smimed_user(h);
        if (r < 0)
                return r;

        /* SMIMED_TEST_STORE=postgresql: the store on a PostgreSQL server of the harness's own. */
        if (streq_ptr(getenv("SMIMED_TEST_STORE"), "postgresql")) {
                r = pg_server_start(&h->store_server);
                if (r < 0)
                        return r;
        }

        /* As StateDirectory=smimed with StateDirectoryMode=0700: the store, and spool files beside it. */
        h->state_dir = path_join(h->dir, "state");
        if (!h->state_dir)
                return -ENOMEM;
        if (mkdir(h->state_dir, 0700) < 0 || chown(h->state_dir, h->smimed_uid, h->smimed_gid) < 0)
                return -errno;

        r = setup_token(h);
        if (r < 0) {
                fprintf(stderr, "harness: cannot set up the SoftHSM2 token: %s\n", strerror(-r));
                return r;
        }

        *ret = TAKE_PTR(h);
        return 0;
}

static void stop_process(pid_t *pid) {
        if (*pid <= 0)
                return;
        kill(*pid, SIGTERM);
        (void) wait_pid(*pid);
        *pid = -1;
}

static void remove_tree(const char *dir) {
        char *const argv[] = { "rm", "-rf", "--", (char *) dir, NULL };
        SpawnOptions o = { .stdout_fd = -1, .stderr_fd = -1 };
        pid_t pid = spawn(argv, &o);

        if (pid > 0)
                (void) wait_pid(pid);
}

Harness *harness_free(Harness *h) {
        if (!h)
                return NULL;

        stop_process(&h->smimed_pid);
        stop_process(&h->dbus_pid);
        stop_process(&h->bus_log_pid);
        h->store_server = pg_server_free(h->store_server);
        free(h->store_connection);
        /* polkitd has left with its bus; reap it (it is our child). */
        if (h->polkit_pid > 0) {
                kill(h->polkit_pid, SIGTERM);
                (void) wait_pid(h->polkit_pid);
        }

        if (h->dir) {
                if (getenv("SMIMED_TEST_KEEP"))
                        fprintf(stderr, "harness: kept %s\n", h->dir);
                else
                        remove_tree(h->dir);
        }

        free(h->dir);
        free(h->state_dir);
        free(h->softhsm_conf);
        if (h->pin)
                erase_and_free(h->pin);
        free(h->pin_file);
        free(h->key_pem);
        free(h->bus_address);
        free(h->smimed_log);
        for (char **e = h->smimed_env; e && *e; e++)
                free(*e);
        free(h->smimed_env);
        free(h->smimed_groups);
        return mfree(h);
}

/* Writes content to dir/name unless it is there already, atomically: test
 * binaries running in parallel may do the same at the same moment. */
static int install_file(const char *dir, const char *name, const char *content) {
        _cleanup_free_ char *path = NULL, *tmp = NULL, *have = NULL;
        int r;

        if (asprintf(&path, "%s/%s", dir, name) < 0 || asprintf(&tmp, "%s/.%s.%d", dir, name, (int) getpid()) < 0)
                return -ENOMEM;
        have = harness_read_file(path);
        if (have && streq(content, have))
                return 0;
        (void) mkdir(dir, 0755);
        r = write_file(tmp, content, 0644);
        if (r < 0)
                return r;
        if (rename(tmp, path) < 0)
                return -errno;
        return 0;
}

/* polkitd reads action files from one directory only; an action it does not
 * know is an error for every caller. The rules: the shipped example, made
 * for the test user (it may sign and decrypt as support@example.com only),
 * and one that wants authentication for interactive@example.com. They go
 * to the test's own directory, which the test's polkitd alone sees in
 * place of the system's (start_polkitd): nothing is installed on the
 * machine, and nothing is left behind. */
static int install_polkit_files(Harness *h) {
        _cleanup_free_ char *actions = path_join(h->dir, POLKIT_ACTIONS_NAME),
                            *rules = path_join(h->dir, POLKIT_RULES_NAME);
        _cleanup_free_ char *policy = harness_read_file(SMIMED_SOURCE_ROOT "/policy/org.smimed1.policy");
        _cleanup_free_ char *example = harness_read_file(SMIMED_SOURCE_ROOT "/policy/smimed-helpdesk.rules.example");
        static const char interactive[] =
                "// Installed by smimed's test harness: authentication for one address.\n"
                "polkit.addRule(function(action, subject) {\n"
                "        if (action.id == \"org.smimed1.sign\" && subject.user == \"" HARNESS_TEST_USER "\" &&\n"
                "            action.lookup(\"address\") == \"interactive@example.com\")\n"
                "                return polkit.Result.AUTH_ADMIN;\n"
                "});\n";
        char *p;
        int r;

        if (!actions || !rules)
                return -ENOMEM;
        if (!policy || !example)
                return -ENOENT;
        r = install_file(actions, "org.smimed1.policy", policy);
        if (r < 0)
                return r;

        /* "helpdesk" → the test user, everything else as shipped. */
        while ((p = strstr(example, "\"helpdesk\""))) {
                _cleanup_free_ char *edited = NULL;

                *p = '\0';
                if (asprintf(&edited, "%s\"%s\"%s", example, HARNESS_TEST_USER, p + strlen("\"helpdesk\"")) < 0)
                        return -ENOMEM;
                free(example);
                example = TAKE_PTR(edited);
        }
        r = install_file(rules, "50-smimed-test-helpdesk.rules", example);
        if (r < 0)
                return r;
        return install_file(rules, "49-smimed-test-interactive.rules", interactive);
}

static int start_dbus_daemon(Harness *h) {
        _cleanup_free_ char *log = path_join(h->dir, "dbus-daemon.log"), *address_arg = NULL;
        _cleanup_(closep) int log_fd = -1;
        int pipefd[2];
        char buf[512];
        size_t len = 0;

        if (asprintf(&address_arg, "--address=unix:path=%s/bus", h->dir) < 0)
                return -ENOMEM;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;

        log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -errno;
        }

        {
                /* --print-address writes to stdout once the bus listens. */
                char *const argv[] = { "dbus-daemon", "--config-file=" SMIMED_SOURCE_ROOT "/tests/dbus-test.conf",
                                       address_arg, "--nofork", "--nopidfile", "--print-address=1", NULL };
                SpawnOptions o = { .stdout_fd = pipefd[1], .stderr_fd = log_fd, .die_with_parent = true };

                h->dbus_pid = spawn(argv, &o);
        }
        close(pipefd[1]);
        if (h->dbus_pid < 0) {
                close(pipefd[0]);
                return h->dbus_pid;
        }

        while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len)) {
                ssize_t n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        close(pipefd[0]);
        buf[len] = '\0';
        if (!memchr(buf, '\n', len)) {
                fprintf(stderr, "harness: dbus-daemon did not start, see %s\n", log);
                return -EIO;
        }
        buf[strcspn(buf, "\n")] = '\0';

        h->bus_address = strdup(buf);
        if (!h->bus_address)
                return -ENOMEM;
        if (setenv("DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, 1) < 0)
                return -errno;
        return 0;
}

/* A reader of the journal socket dbus-broker-launch logs to (it insists on
 * one): each datagram, journal fields one a line, appended to log_fd. */
static pid_t start_bus_log_reader(int socket_fd, int log_fd) {
        pid_t parent = getpid(), pid = fork();

        if (pid != 0)
                return pid < 0 ? -errno : pid;
        /* Only the socket (as stdin) and the log (as stdout): no other fd of the test's is held open. */
        if (die_with_parent(parent) < 0 || dup2(socket_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
            close_range(3, ~0U, 0) < 0)
                _exit(127);
        for (;;) {
                static char buf[65536];
                ssize_t n = recv(STDIN_FILENO, buf, sizeof(buf) - 1, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        _exit(1);
                buf[n++] = '\n';
                (void) !write(STDOUT_FILENO, buf, (size_t) n);
        }
}

/* SMIMED_TEST_BUS=dbus-broker: dbus-broker-launch, socket-activated on the
 * harness's listening socket (it ignores <listen>), with the same
 * configuration as dbus-daemon and dbus-daemon's default of 256
 * connections per user (dbus-broker's is 64). It logs to the journal only,
 * at /run/systemd/journal/socket: in a mount namespace of its own, /run is
 * a directory of the test's whose socket the harness reads into
 * dbus-broker.log. */
static int start_dbus_broker(Harness *h) {
        _cleanup_free_ char *log = path_join(h->dir, "dbus-broker.log"), *run = path_join(h->dir, "bus-run"),
                            *run_systemd = NULL, *journal = NULL, *socket_path = path_join(h->dir, "bus"),
                            *config = NULL, *config_text = NULL, *address_env = NULL;
        _cleanup_(closep) int log_fd = -1, journal_fd = -1, listen_fd = -1;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *mounts[] = {run, "/run", NULL};
        int r;

        if (!log || !run || !socket_path || asprintf(&run_systemd, "%s/systemd", run) < 0 ||
            asprintf(&journal, "%s/journal", run_systemd) < 0)
                return -ENOMEM;
        log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return -errno;

        /* The journal's socket, read by a child of ours. */
        if (mkdir(run, 0755) < 0 || mkdir(run_systemd, 0755) < 0 || mkdir(journal, 0755) < 0)
                return -errno;
        if (strlen(journal) + strlen("/socket") >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/socket", journal);
        journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (journal_fd < 0 || bind(journal_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        h->bus_log_pid = start_bus_log_reader(journal_fd, log_fd);
        if (h->bus_log_pid < 0)
                return h->bus_log_pid;

        /* The bus socket: anyone may connect, as to dbus-daemon's. */
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memset(sa.sun_path, 0, sizeof(sa.sun_path));
        strcpy(sa.sun_path, socket_path);
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            chmod(socket_path, 0666) < 0 || listen(listen_fd, SOMAXCONN) < 0)
                return -errno;

        /* dbus-test.conf as it is, included: its relative include stays right. */
        if (asprintf(&config_text,
                     "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                     " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                     "<busconfig>\n"
                     "  <include>%s/tests/dbus-test.conf</include>\n"
                     "  <limit name=\"max_connections_per_user\">256</limit>\n"
                     "</busconfig>\n",
                     SMIMED_SOURCE_ROOT) < 0)
                return -ENOMEM;
        config = harness_write_file(h, "dbus-broker.conf", config_text, 0644);
        if (!config)
                return -EIO;
        config_text = mfree(config_text);
        if (asprintf(&config_text, "--config-file=%s", config) < 0 ||
            asprintf(&h->bus_address, "unix:path=%s", socket_path) < 0 ||
            asprintf(&address_env, "DBUS_SYSTEM_BUS_ADDRESS=%s", h->bus_address) < 0)
                return -ENOMEM;

        {
                /* The launcher also connects to the bus it serves, as its system bus. */
                char *const argv[] = {"dbus-broker-launch", "--scope", "system", config_text, NULL};
                char *const env[] = {address_env, NULL};
                SpawnOptions o = {.stdout_fd = log_fd,
                                  .stderr_fd = log_fd,
                                  .die_with_parent = true,
                                  .extra_env = env,
                                  .bind_mounts = mounts,
                                  .listen_fd = listen_fd};

                h->dbus_pid = spawn(argv, &o);
                if (h->dbus_pid < 0)
                        return h->dbus_pid;
        }
        h->bus_daemon = "dbus-broker";
        if (setenv("DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, 1) < 0)
                return -errno;

        /* Connecting succeeds at once (the socket listens); Hello is
         * answered once the broker serves it. */
        r = harness_bus_open(&bus);
        if (r < 0)
                fprintf(stderr, "harness: dbus-broker did not start: %s, see %s\n", strerror(-r), log);
        return r;
}

/* Opens a connection to the test's bus and waits until dbus-daemon has
 * authenticated it and answered Hello: sd-bus does that lazily, and
 * dbus-daemon drops a connection that is still authenticating after its
 * auth_timeout (30 s), which a slow test (under the asan setup, say) can
 * pass before its first call. */
int harness_bus_open(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer",
                               "Ping", NULL, NULL, NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* Waits until name has an owner on the bus; watches NameOwnerChanged, so no
 * polling. */
static int wait_for_name(const char *name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *match = NULL;
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        int r;

        r = harness_bus_open(&bus);
        if (r < 0)
                return r;
        if (asprintf(&match, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'",
                     name) < 0)
                return -ENOMEM;
        r = sd_bus_add_match(bus, NULL, match, NULL, NULL);
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int has_owner = 0;

                r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s", name);
                if (r < 0)
                        return r;
                r = sd_bus_message_read(reply, "b", &has_owner);
                if (r < 0)
                        return r;
                if (has_owner)
                        return 0;

                do {
                        if (now_usec() >= deadline)
                                return -ETIMEDOUT;
                        r = sd_bus_wait(bus, (uint64_t) deadline_ms(deadline) * 1000ULL);
                        if (r < 0)
                                return r;
                        r = sd_bus_process(bus, NULL);
                        if (r < 0)
                                return r;
                } while (r == 0);
        }
}

static int start_polkitd(Harness *h) {
        _cleanup_free_ char *log = path_join(h->dir, "polkitd.log");
        _cleanup_(closep) int log_fd = -1;
        _cleanup_free_ char *actions = path_join(h->dir, POLKIT_ACTIONS_NAME),
                            *rules = path_join(h->dir, POLKIT_RULES_NAME);
        char *const argv[] = { POLKITD_PATH, NULL };
        const char *mounts[] = {actions, POLKIT_ACTIONS_DIR, rules, POLKIT_RULES_DIR, NULL};
        SpawnOptions o = {.stdout_fd = -1, .bind_mounts = mounts};
        int r;

        if (!actions || !rules)
                return -ENOMEM;
        log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0)
                return -errno;
        o.stdout_fd = o.stderr_fd = log_fd;
        /* polkitd switches to its own user, which drops PDEATHSIG; it leaves
         * when its bus (a child of ours) goes away. */
        o.die_with_parent = false;

        h->polkit_pid = spawn(argv, &o);
        if (h->polkit_pid < 0)
                return h->polkit_pid;

        r = wait_for_name("org.freedesktop.PolicyKit1");
        if (r < 0)
                fprintf(stderr, "harness: polkitd did not appear on the bus: %s, see %s\n", strerror(-r), log);
        return r;
}

int harness_start_bus(Harness *h) {
        const char *bus;
        int r;

        r = install_polkit_files(h);
        if (r < 0) {
                fprintf(stderr, "harness: cannot write smimed's polkit action and test rules: %s\n", strerror(-r));
                return r;
        }

        bus = getenv("SMIMED_TEST_BUS");
        if (!bus || streq(bus, "") || streq(bus, "dbus-daemon"))
                r = start_dbus_daemon(h);
        else if (streq(bus, "dbus-broker"))
                r = start_dbus_broker(h);
        else {
                fprintf(stderr, "harness: SMIMED_TEST_BUS=%s: not dbus-daemon or dbus-broker\n", bus);
                return -EINVAL;
        }
        if (r < 0)
                return r;

        return start_polkitd(h);
}

char *harness_store_section(Harness *h) {
        char *text;

        const char *connection = h->store_connection ?: (h->store_server ? h->store_server->conninfo : NULL);

        if (connection) {
                if (asprintf(&text, "[Store]\nPath=%s/store.db\nBackend=postgresql\nConnection=%s\n", h->state_dir,
                             connection) < 0)
                        return NULL;
        } else if (asprintf(&text, "[Store]\nPath=%s/store.db\n", h->state_dir) < 0)
                return NULL;
        return text;
}

char *harness_config_text(Harness *h, const char *extra) {
        _cleanup_free_ char *store = harness_store_section(h);
        char *text;

        if (!store)
                return NULL;
        if (asprintf(&text,
                     "# written by the smimed test harness\n"
                     "[Token]\n"
                     "Module=" SOFTHSM_MODULE "\n"
                     "URI=pkcs11:token=" HARNESS_TOKEN_LABEL "\n"
                     "PINFile=%s\n"
                     "%s"
                     "[Policy]\n"
                     "Enabled=yes\n"
                     "%s",
                     h->pin_file, store, strempty(extra)) < 0)
                return NULL;
        return text;
}

static int open_notify_socket(Harness *h, char **ret_path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *path = NULL;
        _cleanup_(closep) int fd = -1;

        if (asprintf(&path, "%s/notify-%u", h->dir, ++h->n_configs) < 0)
                return -ENOMEM;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        /* Sending to it takes write access: smimed's. */
        if (chown(path, h->smimed_uid, h->smimed_gid) < 0)
                return -errno;

        *ret_path = TAKE_PTR(path);
        return TAKE_FD(fd);
}

int harness_start_smimed(Harness *h, const char *config_path, char *const *extra_env) {
        return harness_start_smimed_full(h, config_path, extra_env, NULL);
}

int harness_start_smimed_full(Harness *h, const char *config_path, char *const *extra_env,
                              const HarnessSmimedOptions *options) {
        _cleanup_free_ char *notify_path = NULL, *notify_env = NULL;
        _cleanup_(closep) int notify_fd = -1, log_fd = -1, pidfd = -1;
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        SpawnUser user = spawn_user(h, HARNESS_USER_SMIMED);
        char *env[16];
        size_t n_env = 0;

        if (h->smimed_pid > 0)
                return -EBUSY;

        notify_fd = open_notify_socket(h, &notify_path);
        if (notify_fd < 0)
                return notify_fd;
        if (asprintf(&notify_env, "NOTIFY_SOCKET=%s", notify_path) < 0)
                return -ENOMEM;
        env[n_env++] = notify_env;
        for (char *const *e = extra_env; e && *e && n_env < ELEMENTSOF(env) - 1; e++)
                env[n_env++] = *e;
        env[n_env] = NULL;

        /* Opened here, as journald would hold smimed's stdout: smimed needs no access to it. */
        log_fd = open(h->smimed_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return -errno;

        {
                /* SMIMED_TEST_WRAPPER="valgrind --leak-check=full --error-exitcode=99" runs the
                 * daemon under a checker, as smimed's user too; its findings fail
                 * harness_stop_smimed(). */
                _cleanup_free_ char *wrapper = strdup(strempty(getenv("SMIMED_TEST_WRAPPER")));
                char *argv[32];
                size_t n = 0;
                SpawnOptions o = { .stdout_fd = log_fd, .stderr_fd = log_fd, .die_with_parent = true,
                                   .user = &user, .extra_env = env,
                                   .rlimit_fsize = options ? options->rlimit_fsize : 0 };

                if (!wrapper)
                        return -ENOMEM;
                for (char *save = NULL, *w = strtok_r(wrapper, " ", &save); w && n < ELEMENTSOF(argv) - 4;
                     w = strtok_r(NULL, " ", &save))
                        argv[n++] = w;
                argv[n++] = (char *) SMIMED_BINARY;
                argv[n++] = (char *) "--config";
                argv[n++] = (char *) config_path;
                argv[n] = NULL;

                h->smimed_pid = spawn(argv, &o);
        }
        if (h->smimed_pid < 0)
                return h->smimed_pid;

        pidfd = pidfd_open(h->smimed_pid, 0);
        if (pidfd < 0)
                return -errno;

        /* Wait for READY=1 on the notify socket, or for smimed to exit. */
        for (;;) {
                struct pollfd p[2] = {
                        { .fd = notify_fd, .events = POLLIN },
                        { .fd = pidfd, .events = POLLIN },
                };
                char buf[4096];
                ssize_t n;
                int r;

                r = poll(p, 2, deadline_ms(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0) {
                        fprintf(stderr, "harness: smimed did not become ready, see %s\n", h->smimed_log);
                        return -ETIMEDOUT;
                }
                if (p[0].revents & POLLIN) {
                        n = recv(notify_fd, buf, sizeof(buf) - 1, 0);
                        if (n > 0) {
                                buf[n] = '\0';
                                if (strstr(buf, "READY=1"))
                                        return 0;
                        }
                        continue;
                }
                if (p[1].revents & POLLIN) {
                        int status = wait_pid(h->smimed_pid);

                        h->smimed_pid = -1;
                        fprintf(stderr, "harness: smimed exited with %d before it was ready, see %s\n", status,
                                h->smimed_log);
                        return -EIO;
                }
        }
}

int harness_stop_smimed(Harness *h) {
        int status;

        if (h->smimed_pid <= 0)
                return -ESRCH;
        if (kill(h->smimed_pid, SIGTERM) < 0)
                return -errno;
        status = wait_pid(h->smimed_pid);
        h->smimed_pid = -1;
        return status;
}

int harness_kill_smimed(Harness *h, int sig) {
        int status;

        if (h->smimed_pid <= 0)
                return -ESRCH;
        if (kill(h->smimed_pid, sig) < 0)
                return -errno;
        status = wait_pid(h->smimed_pid);
        h->smimed_pid = -1;
        return status;
}

size_t harness_smimed_log_size(Harness *h) {
        struct stat st;

        return stat(h->smimed_log, &st) < 0 ? 0 : (size_t) st.st_size;
}

static bool log_contains(Harness *h, size_t from, const char *needle) {
        _cleanup_free_ char *log = harness_read_file(h->smimed_log);

        return log && strlen(log) >= from && strstr(log + from, needle);
}

int harness_smimed_fds(Harness *h, unsigned *ret_n, char **ret_list) {
        _cleanup_free_ char *path = NULL, *list = NULL;
        size_t size = 0;
        struct dirent *de;
        unsigned n = 0;
        FILE *f = NULL;
        DIR *d;

        if (h->smimed_pid <= 0)
                return -ESRCH;
        if (asprintf(&path, "/proc/%d/fd", (int) h->smimed_pid) < 0)
                return -ENOMEM;
        d = opendir(path);
        if (!d)
                return -errno;
        if (ret_list) {
                f = open_memstream(&list, &size);
                if (!f) {
                        closedir(d);
                        return -ENOMEM;
                }
        }
        while ((de = readdir(d))) {
                char target[PATH_MAX] = "";
                ssize_t k;

                if (de->d_name[0] == '.')
                        continue;
                n++;
                if (!f)
                        continue;
                k = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                if (k >= 0)
                        target[k] = '\0';
                fprintf(f, "  %s -> %s\n", de->d_name, target);
        }
        closedir(d);
        if (f && fclose(f) != 0)
                return -ENOMEM;
        *ret_n = n;
        if (ret_list)
                *ret_list = TAKE_PTR(list);
        return 0;
}

int harness_wait_smimed_log(Harness *h, size_t from, const char *needle) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        _cleanup_(closep) int fd = -1;

        /* Watch first, then look: a line written in between is not missed. */
        fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (inotify_add_watch(fd, h->smimed_log, IN_MODIFY) < 0)
                return -errno;

        while (!log_contains(h, from, needle)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char buf[4096];
                int r;

                r = poll(&p, 1, deadline_ms(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0) {
                        fprintf(stderr, "harness: \"%s\" did not appear in %s\n", needle, h->smimed_log);
                        return -ETIMEDOUT;
                }
                while (read(fd, buf, sizeof(buf)) > 0)
                        ;
        }
        return 0;
}

int harness_run_as_test_user(Harness *h, int (*fn)(char *out, size_t size, void *userdata), void *userdata,
                             char **ret_out) {
        pid_t parent = getpid(), pid;
        char *shared;
        int status;
        const size_t size = 4096;

        shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared == MAP_FAILED)
                return -errno;
        shared[0] = '\0';

        pid = fork();
        if (pid < 0) {
                munmap(shared, size);
                return -errno;
        }
        if (pid == 0) {
                SpawnUser u = spawn_user(h, HARNESS_USER_TEST);

                if (drop_privileges(&u) < 0 || die_with_parent(parent) < 0)
                        _exit(127);
                _exit(fn(shared, size, userdata) & 0xff);
        }

        status = wait_pid(pid);
        shared[size - 1] = '\0';
        if (ret_out)
                *ret_out = strdup(shared);
        munmap(shared, size);
        return status;
}

/* Reads the variant at the current position of m as a string: strings as
 * they are, booleans as "true"/"false", unsigned numbers in decimal. */
static int read_variant_as_string(sd_bus_message *m, char **ret) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;

        switch (contents[0]) {
        case 's': {
                const char *s;
                r = sd_bus_message_read(m, "s", &s);
                if (r < 0)
                        return r;
                *ret = strdup(s);
                break;
        }
        case 'b': {
                int b;
                r = sd_bus_message_read(m, "b", &b);
                if (r < 0)
                        return r;
                *ret = strdup(b ? "true" : "false");
                break;
        }
        case 't': {
                uint64_t t;
                r = sd_bus_message_read(m, "t", &t);
                if (r < 0)
                        return r;
                if (asprintf(ret, "%" PRIu64, t) < 0)
                        *ret = NULL;
                break;
        }
        case 'u': {
                uint32_t u;
                r = sd_bus_message_read(m, "u", &u);
                if (r < 0)
                        return r;
                if (asprintf(ret, "%" PRIu32, u) < 0)
                        *ret = NULL;
                break;
        }
        default:
                return -EOPNOTSUPP;
        }
        if (!*ret)
                return -ENOMEM;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 0;
}

int harness_get_manager_property(sd_bus *bus, const char *property, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Properties", "Get",
                               NULL, &reply, "ss", SMIMED_MANAGER_INTERFACE, property);
        if (r < 0)
                return r;
        return read_variant_as_string(reply, ret);
}

struct PropertyWatch {
        sd_bus *bus;
        sd_bus_slot *slot;
        char *property;
        char **values;          /* every value a signal carried, in order */
        size_t n_values;
};

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        PropertyWatch *w = userdata;
        const char *interface;

        (void) error;
        if (sd_bus_message_read(m, "s", &interface) < 0 || !streq(interface, SMIMED_MANAGER_INTERFACE))
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *name;
                char *value = NULL, **values;

                if (sd_bus_message_read(m, "s", &name) < 0)
                        return 0;
                if (!streq(name, w->property)) {
                        if (sd_bus_message_skip(m, "v") < 0)
                                return 0;
                } else {
                        if (read_variant_as_string(m, &value) < 0)
                                return 0;
                        values = realloc(w->values, (w->n_values + 1) * sizeof(char *));
                        if (!values) {
                                free(value);
                                return 0;
                        }
                        w->values = values;
                        w->values[w->n_values++] = value;
                }
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

int harness_watch_manager_property(sd_bus *bus, const char *property, PropertyWatch **ret) {
        PropertyWatch *w;
        int r;

        w = calloc(1, sizeof(PropertyWatch));
        if (!w)
                return -ENOMEM;
        w->bus = sd_bus_ref(bus);
        w->property = strdup(property);
        if (!w->property) {
                property_watch_free(w);
                return -ENOMEM;
        }

        /* A match installed synchronously: no signal sent after this returns is missed. */
        r = sd_bus_match_signal(bus, &w->slot, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", on_properties_changed, w);
        if (r < 0) {
                property_watch_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

PropertyWatch *property_watch_free(PropertyWatch *w) {
        if (!w)
                return NULL;
        sd_bus_slot_unref(w->slot);
        sd_bus_unref(w->bus);
        for (size_t i = 0; i < w->n_values; i++)
                free(w->values[i]);
        free(w->values);
        free(w->property);
        return mfree(w);
}

static bool property_watch_saw(const PropertyWatch *w, const char *expected) {
        for (size_t i = 0; i < w->n_values; i++)
                if (streq(w->values[i], expected))
                        return true;
        return false;
}

int harness_watch_wait(PropertyWatch *w, const char *expected) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        int r;

        while (!property_watch_saw(w, expected)) {
                r = sd_bus_process(w->bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (now_usec() >= deadline) {
                        fprintf(stderr, "harness: no PropertiesChanged set %s to \"%s\" (%zu other values seen)\n",
                                w->property, expected, w->n_values);
                        return -ETIMEDOUT;
                }
                r = sd_bus_wait(w->bus, (uint64_t) deadline_ms(deadline) * 1000ULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

typedef struct ObjectEvent {
        char *path;
        bool added;
} ObjectEvent;

struct ObjectWatch {
        sd_bus *bus;
        sd_bus_slot *added_slot, *removed_slot;
        char *interface;
        ObjectEvent *events;
        size_t n_events;
};

static void object_watch_record(ObjectWatch *w, const char *path, bool added) {
        ObjectEvent *events = realloc(w->events, (w->n_events + 1) * sizeof(ObjectEvent));
        char *p = strdup(path);

        if (!events || !p) {
                free(p);
                if (events)
                        w->events = events;
                return;
        }
        w->events = events;
        w->events[w->n_events++] = (ObjectEvent) { .path = p, .added = added };
}

/* InterfacesAdded (oa{sa{sv}}): the interfaces are the keys of the dict. */
static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ObjectWatch *w = userdata;
        const char *path, *interface;
        bool match = false;

        (void) error;
        if (sd_bus_message_read(m, "o", &path) < 0 || sd_bus_message_enter_container(m, 'a', "{sa{sv}}") < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sa{sv}") > 0) {
                if (sd_bus_message_read(m, "s", &interface) < 0)
                        return 0;
                if (streq(interface, w->interface))
                        match = true;
                if (sd_bus_message_skip(m, "a{sv}") < 0 || sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        if (match)
                object_watch_record(w, path, true);
        return 0;
}

/* InterfacesRemoved (oas). */
static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ObjectWatch *w = userdata;
        const char *path, *interface;
        bool match = false;

        (void) error;
        if (sd_bus_message_read(m, "o", &path) < 0 || sd_bus_message_enter_container(m, 'a', "s") < 0)
                return 0;
        while (sd_bus_message_read(m, "s", &interface) > 0)
                if (streq(interface, w->interface))
                        match = true;
        if (match)
                object_watch_record(w, path, false);
        return 0;
}

int harness_watch_objects(sd_bus *bus, const char *interface, ObjectWatch **ret) {
        const char *manager;
        ObjectWatch *w;
        int r;

        w = calloc(1, sizeof(ObjectWatch));
        if (!w)
                return -ENOMEM;
        w->bus = sd_bus_ref(bus);
        w->interface = strdup(interface);
        if (!w->interface) {
                object_watch_free(w);
                return -ENOMEM;
        }
        /* Keys have an ObjectManager of their own. */
        manager = streq(interface, SMIMED_KEY_INTERFACE) ? SMIMED_KEY_PATH_PREFIX : SMIMED_MANAGER_PATH;
        r = sd_bus_match_signal(bus, &w->added_slot, SMIMED_BUS_NAME, manager, "org.freedesktop.DBus.ObjectManager",
                                "InterfacesAdded", on_interfaces_added, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &w->removed_slot, SMIMED_BUS_NAME, manager,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                                        on_interfaces_removed, w);
        if (r < 0) {
                object_watch_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

unsigned harness_objects_seen(const ObjectWatch *w, const char *path, bool added) {
        unsigned n = 0;

        for (size_t i = 0; i < w->n_events; i++)
                if (w->events[i].added == added && streq(w->events[i].path, path))
                        n++;
        return n;
}

int harness_objects_wait(ObjectWatch *w, const char *path, bool added) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        int r;

        while (harness_objects_seen(w, path, added) == 0) {
                r = sd_bus_process(w->bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (now_usec() >= deadline) {
                        fprintf(stderr, "harness: no %s for %s (%zu other signals seen)\n",
                                added ? "InterfacesAdded" : "InterfacesRemoved", path, w->n_events);
                        return -ETIMEDOUT;
                }
                r = sd_bus_wait(w->bus, (uint64_t) deadline_ms(deadline) * 1000ULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

ObjectWatch *object_watch_free(ObjectWatch *w) {
        if (!w)
                return NULL;
        sd_bus_slot_unref(w->added_slot);
        sd_bus_slot_unref(w->removed_slot);
        sd_bus_unref(w->bus);
        for (size_t i = 0; i < w->n_events; i++)
                free(w->events[i].path);
        free(w->events);
        free(w->interface);
        return mfree(w);
}
