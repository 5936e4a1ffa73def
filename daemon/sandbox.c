/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "log.h"
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif
#ifndef SANDBOX_ASAN
#define SANDBOX_ASAN 0
#endif

bool sandbox_under_asan(void) {
        return SANDBOX_ASAN;
}

/* ---- OpenSSL, before ---- */

int sandbox_init_openssl(void) {
        static const char *const digests[] = { "SHA1", "SHA224", "SHA256", "SHA384", "SHA512" };
        static const char *const ciphers[] = {
                "AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "AES-128-GCM", "AES-192-GCM", "AES-256-GCM",
                "AES-128-WRAP", "AES-192-WRAP", "AES-256-WRAP", "DES-EDE3-CBC",
        };
        static const char *const keys[] = { "RSA", "EC" };
        unsigned char seed;

        /* The configuration is the one file OpenSSL reads by itself; error
         * strings and algorithm tables are loaded, not read later. */
        if (!OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_LOAD_CRYPTO_STRINGS |
                                         OPENSSL_INIT_ADD_ALL_CIPHERS | OPENSSL_INIT_ADD_ALL_DIGESTS,
                                 NULL))
                return log_error_errno(EIO, "Cannot initialize OpenSSL.");

        /* Fetched once, so the method store holds them: nothing is looked for
         * in the sandbox. */
        for (size_t i = 0; i < ELEMENTSOF(digests); i++)
                EVP_MD_free(EVP_MD_fetch(NULL, digests[i], NULL));
        for (size_t i = 0; i < ELEMENTSOF(ciphers); i++)
                EVP_CIPHER_free(EVP_CIPHER_fetch(NULL, ciphers[i], NULL));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                EVP_KEYMGMT_free(EVP_KEYMGMT_fetch(NULL, keys[i], NULL));
        EVP_SIGNATURE_free(EVP_SIGNATURE_fetch(NULL, "RSA", NULL));
        EVP_SIGNATURE_free(EVP_SIGNATURE_fetch(NULL, "ECDSA", NULL));
        EVP_ASYM_CIPHER_free(EVP_ASYM_CIPHER_fetch(NULL, "RSA", NULL));
        EVP_KEYEXCH_free(EVP_KEYEXCH_fetch(NULL, "ECDH", NULL));
        EVP_KDF_free(EVP_KDF_fetch(NULL, "X963KDF", NULL));
        ERR_clear_error();

        /* The generators seed themselves now (getrandom() stays allowed for
         * reseeding). */
        if (RAND_bytes(&seed, 1) <= 0 || RAND_priv_bytes(&seed, 1) <= 0)
                return log_error_errno(EIO, "Cannot seed OpenSSL's random generator.");

        /* glibc reads /etc/localtime on first use. */
        tzset();
        return 0;
}

/* ---- limits and privileges ---- */

static int set_limit(int resource, rlim_t value) {
        struct rlimit rl = { .rlim_cur = value, .rlim_max = value };

        if (setrlimit(resource, &rl) < 0)
                return -errno;
        return 0;
}

/* Whether the process holds no capability at all (permitted, effective,
 * inheritable, ambient), from /proc/self/status. */
static bool without_capabilities(void) {
        static const char *const fields[] = { "CapInh:", "CapPrm:", "CapEff:", "CapAmb:" };
        char line[256];
        unsigned zero = 0;
        FILE *f;

        f = fopen("/proc/self/status", "re");
        if (!f)
                return false;
        while (fgets(line, sizeof(line), f))
                for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                        size_t n = strlen(fields[i]);

                        if (strncmp(line, fields[i], n) == 0 && strtoull(line + n, NULL, 16) == 0)
                                zero++;
                }
        fclose(f);
        return zero == ELEMENTSOF(fields);
}

/* smimed runs as its own user, without capabilities; when it (or a test)
 * runs as root, the worker still keeps none. */
static int drop_capabilities(void) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
        int r;

        for (unsigned long c = 0; c <= CAP_LAST_CAP; c++)
                (void) prctl(PR_CAPBSET_DROP, c, 0, 0, 0); /* EPERM without CAP_SETPCAP: then there are none to drop */
        (void) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        if (syscall(SYS_capset, &header, data) >= 0)
                return 0;
        r = -errno;
        /* smimed's unit forbids capset() (SystemCallFilter=~@privileged): fine
         * when there is nothing to drop. */
        return without_capabilities() ? 0 : r;
}

/* ---- seccomp ---- */

/* Allowed as they are. */
static const char *const allowed[] = {
        /* the fds it was given */
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
        "lseek", "fstat", "newfstatat", "ftruncate", "fallocate", "fsync", "fdatasync", "fcntl", "dup", "dup2",
        "dup3", "close", "copy_file_range", "sendfile",
        /* memory (mmap and mprotect below) */
        "munmap", "mremap", "brk", "madvise",
        /* threads of glibc and OpenSSL, time, randomness */
        "futex", "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
        "sched_yield", "getrandom", "restart_syscall",
        /* signals, leaving */
        "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack", "exit", "exit_group",
        /* about itself */
        "getpid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getrusage", "getrlimit",
};

