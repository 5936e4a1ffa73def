/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The confinement of a smimed-worker: resource limits, no new privileges,
 * no capabilities, not dumpable, and a seccomp allowlist that leaves reading
 * and writing the fds it was given, memory (never executable), its own
 * socket to smimed, time, randomness and its own CPU limit. Opening files,
 * sockets, forking and the like fail with EPERM; execve(), ptrace() and
 * other calls only an attacker makes kill the process (SIGSYS). No bus, no
 * token. */

/* RLIMIT_NOFILE in the sandbox. */
#define SANDBOX_FILES_MAX 64U

typedef struct SandboxLimits {
        uint64_t memory_max;    /* RLIMIT_AS in bytes; 0: none (and none in AddressSanitizer builds) */
        int socket_fd;          /* the socket to smimed: sendmsg()/recvmsg() on it only */
} SandboxLimits;

/* Everything OpenSSL would open or load later, done now: its configuration,
 * error strings, the algorithms a worker uses, the random generator. Call
 * before sandbox_enter(). */
int sandbox_init_openssl(void);

/* Confines the calling process (meant for a single-threaded one) for good.
 * 0 or a negative errno; on failure the process may be half confined and
 * should exit. */
int sandbox_enter(const SandboxLimits *limits);

/* Lets the process use seconds more of CPU time from now (RLIMIT_CPU soft
 * limit; SIGXCPU past it); 0: no limit. For one job at a time. */
int sandbox_job_cpu_limit(unsigned seconds);

/* Whether this is an AddressSanitizer build (no RLIMIT_AS then: its shadow
 * memory is terabytes of address space). */
bool sandbox_under_asan(void);
