/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* S/MIME Decrypt of a 4 KiB message encrypted to the token's RSA-2048 key,
 * over the bus with 1 and 2 concurrent clients (each a thread with its own
 * connection), next to raw C_DecryptInit+C_Decrypt (CKM_RSA_PKCS of a
 * 32-byte value, what a CMS key transport unwraps) with the same key in the
 * same token, measured in the same run (1 and 2 threads, a session each).
 * Target: 1 client >= 0.85 of raw (issue 19's, printed beside it: >= 0.65).
 * For 1 client it also prints the time a call takes and the CPU each process
 * spent on it (bench-cpu.h).
 *
 *   bench-decrypt [SECONDS]        (as root: it starts the test harness; 3 s a figure)
 *
 * The message is encrypted by smimed's Encrypt (AES-256-CBC, RSA PKCS#1
 * v1.5 key transport: the defaults) to the certificate a bench CA issues for
 * the harness key. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "bench-cpu.h"

#define WARMUP_SECONDS 0.5

/* What the raw figure decrypts: 32 random bytes (an AES-256 key) under
 * RSA PKCS#1 v1.5 with the public key. */
static int wrap_key(EVP_PKEY *pub, unsigned char plain[32], unsigned char *ret, size_t *ret_len) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
        int ok;

        ok = ctx && RAND_bytes(plain, 32) == 1 && EVP_PKEY_encrypt_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
             EVP_PKEY_encrypt(ctx, ret, ret_len, plain, 32) > 0;
        EVP_PKEY_CTX_free(ctx);
        if (!ok) {
                fprintf(stderr, "bench: cannot encrypt with the public key\n");
                return -EIO;
        }
        return 0;
}

/* One Decrypt into a memfd: the body must come back. */
static int check_decrypt(sd_bus *bus, int encrypted) {
        _cleanup_(closep) int out = memfd_create("bench-decrypted", MFD_CLOEXEC);
        char buf[BENCH_MESSAGE_SIZE * 2];
        ssize_t n;
        int r;

        if (out < 0)
                return -errno;
        r = bench_decrypt(bus, encrypted, out);
        if (r < 0)
                return r;
        n = pread(out, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        if (!strstr(buf, "The quick brown fox")) {
                fprintf(stderr, "Decrypt: the output does not hold the message's body\n");
                return -EBADMSG;
        }
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(bench_freep) Bench *b = NULL;
        _cleanup_(bench_token_closep) BenchToken *token = NULL;
        _cleanup_(closep) int message = -1, encrypted = -1;
        static const unsigned char rsa_id[] = { 0x01 };
        unsigned char plain[32], wrapped[512];
        size_t wrapped_len = sizeof(wrapped);
        double seconds = bench_seconds_from_args(argc, argv), raw1, raw2, bus1, bus2;
        BenchCpu cpu;
        BenchBusClient client = { .method = "Decrypt" };
        BenchRawOp raw = {
                .id = rsa_id,
                .id_len = sizeof(rsa_id),
                .mechanism = CKM_RSA_PKCS,
                .decrypt = true,
        };
        EVP_PKEY *pub;
        struct stat st;
        int r;

        if (bench_new(&b) < 0)
                return EXIT_FAILURE;
        pub = pki_public_key_from_pem_file(b->harness->key_pem);
        r = pub ? wrap_key(pub, plain, wrapped, &wrapped_len) : -EIO;
        EVP_PKEY_free(pub);
        if (r < 0)
                return EXIT_FAILURE;

        message = bench_message_memfd(BENCH_ADDRESS, BENCH_MESSAGE_SIZE);
        encrypted = memfd_create("bench-encrypted", MFD_CLOEXEC);
        if (message < 0 || encrypted < 0 || bench_encrypt(b->bus, BENCH_ADDRESS, message, encrypted) < 0 ||
            fstat(encrypted, &st) < 0 || check_decrypt(b->bus, encrypted) < 0)
                return EXIT_FAILURE;
        client.input = encrypted;

        if (bench_token_open(BENCH_SOFTHSM_MODULE, HARNESS_TOKEN_LABEL, b->harness->pin, &token) < 0)
                return EXIT_FAILURE;
        raw.token = token;
        raw.data = wrapped;
        raw.data_len = wrapped_len;
        raw.expect = plain;
        raw.expect_len = sizeof(plain);

        printf("message: %d bytes, %lld encrypted; %.1f s a figure after %.1f s of warm-up\n", BENCH_MESSAGE_SIZE,
               (long long) st.st_size, seconds, WARMUP_SECONDS);

        raw1 = bench_rate(&bench_raw_ops, &raw, 1, WARMUP_SECONDS, seconds);
        if (raw1 < 0)
                return EXIT_FAILURE;
        bus1 = bench_rate_cpu(&bench_bus_client_ops, &client, 1, WARMUP_SECONDS, seconds, b->harness, &cpu);
        if (bus1 < 0)
                return EXIT_FAILURE;
        printf("decrypt rsa-2048 1 client: %.1f/s; raw C_Decrypt 1 thread: %.1f/s; ratio %.2f (target >= 0.85; issue "
               "19: >= 0.65)\n",
               bus1, raw1, bus1 / raw1);
        bench_print_time_per_op("decrypt rsa-2048 1 client", bus1, &cpu);
        fflush(stdout);
        if (bench_print_bus_ceiling("decrypt rsa-2048", raw1, WARMUP_SECONDS, seconds) < 0)
                return EXIT_FAILURE;

        bus2 = bench_rate(&bench_bus_client_ops, &client, 2, WARMUP_SECONDS, seconds);
        if (bus2 < 0)
                return EXIT_FAILURE;
        printf("decrypt rsa-2048 2 clients: %.1f/s; %.2fx the 1-client rate\n", bus2, bus2 / bus1);
        fflush(stdout);

        raw2 = bench_rate(&bench_raw_ops, &raw, 2, WARMUP_SECONDS, seconds);
        if (raw2 < 0)
                return EXIT_FAILURE;
        printf("raw C_Decrypt rsa-2048 2 threads: %.1f/s; %.2fx the 1-thread rate; 2 clients / raw 2 threads: %.2f\n",
               raw2, raw2 / raw1, bus2 / raw2);
        return harness_stop_smimed(b->harness) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
