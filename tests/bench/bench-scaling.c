/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How signing scales with concurrency (issue 19): for an RSA-2048 and an EC
 * P-256 key, two tables, N = 1, 2, 4, 8, 16, 32 … up to twice the CPUs
 * (at least 1, 2, 4; the last row is 2x the CPUs when that is no power of 2):
 *
 *   raw C_Sign   N threads of this process, each on its own PKCS#11 session
 *                of the harness token (C_SignInit+C_Sign of a SHA-256 hash,
 *                as CMS signing hands the token);
 *   smimed Sign  N concurrent clients, each a thread with its own bus
 *                connection, signing a 4 KiB message (as bench-sign).
 *
 * Columns: ops/s; the ratio to the 1-thread (1-client) figure; for Sign the
 * ratio to raw C_Sign at the same N; and the CPU spent over the measured
 * seconds, in % of one CPU as top(1) shows it (from utime+stime in
 * /proc/PID/stat): smimed (all its threads and its smimed-worker processes),
 * of that its loop thread and its worker processes, the bus daemon
 * (dbus-daemon, or dbus-broker-launch and dbus-broker), the clients (this
 * process), and the whole machine's busy share of all its CPUs. smimed's loop
 * and the bus are one thread each: one near 100 % is the serial cap.
 *
 * After each table two lines: what a Sign costs the loop and the bus at
 * their busiest, and the rate at which either would be a whole CPU; and, at
 * N = the CPUs, the CPU an operation of raw C_Sign and of a Sign (all the
 * processes it passes through). Where the CPUs are the limit, their ratio
 * bounds Sign / raw at N = the CPUs on a machine of any size (issue 19's
 * targets there: >= 0.9 RSA, >= 0.7 EC).
 *
 *   bench-scaling [SECONDS [KEY]]  (as root: it starts the test harness; 3 s a
 *                                  figure after 0.5 s of warm-up; KEY rsa-2048
 *                                  or ec-p256: that key only)
 *
 * smimed runs with [Token] Workers= the number of CPUs (its default, set
 * explicitly). SMIMED_TEST_BUS=dbus-broker measures behind dbus-broker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "bench-cpu.h"

#define WARMUP_SECONDS 0.5
/* Each client is a connection of root's: both buses allow 256 a user. */
#define MAX_CLIENTS 240
#define MAX_ROWS 16

/* DER of DigestInfo { sha256, NULL } up to the 32 bytes of the hash. */
static const unsigned char sha256_digest_info[] = {
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};

typedef struct KeyUnderTest {
        const char *name; /* "rsa-2048" */
        const char *address;
        const unsigned char *id;
        size_t id_len;
        EVP_PKEY *pub;
        double target; /* issue 19: at N = the CPUs, Sign / raw C_Sign */
} KeyUnderTest;

/* Where the CPUs are the limit: raw C_Sign with every CPU busy does one
 * operation per raw_us of CPU, smimed one Sign per the CPU of all the
 * processes a Sign passes through. On any number of CPUs that keeps their
 * ratio under raw_us / that, however well each part scales. */
static void print_cpu_bound(const KeyUnderTest *k, unsigned n, double raw_us, double raw_busy, const BenchCpu *c,
                            double rate) {
        double smimed = bench_cpu_us_per_op(c->smimed, rate), bus = bench_cpu_us_per_op(c->bus, rate),
               client = bench_cpu_us_per_op(c->clients, rate), all = smimed + bus + client;

        if (raw_us <= 0 || all <= 0)
                return;
        printf("%s CPU an operation at N = %u (the CPUs): raw C_Sign %.0f us (its threads %.0f %% of a CPU); smimed "
               "Sign %.0f us (smimed %.0f, of it its loop %.0f and its worker processes %.0f; the bus %.0f; the "
               "client %.0f), %.1fx raw's. Where raw keeps every CPU busy, Sign at N = the CPUs reaches at most "
               "%.2f of raw on any number of CPUs (target >= %.2f)\n",
               k->name, n, raw_us, raw_busy, all, smimed, bench_cpu_us_per_op(c->loop, rate),
               bench_cpu_us_per_op(c->workers, rate), bus, client, all / raw_us, raw_us / all, k->target);
}

