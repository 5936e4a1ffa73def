/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How GetCapabilities scales with the store: a 50-recipient question asked
 * of a store of 1,000 certificates and of one of N (default 100,000), best of
 * several runs each. The target is a ratio below 2: lookups go through the
 * address index, not through the store. Each run asks about 50 other
 * recipients: smimed remembers an answer for the rest of the second
 * (capabilities.h), and a repeated question would measure that instead; the
 * repeated question is printed apart.
 *
 *   bench-coverage [N]        (as root: it starts the test harness)
 *
 * Every certificate is issued by one EC P-256 root for one EC key, so that
 * making 100,000 of them takes seconds; they reach smimed over the bus with
 * ImportCertificates in PEM batches of 1000. */
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

#define N_RECIPIENTS 50
#define SMALL_STORE 1000
#define BATCH 1000
#define RUNS 15
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
        const char *san[] = { address, NULL };
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

/* One GetCapabilities for the N_RECIPIENTS recipients; returns its time in
 * µs, or a negative errno. Every recipient must be possible: a fast wrong
 * answer measures nothing. */
static int64_t time_capabilities(sd_bus *bus, unsigned window) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        char addresses[N_RECIPIENTS][64], *recipients[N_RECIPIENTS + 1];
        unsigned possible = 0, entries = 0;
        uint64_t start, end;
        int r;

        for (unsigned i = 0; i < N_RECIPIENTS; i++) {
                snprintf(addresses[i], sizeof(addresses[i]), "recipient%u@example.com", window * N_RECIPIENTS + i);
                recipients[i] = addresses[i];
        }
        recipients[N_RECIPIENTS] = NULL;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "GetCapabilities");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, recipients);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return r;

        start = now_usec();
        r = sd_bus_call(bus, m, 0, &e, &reply);
        end = now_usec();
        if (r < 0) {
                fprintf(stderr, "GetCapabilities: %s: %s\n", e.name, e.message);
                return r;
        }

        r = sd_bus_message_skip(reply, "a{sv}");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
        while (r >= 0 && sd_bus_message_enter_container(reply, 'a', "{sv}") > 0) {
                entries++;
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        const char *key;
                        int b;

                        if (sd_bus_message_read(reply, "s", &key) < 0)
                                return -EBADMSG;
                        if (strcmp(key, "possible") == 0) {
                                if (sd_bus_message_read(reply, "v", "b", &b) < 0)
                                        return -EBADMSG;
                                possible += b ? 1 : 0;
                        } else if (sd_bus_message_skip(reply, "v") < 0)
                                return -EBADMSG;
                        if (sd_bus_message_exit_container(reply) < 0)
                                return -EBADMSG;
                }
                if (sd_bus_message_exit_container(reply) < 0)
                        return -EBADMSG;
        }
        if (r < 0)
                return r;
        if (entries != N_RECIPIENTS || possible != N_RECIPIENTS) {
                fprintf(stderr, "GetCapabilities: %u entries, %u possible; expected %u of each\n", entries, possible,
                        N_RECIPIENTS);
                return -EBADMSG;
        }
        return (int64_t) (end - start);
}

/* Best of runs: each run another window of recipients, or (same) the first
 * window each time. */
static int64_t best_of(sd_bus *bus, unsigned runs, bool same) {
        int64_t best = INT64_MAX;

        for (unsigned i = 0; i < runs; i++) {
                int64_t t = time_capabilities(bus, same ? 0 : i);

                if (t < 0)
                        return t;
                if (t < best)
                        best = t;
        }
        return best;
}

int main(int argc, char **argv) {
        _cleanup_(harness_freep) Harness *h = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *config = NULL, *text = NULL, *root_pem = NULL;
        Pki p = {};
        unsigned long big = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
        int64_t small_t, big_t, again_t;
        uint64_t t0;
        int r;

        if (big < SMALL_STORE * 2) {
                fprintf(stderr, "usage: %s [N]   (N >= %d certificates)\n", argv[0], SMALL_STORE * 2);
                return 2;
        }

        r = harness_new(&h);
        if (r < 0)
                return 1;
        r = harness_start_bus(h);
        if (r < 0)
                return 1;
        text = harness_config_text(h, NULL);
        config = text ? harness_write_file(h, "smimed.conf", text, 0644) : NULL;
        if (!config || harness_start_smimed(h, config, NULL) < 0)
                return 1;
        if (harness_bus_open(&bus) < 0)
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

        /* 1,000 certificates: RUNS windows of 50 recipients and others, with the root. */
        if (import_leaves(bus, &p, "recipient", 0, RUNS * N_RECIPIENTS) < 0 ||
            import_leaves(bus, &p, "filler", 0, SMALL_STORE - RUNS * N_RECIPIENTS - 1) < 0)
                return 1;
        small_t = best_of(bus, RUNS, false);
        if (small_t < 0)
                return 1;
        printf("coverage %d recipients @%d: %.1f ms\n", N_RECIPIENTS, SMALL_STORE, (double) small_t / 1000.0);
        fflush(stdout);

        t0 = now_usec();
        if (import_leaves(bus, &p, "filler", SMALL_STORE - RUNS * N_RECIPIENTS - 1, (unsigned) big - SMALL_STORE) < 0)
                return 1;
        fprintf(stderr, "(filled the store to %lu certificates in %.1f s)\n", big,
                (double) (now_usec() - t0) / 1000000.0);
        big_t = best_of(bus, RUNS, false);
        if (big_t < 0)
                return 1;
        printf("coverage %d recipients @%lu: %.1f ms\n", N_RECIPIENTS, big, (double) big_t / 1000.0);
        printf("ratio: %.2f (target < 2)\n", (double) big_t / (double) (small_t > 0 ? small_t : 1));
        again_t = best_of(bus, RUNS, true);
        if (again_t < 0)
                return 1;
        printf("the same question again at once @%lu: %.1f ms (answers remembered within the second)\n", big,
               (double) again_t / 1000.0);

        pki_cert_free(p.root);
        EVP_PKEY_free(p.leaf_key);
        return harness_stop_smimed(h) == 0 ? 0 : 1;
}