/* What only an attacker asks for: the process is killed (SIGSYS). */
static const char *const killing[] = {
        "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load",
        "init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "userfaultfd",
        "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key",
        "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "fsopen", "fsmount", "fspick",
        "move_mount", "open_tree", "open_by_handle_at", "name_to_handle_at", "reboot", "swapon", "swapoff",
        "iopl", "ioperm", "pidfd_getfd", "process_madvise",
};

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n_args,
                    const struct scmp_arg_cmp *args) {
        int nr = seccomp_syscall_resolve_name(name), r;

        if (nr == __NR_SCMP_ERROR)
                return 0; /* not on this architecture */
        r = seccomp_rule_add_array(ctx, action, nr, n_args, args);
        return r == -EDOM || r == -EOPNOTSUPP ? 0 : r;
}

static int load_filter(int socket_fd) {
        const struct scmp_arg_cmp no_exec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
        const struct scmp_arg_cmp on_socket = SCMP_A0(SCMP_CMP_EQ, (uint64_t) socket_fd);
        const struct scmp_arg_cmp self = SCMP_A0(SCMP_CMP_EQ, 0);
        const struct scmp_arg_cmp own_pid = SCMP_A0(SCMP_CMP_EQ, (uint64_t) getpid());
        scmp_filter_ctx ctx;
        int r = 0;

        /* Where seccomp() itself is forbidden (smimed's unit allows only
         * @system-service), libseccomp loads the filter with prctl() and
         * cannot ask whether the kernel kills whole processes (API level 3):
         * killing the thread is the same in a worker of one thread. */
        uint32_t kill = seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL;

        ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
        if (!ctx)
                return -ENOMEM;
        /* A system call of another ABI (int 0x80, x32) gets around the table. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, kill);

        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(allowed); i++)
                r = add_rule(ctx, SCMP_ACT_ALLOW, allowed[i], 0, NULL);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(killing); i++)
                r = add_rule(ctx, kill, killing[i], 0, NULL);

        /* Memory, never executable: code is what was loaded before. */
        if (r >= 0)
                r = add_rule(ctx, SCMP_ACT_ALLOW, "mmap", 1, &no_exec);
        if (r >= 0)
                r = add_rule(ctx, SCMP_ACT_ALLOW, "mprotect", 1, &no_exec);
        /* Its socket to smimed, no other. */
        if (r >= 0 && socket_fd >= 0) {
                r = add_rule(ctx, SCMP_ACT_ALLOW, "sendmsg", 1, &on_socket);
                if (r >= 0)
                        r = add_rule(ctx, SCMP_ACT_ALLOW, "recvmsg", 1, &on_socket);
        }
        /* Its own limits (pid 0), for the CPU time of each job. */
        if (r >= 0)
                r = add_rule(ctx, SCMP_ACT_ALLOW, "prlimit64", 1, &self);
        /* abort() signals itself. */
        if (r >= 0)
                r = add_rule(ctx, SCMP_ACT_ALLOW, "tgkill", 1, &own_pid);

        if (r >= 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        return r;
}

int sandbox_enter(const SandboxLimits *limits) {
        int r;

        if (limits->memory_max > 0 && !SANDBOX_ASAN) {
                r = set_limit(RLIMIT_AS, (rlim_t) limits->memory_max);
                if (r < 0)
                        return log_error_errno(r, "Cannot limit the address space: %m");
        }
        r = set_limit(RLIMIT_NOFILE, SANDBOX_FILES_MAX);
        if (r >= 0)
                r = set_limit(RLIMIT_NPROC, 0);
        if (r >= 0)
                r = set_limit(RLIMIT_CORE, 0);
        if (r >= 0)
                r = set_limit(RLIMIT_MEMLOCK, 0);
        if (r >= 0)
                r = set_limit(RLIMIT_MSGQUEUE, 0);
        if (r < 0)
                return log_error_errno(r, "Cannot set the worker's resource limits: %m");

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return log_error_errno(errno, "Cannot make the worker undumpable without new privileges: %m");
        r = drop_capabilities();
        if (r < 0)
                return log_error_errno(r, "Cannot drop the worker's capabilities: %m");

        r = load_filter(limits->socket_fd);
        if (r < 0)
                return log_error_errno(r, "Cannot load the worker's seccomp filter: %m");
        return 0;
}

int sandbox_job_cpu_limit(unsigned seconds) {
        /* What was set last: only this function changes the limit, and a
         * request mostly finds the whole seconds used as the last one did. */
        static struct rlimit last;
        static bool set;
        struct rusage ru;
        struct rlimit rl;
        rlim_t used;

        if (set)
                rl = last;
        else if (getrlimit(RLIMIT_CPU, &rl) < 0)
                return -errno;
        if (seconds == 0)
                rl.rlim_cur = rl.rlim_max;
        else {
                if (getrusage(RUSAGE_SELF, &ru) < 0)
                        return -errno;
                /* Whole seconds used so far, rounded up: the job gets at least seconds. */
                used = (rlim_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1;
                rl.rlim_cur = used + seconds;
                if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
                        rl.rlim_cur = rl.rlim_max;
        }
        if (set && rl.rlim_cur == last.rlim_cur)
                return 0;
        if (setrlimit(RLIMIT_CPU, &rl) < 0)
                return -errno;
        last = rl;
        set = true;
        return 0;
}