static int bench_key(Bench *b, BenchToken *token, const KeyUnderTest *k, const unsigned *ns, size_t n_ns,
                     unsigned cpus, double seconds) {
        _cleanup_(closep) int message = bench_message_memfd(k->address, BENCH_MESSAGE_SIZE);
        unsigned char data[sizeof(sha256_digest_info) + SHA256_DIGEST_LENGTH];
        bool rsa = EVP_PKEY_get_base_id(k->pub) == EVP_PKEY_RSA;
        BenchBusClient client = {.method = "Sign", .sender = k->address};
        BenchRawOp raw = {
                .token = token,
                .id = k->id,
                .id_len = k->id_len,
                .mechanism = rsa ? CKM_RSA_PKCS : CKM_ECDSA,
        };
        double raw_rates[MAX_ROWS], raw_busy[MAX_ROWS], sign1 = 0, at_cpus_rate = 0, peak_loop = 0, peak_bus = 0,
                                                        peak_loop_rate = 0, peak_bus_rate = 0;
        unsigned peak_loop_n = 0, peak_bus_n = 0;
        size_t at_cpus = 0; /* the row of the largest N up to the CPUs */
        BenchCpu at_cpus_cpu = {};
        int r;

        for (size_t i = 0; i < n_ns; i++)
                if (ns[i] <= cpus)
                        at_cpus = i;

        if (message < 0)
                return message;
        client.input = message;

        memcpy(data, sha256_digest_info, sizeof(sha256_digest_info));
        SHA256((const unsigned char *) "smimed bench", 12, data + sizeof(sha256_digest_info));
        raw.data = rsa ? data : data + sizeof(sha256_digest_info);
        raw.data_len = rsa ? sizeof(data) : SHA256_DIGEST_LENGTH;

        r = bench_raw_check_signature(&raw, k->pub);
        if (r < 0)
                return r;
        /* One Sign before any figure: the first one loads what later ones reuse. */
        {
                _cleanup_(closep) int out = bench_memfd_copy(message);

                r = out < 0 ? out : bench_sign(b->bus, k->address, message, out);
                if (r < 0)
                        return r;
        }

        printf("\n%s: raw C_Sign, N threads of this process, a PKCS#11 session each\n", k->name);
        printf("%7s %10s %7s %9s %9s\n", "threads", "ops/s", "x1", "process%", "machine%");
        fflush(stdout);
        for (size_t i = 0; i < n_ns; i++) {
                BenchCpu c;

                raw_rates[i] = bench_rate_cpu(&bench_raw_ops, &raw, ns[i], WARMUP_SECONDS, seconds, b->harness, &c);
                if (raw_rates[i] < 0)
                        return (int) raw_rates[i];
                raw_busy[i] = c.clients;
                printf("%7u %10.1f %7.2f %9.0f %9.0f\n", ns[i], raw_rates[i], raw_rates[i] / raw_rates[0], c.clients,
                       c.machine);
                fflush(stdout);
        }

        printf("\n%s: smimed Sign of a %d-byte message, N clients (a thread and a bus connection each)\n", k->name,
               BENCH_MESSAGE_SIZE);
        printf("%7s %10s %7s %7s %8s %7s %9s %7s %9s %9s\n", "clients", "ops/s", "x1", "/raw", "smimed%", "loop%",
               "workers%", "bus%", "clients%", "machine%");
        fflush(stdout);
        for (size_t i = 0; i < n_ns; i++) {
                BenchCpu c;
                double rate =
                        bench_rate_cpu(&bench_bus_client_ops, &client, ns[i], WARMUP_SECONDS, seconds, b->harness, &c);

                if (rate < 0)
                        return (int) rate;
                if (i == 0)
                        sign1 = rate;
                if (i == at_cpus) {
                        at_cpus_rate = rate;
                        at_cpus_cpu = c;
                }
                printf("%7u %10.1f %7.2f %7.2f %8.0f %7.0f %9.0f %7.0f %9.0f %9.0f\n", ns[i], rate, rate / sign1,
                       rate / raw_rates[i], c.smimed, c.loop, c.workers, c.bus, c.clients, c.machine);
                fflush(stdout);
                if (c.loop > peak_loop) {
                        peak_loop = c.loop;
                        peak_loop_n = ns[i];
                        peak_loop_rate = rate;
                }
                if (c.bus > peak_bus) {
                        peak_bus = c.bus;
                        peak_bus_n = ns[i];
                        peak_bus_rate = rate;
                }
        }
        /* One thread each: at its CPU time a message, 100 % of a CPU is the most Sign can reach. */
        if (peak_loop > 0 && peak_bus > 0)
                printf("%s serial parts at their busiest: smimed's loop thread %.0f %% of a CPU (%u clients), %.0f us "
                       "a message, which alone caps Sign at %.0f/s; %s %.0f %% (%u clients), %.0f us a message, "
                       "cap %.0f/s\n",
                       k->name, peak_loop, peak_loop_n, bench_cpu_us_per_op(peak_loop, peak_loop_rate),
                       peak_loop_rate * 100 / peak_loop, b->harness->bus_daemon, peak_bus, peak_bus_n,
                       bench_cpu_us_per_op(peak_bus, peak_bus_rate), peak_bus_rate * 100 / peak_bus);
        print_cpu_bound(k, ns[at_cpus], bench_cpu_us_per_op(raw_busy[at_cpus], raw_rates[at_cpus]), raw_busy[at_cpus],
                        &at_cpus_cpu, at_cpus_rate);
        fflush(stdout);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(bench_freep) Bench *b = NULL;
        _cleanup_(bench_token_closep) BenchToken *token = NULL;
        _cleanup_(pki_cert_freep) PkiCert *ec_leaf = NULL;
        _cleanup_free_ char *extra = NULL;
        static const unsigned char rsa_id[] = {0x01};
        unsigned char ec_id[64];
        size_t ec_id_len = 0, n_ns = 0;
        EVP_PKEY *rsa_pub = NULL, *ec_pub = NULL;
        double seconds = bench_seconds_from_args(argc, argv);
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned ns[MAX_ROWS], max_n;
        bool capped = false;
        int r;

        if (argc > 2 && !streq(argv[2], "rsa-2048") && !streq(argv[2], "ec-p256")) {
                fprintf(stderr, "bench-scaling: KEY is rsa-2048 or ec-p256, not %s\n", argv[2]);
                return EXIT_FAILURE;
        }
        if (cpus < 1)
                cpus = 1;
        /* 1, 2, 4, 8 … up to 2x the CPUs, at least up to 4. */
        max_n = cpus * 2 > 4 ? (unsigned) cpus * 2 : 4;
        if (max_n > MAX_CLIENTS) {
                max_n = MAX_CLIENTS;
                capped = true;
        }
        for (unsigned n = 1; n <= max_n && n_ns < MAX_ROWS - 1; n *= 2)
                ns[n_ns++] = n;
        if (ns[n_ns - 1] < max_n)
                ns[n_ns++] = max_n;

        /* Workers= is [Token]'s; a second [Token] section adds to the first. */
        if (asprintf(&extra, "[Token]\nWorkers=%ld\n", cpus) < 0)
                return EXIT_FAILURE;
        if (bench_new_full(&b, extra) < 0)
                return EXIT_FAILURE;
        rsa_pub = pki_public_key_from_pem_file(b->harness->key_pem);
        if (!rsa_pub)
                return EXIT_FAILURE;
        if (bench_generate_key(b->bus, BENCH_EC_ADDRESS, "ec-p256", ec_id, &ec_id_len, &ec_pub) < 0 ||
            bench_issue_leaf(b, BENCH_EC_ADDRESS, ec_pub, &ec_leaf) < 0)
                return EXIT_FAILURE;

        /* Opened after GenerateKey, so that this process's SoftHSM2 sees the EC key. */
        if (bench_token_open(BENCH_SOFTHSM_MODULE, HARNESS_TOKEN_LABEL, b->harness->pin, &token) < 0)
                return EXIT_FAILURE;

        printf("bench-scaling: behind %s (SMIMED_TEST_BUS=%s); %ld CPUs, smimed Workers=%ld; %.1f s a figure "
               "after %.1f s of warm-up\n",
               b->harness->bus_daemon, getenv("SMIMED_TEST_BUS") ?: "", cpus, cpus, seconds, WARMUP_SECONDS);
        printf("CPU columns: %% of one CPU over the measured seconds (utime+stime); smimed%% is all of smimed with "
               "its "
               "worker processes, loop%% its loop thread, workers%% its smimed-worker processes, bus%% the bus "
               "daemon, clients%% this process; machine%%: busy share of all CPUs, other work included\n");
        if (capped)
                printf("N capped at %u clients: each is a connection of root's, and both buses allow 256 a user\n",
                       MAX_CLIENTS);
        fflush(stdout);

        {
                const KeyUnderTest keys[] = {
                        {"rsa-2048", BENCH_ADDRESS, rsa_id, sizeof(rsa_id), rsa_pub, 0.9},
                        {"ec-p256", BENCH_EC_ADDRESS, ec_id, ec_id_len, ec_pub, 0.7},
                };

                r = 0;
                for (size_t i = 0; i < ELEMENTSOF(keys) && r >= 0; i++)
                        if (argc <= 2 || streq(argv[2], keys[i].name))
                                r = bench_key(b, token, &keys[i], ns, n_ns, (unsigned) cpus, seconds);
        }
        EVP_PKEY_free(rsa_pub);
        EVP_PKEY_free(ec_pub);
        if (r < 0)
                return EXIT_FAILURE;
        return harness_stop_smimed(b->harness) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
