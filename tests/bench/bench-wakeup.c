/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What one wake-up of another process costs on this machine: a D-Bus
 * Peer.Ping round trip between two processes over a socketpair (sd-bus at
 * both ends, no bus daemon), first as the scheduler places them, then both
 * on one CPU. Each round trip is two wake-ups; a Sign through smimed passes
 * about ten hand-offs (client, bus, loop, thread, worker process), so where
 * a wake-up that crosses CPUs is dear (a virtual machine), that, not
 * smimed's own work, bounds a lone client's rate. Run it before reading
 * bench-sign's 1-client ratios on a new machine.
 *
 *   bench-wakeup [CALLS]        (no root, no harness)
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "macro.h"

#define WARMUP_CALLS 1000

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* The child: answers Peer.Ping (sd-bus does by itself) until the socket closes. */
_Noreturn static void serve(int fd) {
        sd_bus *server = NULL;
        sd_id128_t id;

        if (sd_id128_randomize(&id) < 0 || sd_bus_new(&server) < 0 || sd_bus_set_fd(server, fd, fd) < 0 ||
            sd_bus_set_server(server, 1, id) < 0 || sd_bus_set_anonymous(server, 1) < 0 || sd_bus_start(server) < 0)
                _exit(EXIT_FAILURE);
        for (;;) {
                int r = sd_bus_process(server, NULL);

                if (r < 0)
                        _exit(EXIT_SUCCESS); /* the client closed its end */
                if (r == 0 && sd_bus_wait(server, UINT64_MAX) < 0)
                        _exit(EXIT_FAILURE);
        }
}

/* Mean µs of a Ping round trip to a new child process; cpu >= 0 puts both on that CPU. */
static int round_trip_usec(unsigned calls, int cpu, double *ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *client = NULL;
        int sv[2], status, r;
        uint64_t t0 = 0;
        pid_t pid;

        if (cpu >= 0) {
                cpu_set_t one;

                CPU_ZERO(&one);
                CPU_SET(cpu, &one);
                if (sched_setaffinity(0, sizeof(one), &one) < 0)
                        return -errno;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(sv[0]);
                serve(sv[1]);
        }
        close(sv[1]);

        r = sd_bus_new(&client);
        if (r >= 0)
                r = sd_bus_set_fd(client, sv[0], sv[0]);
        else
                close(sv[0]);
        if (r >= 0)
                r = sd_bus_set_anonymous(client, 1);
        if (r >= 0)
                r = sd_bus_start(client);
        for (unsigned i = 0; r >= 0 && i < WARMUP_CALLS + calls; i++) {
                if (i == WARMUP_CALLS)
                        t0 = now_usec();
                r = sd_bus_call_method(client, NULL, "/", "org.freedesktop.DBus.Peer", "Ping", NULL, NULL, "");
        }
        if (r >= 0)
                *ret = (double) (now_usec() - t0) / calls;
        client = sd_bus_flush_close_unref(client);
        (void) waitpid(pid, &status, 0);
        return r < 0 ? r : 0;
}

int main(int argc, char *argv[]) {
        unsigned calls = argc > 1 ? (unsigned) strtoul(argv[1], NULL, 10) : 20000;
        double spread = 0, one_cpu = 0;
        cpu_set_t allowed;
        int first = -1, r;

        if (calls == 0 || sched_getaffinity(0, sizeof(allowed), &allowed) < 0) {
                fprintf(stderr, "usage: bench-wakeup [CALLS]\n");
                return EXIT_FAILURE;
        }
        for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
                if (CPU_ISSET(c, &allowed))
                        first = c;

        r = round_trip_usec(calls, -1, &spread);
        if (r >= 0)
                r = round_trip_usec(calls, first, &one_cpu);
        if (r < 0) {
                fprintf(stderr, "bench-wakeup: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        printf("wakeup: Peer.Ping round trip between two processes, no bus daemon, %u calls, %d CPUs\n", calls,
               CPU_COUNT(&allowed));
        printf("wakeup: placed by the scheduler: %.1f us; both on CPU %d: %.1f us; ratio %.1f\n", spread, first,
               one_cpu, one_cpu > 0 ? spread / one_cpu : 0);
        printf("wakeup: one wake-up across CPUs costs about %.1f us more than on one CPU\n", (spread - one_cpu) / 2);
        return EXIT_SUCCESS;
}
