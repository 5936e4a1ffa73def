/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a mail app that shells out pays: `openssl cms -sign` with the PKCS#11
 * engine and the token's RSA-2048 key, started once per 4 KiB message, next
 * to smimed's Sign of the same message with the same key over the bus.
 *
 *   bench-cli [RUNS] [SECONDS]    (as root: it starts the test harness;
 *                                  20 CLI runs, smimed measured for 3 s)
 *
 * The CLI's only way to the PIN is the URI's pin-value; PKCS11_MODULE_PATH
 * points the engine at SoftHSM2 directly (not at p11-kit-proxy and every
 * module it would load), the CLI's best case. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench-util.h"

#define WARMUP_SECONDS 0.5
#define DEFAULT_RUNS 20

/* One `openssl cms -sign` to out; prints its stderr when it fails. */
static int cli_sign(Harness *h, const char *uri, const char *signer, const char *in, const char *out) {
        char *const argv[] = { "openssl", "cms",  "-sign",   "-engine", "pkcs11", "-keyform", "engine",
                               "-inkey",  (char *) uri, "-signer", (char *) signer, "-in", (char *) in,
                               "-out",    (char *) out, NULL };
        _cleanup_free_ char *err = NULL;
        int r;

        r = harness_run(h, argv, false, NULL, &err);
        if (r != 0) {
                fprintf(stderr, "openssl cms -sign exited with %d:\n%s", r, strempty(err));
                return r < 0 ? r : -EIO;
        }
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(bench_freep) Bench *b = NULL;
        _cleanup_free_ char *uri = NULL, *signer = NULL, *in = NULL, *out = NULL, *leaf_pem = NULL,
                            *body = NULL, *signed_text = NULL;
        _cleanup_(closep) int message = -1;
        unsigned long runs = argc > 1 ? strtoul(argv[1], NULL, 10) : DEFAULT_RUNS;
        double seconds = bench_seconds_from_args(argc - 1, argv + 1), cli, smimed;
        BenchBusClient client = { .method = "Sign", .sender = BENCH_ADDRESS };
        uint64_t start, elapsed;
        ssize_t n;

        if (runs == 0)
                runs = DEFAULT_RUNS;
        if (bench_new(&b) < 0)
                return EXIT_FAILURE;

        message = bench_message_memfd(BENCH_ADDRESS, BENCH_MESSAGE_SIZE);
        body = calloc(1, BENCH_MESSAGE_SIZE + 1);
        if (message < 0 || !body)
                return EXIT_FAILURE;
        n = pread(message, body, BENCH_MESSAGE_SIZE, 0);
        leaf_pem = pki_cert_pem(b->leaf);
        if (n != BENCH_MESSAGE_SIZE || !leaf_pem)
                return EXIT_FAILURE;
        in = harness_write_file(b->harness, "message.eml", body, 0644);
        signer = harness_write_file(b->harness, "signer.pem", leaf_pem, 0644);
        out = harness_write_file(b->harness, "cli-signed.eml", "", 0644);
        if (!in || !signer || !out ||
            asprintf(&uri, "pkcs11:token=%s;id=%%%s;type=private;pin-value=%s", HARNESS_TOKEN_LABEL,
                     HARNESS_KEY_ID_HEX, b->harness->pin) < 0)
                return EXIT_FAILURE;
        if (setenv("PKCS11_MODULE_PATH", BENCH_SOFTHSM_MODULE, 1) < 0)
                return EXIT_FAILURE;

        /* Once to a file, to see that the CLI really signs. */
        if (cli_sign(b->harness, uri, signer, in, out) < 0)
                return EXIT_FAILURE;
        signed_text = harness_read_file(out);
        if (!signed_text || !strstr(signed_text, "multipart/signed") || !strstr(signed_text, "pkcs7-signature")) {
                fprintf(stderr, "openssl cms -sign: %s is not a signed message\n", out);
                return EXIT_FAILURE;
        }

        start = bench_now_usec();
        for (unsigned long i = 0; i < runs; i++)
                if (cli_sign(b->harness, uri, signer, in, "/dev/null") < 0)
                        return EXIT_FAILURE;
        elapsed = bench_now_usec() - start;
        cli = (double) runs * 1e6 / (double) elapsed;
        printf("cli openssl cms -sign -engine pkcs11 rsa-2048: %.1f/s (%lu runs, %.1f ms each)\n", cli, runs,
               (double) elapsed / 1000.0 / (double) runs);
        fflush(stdout);

        client.input = message;
        smimed = bench_rate(&bench_bus_client_ops, &client, 1, WARMUP_SECONDS, seconds);
        if (smimed < 0)
                return EXIT_FAILURE;
        printf("sign rsa-2048 1 client (smimed): %.1f/s (%.1f s)\n", smimed, seconds);
        printf("ratio smimed/cli: %.1f\n", smimed / cli);
        return harness_stop_smimed(b->harness) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
