/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Listing a store of N certificates (default 100,000):
 *   - `smimectl list --limit 50` wall time, and ListCertificates (limit 50)
 *     directly, best of several runs;
 *   - the latency of GetCapabilities for one address alone, and while a
 *     ListCertificates with a status filter (which validates every
 *     certificate) runs on another connection: median, 99th percentile and
 *     worst, and their ratios.
 *
 *   bench-list [N]        (as root: it starts the test harness)
 *
 * Every certificate is issued by one EC P-256 root for one EC key; they reach
 * smimed with ImportCertificates in PEM batches of 1000. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"

#define BATCH 1000
#define RUNS 5
#define MAX_SAMPLES 100000
#define IMPORT_TIMEOUT_USEC (600ULL * 1000000ULL)

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

typedef struct Pki {
        PkiCert *root;
        EVP_PKEY *leaf_key;
} Pki;

static int make_leaf_pem(const Pki *p, const char *address, BIO *out) {
        _cleanup_(pki_cert_freep) PkiCert *c = NULL;
        const char *san[] = {address, NULL};
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = address;
        o.san_emails = san;
        o.key = p->leaf_key;
        c = pki_cert_new(&o, p->root);
        if (!c || !PEM_write_bio_X509(out, c->x509))
                return -EIO;
        return 0;
}

static int import_pem(sd_bus *bus, const char *pem, size_t len, bool trust) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "ImportCertificates");
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', pem, len);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, IMPORT_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                fprintf(stderr, "ImportCertificates: %s: %s\n", e.name, e.message);
        return r;
}

/* Imports leaves named prefix<first>…prefix<first+n-1>@example.com. */
static int import_leaves(sd_bus *bus, const Pki *p, const char *prefix, unsigned first, unsigned n) {
        for (unsigned done = 0; done < n;) {
                unsigned k = n - done < BATCH ? n - done : BATCH;
                BIO *bio = BIO_new(BIO_s_mem());
                char *data;
                long len;
                int r = 0;

                if (!bio)
                        return -ENOMEM;
                for (unsigned i = 0; i < k && r >= 0; i++) {
                        char address[64];

                        snprintf(address, sizeof(address), "%s%u@example.com", prefix, first + done + i);
                        r = make_leaf_pem(p, address, bio);
                }
                if (r >= 0) {
                        len = BIO_get_mem_data(bio, &data);
                        r = import_pem(bus, data, (size_t) len, false);
                }
                BIO_free(bio);
                if (r < 0)
                        return r;
                done += k;
        }
        return 0;
}

static int list_call_new(sd_bus *bus, uint32_t limit, const char *status, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "ListCertificates");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "limit", "u", limit);
        if (r >= 0 && status)
                r = sd_bus_message_append(m, "{sv}", "status", "s", status);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static int64_t time_list(sd_bus *bus, uint32_t limit, const char *status, uint64_t *ret_total) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t start, end;
        int r;

        r = list_call_new(bus, limit, status, &m);
        if (r < 0)
                return r;
        start = now_usec();
        r = sd_bus_call(bus, m, IMPORT_TIMEOUT_USEC, &e, &reply);
        end = now_usec();
        if (r < 0) {
                fprintf(stderr, "ListCertificates: %s: %s\n", e.name, e.message);
                return r;
        }
        r = sd_bus_message_skip(reply, "a(osassstsbbb)");
        if (r >= 0)
                r = sd_bus_message_read(reply, "t", ret_total);
        if (r < 0)
                return r;
        return (int64_t) (end - start);
}

static int64_t time_capabilities(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t start = now_usec();
        int r;

        r = sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GetCapabilities",
                               &e, &reply, "sasa{sv}", "", 1, "filler7@example.com", 0);
        if (r < 0) {
                fprintf(stderr, "GetCapabilities: %s: %s\n", e.name, e.message);
                return r;
        }
        return (int64_t) (now_usec() - start);
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

        return x < y ? -1 : x > y;
}

typedef struct Stats {
        double median_ms, p99_ms, max_ms;
        size_t n;
} Stats;

static Stats stats_of(int64_t *samples, size_t n) {
        qsort(samples, n, sizeof(int64_t), cmp_i64);
        return (Stats){.median_ms = samples[n / 2] / 1000.0,
                       .p99_ms = samples[n * 99 / 100] / 1000.0,
                       .max_ms = samples[n - 1] / 1000.0,
                       .n = n};
}

