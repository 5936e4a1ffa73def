/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A large message through Sign and Encrypt: time, and how far the daemon's
 * peak RSS (VmHWM) grows next to the message size. The target: growth under
 * 16 MiB for a 50 MiB message, i.e. memory does not follow message size.
 *
 *   bench-large [MiB]        (as root: it starts the test harness)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/rand.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"

#define TARGET_GROWTH_KIB (16ULL * 1024ULL)

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static uint64_t peak_rss_kib(pid_t pid) {
        char path[64], line[256];
        uint64_t kib = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %" SCNu64 " kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

static int import_pem(sd_bus *bus, const char *pem, bool trust) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "ImportCertificates");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', pem, strlen(pem));
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, NULL);
        if (r < 0)
                fprintf(stderr, "ImportCertificates: %s\n", e.message ? e.message : strerror(-r));
        return r;
}

/* A message of about size bytes: headers and a base64 attachment. */
static int make_message(size_t size) {
        static const char head[] = "From: Bench <bench@example.com>\nTo: bench@example.com\nSubject: large\n"
                                   "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n";
        unsigned char raw[57];
        char line[80];
        int fd = memfd_create("bench-message", MFD_CLOEXEC);
        FILE *f;

        if (fd < 0)
                return -errno;
        f = fdopen(dup(fd), "w");
        if (!f)
                return -errno;
        fputs(head, f);
        for (size_t written = sizeof(head); written < size; written += 77) {
                RAND_bytes(raw, sizeof(raw));
                EVP_EncodeBlock((unsigned char *) line, raw, sizeof(raw));
                fprintf(f, "%s\n", line);
        }
        fclose(f);
        return fd;
}

/* Sign or Encrypt the message to /dev/null; returns microseconds. */
static int64_t run(sd_bus *bus, const char *method, int message) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(closep) int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
        uint64_t start = now_usec();
        int r;

        lseek(message, 0, SEEK_SET);
        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           method);
        if (r >= 0 && streq(method, "Sign"))
                r = sd_bus_message_append(m, "shha{sv}", "bench@example.com", message, out, 0);
        else if (r >= 0)
                r = sd_bus_message_append(m, "ashha{sv}", 1, "bench@example.com", message, out, 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, 600ULL * 1000000ULL, &e, NULL);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", method, e.message ? e.message : strerror(-r));
                return -1;
        }
        return (int64_t) (now_usec() - start);
}

int main(int argc, char *argv[]) {
        _cleanup_(harness_freep) Harness *h = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(pki_cert_freep) PkiCert *root = NULL, *leaf = NULL;
        _cleanup_free_ char *text = NULL, *config = NULL, *root_pem = NULL, *leaf_pem = NULL;
        _cleanup_(closep) int small = -1, large = -1;
        const char *san[] = { "bench@example.com", NULL };
        size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 50;
        PkiCertOptions o;

        if (harness_new(&h) < 0 || harness_start_bus(h) < 0)
                return 1;
        text = harness_config_text(h, "MaxMessageSize=1G\n");
        config = harness_write_file(h, "smimed.conf", text, 0644);
        if (harness_start_smimed(h, config, NULL) < 0 || harness_bus_open(&bus) < 0)
                return 1;

        /* A certificate for the harness token's key: the signer and the recipient. */
        root = pki_root_ca("Bench Root");
        pki_cert_options_init(&o);
        o.common_name = "Bench";
        o.san_emails = san;
        o.key = pki_public_key_from_pem_file(h->key_pem);
        leaf = pki_cert_new(&o, root);
        root_pem = pki_cert_pem(root);
        leaf_pem = pki_cert_pem(leaf);
        if (!leaf || import_pem(bus, root_pem, true) < 0 || import_pem(bus, leaf_pem, false) < 0)
                return 1;

        small = make_message(64 * 1024);
        large = make_message(mib * 1024 * 1024);
        if (small < 0 || large < 0)
                return 1;

        /* Warm up: the first signature loads the engine and the key. */
        if (run(bus, "Sign", small) < 0 || run(bus, "Encrypt", small) < 0)
                return 1;

        printf("message size: %zu MiB\n", mib);
        for (int i = 0; i < 2; i++) {
                const char *method = i == 0 ? "Sign" : "Encrypt";
                uint64_t before = peak_rss_kib(h->smimed_pid), after;
                int64_t usec = run(bus, method, large);

                if (usec < 0)
                        return 1;
                after = peak_rss_kib(h->smimed_pid);
                printf("%s: %.2f s, %.1f MiB/s; peak RSS %.1f MiB -> %.1f MiB, growth %.1f MiB "
                       "(%.2f of the message; target < 16 MiB: %s)\n",
                       method, usec / 1e6, (double) mib / (usec / 1e6), before / 1024.0, after / 1024.0,
                       (after - before) / 1024.0, (after - before) / 1024.0 / (double) mib,
                       after - before < TARGET_GROWTH_KIB ? "met" : "MISSED");
        }
        return 0;
}