static int on_list_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int *done = userdata;

        (void) error;
        if (sd_bus_message_is_method_error(m, NULL)) {
                fprintf(stderr, "ListCertificates: %s\n", sd_bus_message_get_error(m)->message);
                *done = -1;
        } else
                *done = 1;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(harness_freep) Harness *h = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL, *bus2 = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_free_ char *config = NULL, *text = NULL, *root_pem = NULL;
        _cleanup_free_ int64_t *samples = calloc(MAX_SAMPLES, sizeof(int64_t));
        Pki p = {};
        unsigned long big = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
        int64_t best_cli = INT64_MAX, best_list = INT64_MAX, t, scan;
        uint64_t t0, total = 0;
        Stats alone, during;
        size_t n = 0;
        int done = 0, r;

        if (big < 100 || !samples) {
                fprintf(stderr, "usage: %s [N]   (N >= 100 certificates)\n", argv[0]);
                return 2;
        }
        if (harness_new(&h) < 0 || harness_start_bus(h) < 0)
                return 1;
        text = harness_config_text(h, NULL);
        config = text ? harness_write_file(h, "smimed.conf", text, 0644) : NULL;
        if (!config || harness_start_smimed(h, config, NULL) < 0)
                return 1;
        if (harness_bus_open(&bus) < 0 || harness_bus_open(&bus2) < 0)
                return 1;
        {
                PkiCertOptions o;

                pki_cert_options_init(&o);
                o.common_name = "Bench Root";
                o.is_ca = true;
                o.not_after_days = 3650;
                o.key = pki_key_ec();
                p.root = o.key ? pki_cert_new(&o, NULL) : NULL;
                EVP_PKEY_free(o.key);
                p.leaf_key = pki_key_ec();
        }
        root_pem = p.root ? pki_cert_pem(p.root) : NULL;
        if (!root_pem || !p.leaf_key || import_pem(bus, root_pem, strlen(root_pem), true) < 0)
                return 1;
        t0 = now_usec();
        if (import_leaves(bus, &p, "filler", 0, (unsigned) big - 1) < 0)
                return 1;
        fprintf(stderr, "(filled the store to %lu certificates in %.1f s)\n", big,
                (double) (now_usec() - t0) / 1000000.0);

        for (int i = 0; i < RUNS; i++) {
                char *argv_cli[] = {(char *) SMIMECTL_BINARY, (char *) "list", (char *) "--limit", (char *) "50",
                                    NULL};
                _cleanup_free_ char *out = NULL;

                t0 = now_usec();
                if (harness_run(h, argv_cli, false, &out, NULL) != 0)
                        return 1;
                t = (int64_t) (now_usec() - t0);
                best_cli = t < best_cli ? t : best_cli;
                t = time_list(bus, 50, NULL, &total);
                if (t < 0)
                        return 1;
                best_list = t < best_list ? t : best_list;
        }
        printf("store: %lu certificates (2 cores)\n", big);
        printf("smimectl list --limit 50: %.1f ms (best of %d)\n", best_cli / 1000.0, RUNS);
        printf("ListCertificates limit 50: %.1f ms (best of %d), total %" PRIu64 "\n", best_list / 1000.0, RUNS,
               total);

        for (n = 0; n < 200; n++) {
                samples[n] = time_capabilities(bus);
                if (samples[n] < 0)
                        return 1;
        }
        alone = stats_of(samples, n);

        /* "revoked" matches none: every certificate is validated. */
        if (list_call_new(bus2, 50, "revoked", &call) < 0 ||
            sd_bus_call_async(bus2, NULL, call, on_list_reply, &done, IMPORT_TIMEOUT_USEC) < 0)
                return 1;
        t0 = now_usec();
        for (n = 0; done == 0 && n < MAX_SAMPLES; n++) {
                samples[n] = time_capabilities(bus);
                if (samples[n] < 0)
                        return 1;
                while ((r = sd_bus_process(bus2, NULL)) > 0)
                        ;
                if (r < 0)
                        return 1;
        }
        while (done == 0) {
                if (sd_bus_wait(bus2, UINT64_MAX) < 0)
                        return 1;
                while (sd_bus_process(bus2, NULL) > 0)
                        ;
        }
        scan = (int64_t) (now_usec() - t0);
        if (done < 0 || n == 0)
                return 1;
        during = stats_of(samples, n);
        printf("ListCertificates status=revoked over all: %.1f s\n", scan / 1000000.0);
        printf("GetCapabilities alone: median %.2f ms, 99th percentile %.2f ms, worst %.2f ms (%zu calls)\n",
               alone.median_ms, alone.p99_ms, alone.max_ms, alone.n);
        printf("GetCapabilities during the status scan: median %.2f ms, 99th percentile %.2f ms, worst %.2f ms (%zu "
               "calls)\n",
               during.median_ms, during.p99_ms, during.max_ms, during.n);
        printf("ratio during/alone: median %.2f, 99th percentile %.2f, worst %.2f\n", during.median_ms / alone.median_ms,
               during.p99_ms / alone.p99_ms, during.max_ms / alone.max_ms);

        pki_cert_free(p.root);
        EVP_PKEY_free(p.leaf_key);
        return harness_stop_smimed(h) == 0 ? 0 : 1;
}
