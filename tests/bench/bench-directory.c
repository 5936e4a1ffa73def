/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetCapabilities with recipients found in the [Directory] (issue 18): a
 * 50-recipient question of which 10 recipients are only in LDAP, once their
 * certificates are cached (CacheSec=3600), against the same question with
 * all 50 in the store. The target is a ratio of medians below 2: a cached
 * certificate costs what an imported one costs, the directory is not asked.
 *
 *   bench-directory [N]        (as root: it starts the test harness and slapd)
 *
 * One smimed, one real slapd (tests/ldap-server.c) over TCP, one EC P-256
 * root (trusted) and two disjoint sets of 50 addresses:
 *   A: local0…local49@example.com, all imported;
 *   B: mixed0…mixed49@example.com, where every fifth one (mixed4, mixed9, …)
 *      is only published in LDAP (alternately as userSMIMECertificate and
 *      userCertificate;binary) and the other 40 are imported.
 * Both sets are asked of the same smimed with the same [Directory], so A pays
 * the same "can the store serve this?" check per address as B; what differs
 * is only where 10 of the certificates came from.
 *
 * The first B call is the cold one: it waits for the 10 searches and stores
 * what they find. It is printed for information. Then N calls of each case
 * (default 200), alternating A and B so that a busy machine slows both
 * alike; every answer is checked (all 50 possible, from_directory on exactly
 * the 10 LDAP-only addresses of B), and slapd's log must show no search
 * after the cold call: a warm figure that asked the directory measures the
 * wrong thing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "harness.h"
#include "ldap-server.h"
#include "pki.h"
#include "smimed-bus-names.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

#define N_RECIPIENTS 50
#define LDAP_EVERY 5 /* mixed<i> with i % LDAP_EVERY == LDAP_EVERY - 1 is only in LDAP */
#define N_LDAP (N_RECIPIENTS / LDAP_EVERY)
#define DEFAULT_RUNS 200
#define CALL_TIMEOUT_USEC (60ULL * 1000000ULL)
/* Long enough that a slow machine's cold call is never the store's answer
 * for want of the directory's. */
#define DIRECTORY_TIMEOUT_SEC 30
/* How slapd logs the filter of every search smimed makes here. */
#define SEARCH_TEXT "@example.com)"

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static bool ldap_only(unsigned i) {
        return i % LDAP_EVERY == LDAP_EVERY - 1;
}

typedef struct Pki {
        PkiCert *root;
        EVP_PKEY *leaf_key; /* every leaf's: making 100 keys would only slow the setup */
} Pki;

static int make_leaf(const Pki *p, const char *address, PkiCert **ret) {
        const char *san[] = {address, NULL};
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = address;
        o.san_emails = san;
        o.key = p->leaf_key;
        *ret = pki_cert_new(&o, p->root);
        return *ret ? 0 : -EIO;
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
        r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                fprintf(stderr, "ImportCertificates: %s: %s\n", e.name, e.message);
        return r;
}

/* Makes the leaves of both sets: the 90 local ones go to smimed in one
 * ImportCertificates, the 10 others into slapd. */
static int make_recipients(sd_bus *bus, LdapServer *server, const Pki *p) {
        _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
        char *data;
        long len;
        int r;

        if (!bio)
                return -ENOMEM;
        for (unsigned i = 0; i < N_RECIPIENTS; i++) {
                _cleanup_(pki_cert_freep) PkiCert *c = NULL;
                char address[64];

                snprintf(address, sizeof(address), "local%u@example.com", i);
                r = make_leaf(p, address, &c);
                if (r < 0)
                        return r;
                if (!PEM_write_bio_X509(bio, c->x509))
                        return -EIO;
        }
        for (unsigned i = 0; i < N_RECIPIENTS; i++) {
                _cleanup_(pki_cert_freep) PkiCert *c = NULL;
                _cleanup_free_ unsigned char *der = NULL;
                char address[64], uid[32];
                size_t size = 0;

                snprintf(address, sizeof(address), "mixed%u@example.com", i);
                r = make_leaf(p, address, &c);
                if (r < 0)
                        return r;
                if (!ldap_only(i)) {
                        if (!PEM_write_bio_X509(bio, c->x509))
                                return -EIO;
                        continue;
                }
                /* Both attributes smimed reads, half each. */
                snprintf(uid, sizeof(uid), "mixed%u", i);
                r = pki_cert_der(c, &der, &size);
                if (r >= 0)
                        r = ldap_server_add_person(server, uid, address, der, size, (i / LDAP_EVERY) % 2 == 0);
                if (r < 0) {
                        fprintf(stderr, "Publishing %s in LDAP: %s\n", address, strerror(-r));
                        return r;
                }
        }
        len = BIO_get_mem_data(bio, &data);
        return import_pem(bus, data, (size_t) len, false);
}

typedef struct Question {
        const char *name; /* "A", "B" */
        char addresses[N_RECIPIENTS][64];
        char *recipients[N_RECIPIENTS + 1];
        bool expect_directory[N_RECIPIENTS]; /* from_directory expected */
        int64_t *samples;
        size_t n_samples;
} Question;

static void question_init(Question *q, const char *name, const char *prefix, bool mixed) {
        q->name = name;
        for (unsigned i = 0; i < N_RECIPIENTS; i++) {
                snprintf(q->addresses[i], sizeof(q->addresses[i]), "%s%u@example.com", prefix, i);
                q->recipients[i] = q->addresses[i];
                q->expect_directory[i] = mixed && ldap_only(i);
        }
        q->recipients[N_RECIPIENTS] = NULL;
}

/* Reads one encrypt entry: its "address" (as asked), "possible" and
 * "from_directory" (false when absent: an entry without a certificate has
 * none). The address points into reply. */
static int read_entry(sd_bus_message *reply, const char **ret_address, bool *ret_possible, bool *ret_from_directory) {
        const char *address = NULL;
        bool possible = false, from_directory = false;
        int r;

        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key;
                int b;

                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "possible") || streq(key, "from_directory")) {
                        r = sd_bus_message_read(reply, "v", "b", &b);
                        if (r < 0)
                                return r;
                        if (streq(key, "possible"))
                                possible = b;
                        else
                                from_directory = b;
                } else if (streq(key, "address")) {
                        r = sd_bus_message_read(reply, "v", "s", &address);
                        if (r < 0)
                                return r;
                } else {
                        r = sd_bus_message_skip(reply, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!address)
                return -EBADMSG;
        *ret_address = address;
        *ret_possible = possible;
        *ret_from_directory = from_directory;
        return 0;
}

/* One GetCapabilities of q's recipients; returns its time in µs, or a
 * negative errno. The answer is checked after the clock stops: every
 * recipient possible, from_directory where expected and nowhere else. A
 * fast wrong answer (the store's "no-certificate" for the LDAP ones) would
 * measure nothing. */
static int64_t time_capabilities(sd_bus *bus, const Question *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        unsigned entries = 0, possible = 0, from_directory = 0, wrong = 0, expected = 0;
        uint64_t start, end;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "GetCapabilities");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char **) q->recipients);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return r;

        start = now_usec();
        r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply);
        end = now_usec();
        if (r < 0) {
                fprintf(stderr, "GetCapabilities (%s): %s: %s\n", q->name, e.name, e.message);
                return r;
        }

        r = sd_bus_message_skip(reply, "a{sv}");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'a', "{sv}")) > 0) {
                const char *address;
                unsigned i = 0;
                bool p, d;

                r = read_entry(reply, &address, &p, &d);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        break;
                entries++;
                possible += p;
                from_directory += d;
                /* By the address the entry names, not by its position. */
                while (i < N_RECIPIENTS && !streq(q->addresses[i], address))
                        i++;
                if (i == N_RECIPIENTS) {
                        fprintf(stderr, "GetCapabilities (%s): an entry for %s, not asked\n", q->name, address);
                        wrong++;
                } else if (!p) {
                        fprintf(stderr, "GetCapabilities (%s): %s not possible\n", q->name, address);
                        wrong++;
                } else if (d != q->expect_directory[i]) {
                        fprintf(stderr, "GetCapabilities (%s): %s from_directory=%s, expected %s\n", q->name, address,
                                d ? "true" : "false", q->expect_directory[i] ? "true" : "false");
                        wrong++;
                }
        }
        if (r < 0) {
                fprintf(stderr, "GetCapabilities (%s): unreadable answer: %s\n", q->name, strerror(-r));
                return r;
        }
        for (unsigned i = 0; i < N_RECIPIENTS; i++)
                expected += q->expect_directory[i];
        if (entries != N_RECIPIENTS || possible != N_RECIPIENTS || from_directory != expected || wrong > 0) {
                fprintf(stderr,
                        "GetCapabilities (%s): %u entries, %u possible, %u from the directory; expected %u, %u, "
                        "%u\n",
                        q->name, entries, possible, from_directory, N_RECIPIENTS, N_RECIPIENTS, expected);
                return -EBADMSG;
        }
        return (int64_t) (end - start);
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

        return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least pct % of them at or
 * below it. Sorts samples. */
static double percentile_ms(int64_t *samples, size_t n, unsigned pct) {
        size_t rank = (n * pct + 99) / 100;

        qsort(samples, n, sizeof(int64_t), cmp_i64);
        return (double) samples[rank > 0 ? rank - 1 : 0] / 1000.0;
}

static int searches(LdapServer *server, unsigned *ret) {
        int r = ldap_server_count_searches(server, SEARCH_TEXT, ret);

        if (r < 0)
                fprintf(stderr, "Reading slapd's log %s: %s\n", server->log_path, strerror(-r));
        return r;
}

int main(int argc, char **argv) {
        _cleanup_(ldap_server_freep) LdapServer *server = NULL;
        _cleanup_(harness_freep) Harness *h = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(pki_cert_freep) PkiCert *root = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *leaf_key = NULL;
        _cleanup_free_ char *extra = NULL, *config = NULL, *text = NULL, *root_pem = NULL;
        _cleanup_free_ int64_t *samples_a = NULL, *samples_b = NULL;
        Question a = {}, b = {};
        unsigned long runs = argc > 1 ? strtoul(argv[1], NULL, 10) : DEFAULT_RUNS;
        unsigned n_searches = 0;
        double median_a, median_b, p90_a, p90_b;
        int64_t cold;

        if (runs < 1 || runs > 1000000) {
                fprintf(stderr, "usage: %s [N]   (N >= 1 calls of each case)\n", argv[0]);
                return 2;
        }
        samples_a = calloc(runs, sizeof(int64_t));
        samples_b = calloc(runs, sizeof(int64_t));
        if (!samples_a || !samples_b)
                return 1;

        if (ldap_server_start(&server) < 0) {
                fprintf(stderr, "Could not start slapd.\n");
                return 1;
        }
        if (harness_new(&h) < 0 || harness_start_bus(h) < 0)
                return 1;
        /* Over TCP, as a directory on another machine would be reached. */
        if (asprintf(&extra,
                     "[Directory]\n"
                     "URI=%s\n"
                     "Base=" LDAP_SERVER_SUFFIX "\n"
                     "TimeoutSec=%d\n"
                     "CacheSec=3600\n",
                     server->ldap_uri, DIRECTORY_TIMEOUT_SEC) < 0)
                return 1;
        text = harness_config_text(h, extra);
        config = text ? harness_write_file(h, "smimed.conf", text, 0644) : NULL;
        if (!config || harness_start_smimed(h, config, NULL) < 0)
                return 1;
        if (harness_bus_open(&bus) < 0)
                return 1;

        {
                PkiCertOptions o;

                pki_cert_options_init(&o);
                o.common_name = "Bench Directory Root";
                o.is_ca = true;
                o.not_after_days = 3650;
                o.key = pki_key_ec();
                root = o.key ? pki_cert_new(&o, NULL) : NULL;
                EVP_PKEY_free(o.key);
                leaf_key = pki_key_ec();
        }
        root_pem = root ? pki_cert_pem(root) : NULL;
        if (!root_pem || !leaf_key || import_pem(bus, root_pem, strlen(root_pem), true) < 0)
                return 1;
        if (make_recipients(bus, server, &(Pki){.root = root, .leaf_key = leaf_key}) < 0)
                return 1;

        question_init(&a, "A", "local", false);
        question_init(&b, "B", "mixed", true);
        a.samples = samples_a;
        b.samples = samples_b;

        /* Nothing asked yet: the imports do not search. */
        if (searches(server, &n_searches) < 0)
                return 1;
        if (n_searches != 0) {
                fprintf(stderr, "slapd saw %u searches before the first GetCapabilities\n", n_searches);
                return 1;
        }

        /* The cold call: the 10 searches, then the answer. */
        cold = time_capabilities(bus, &b);
        if (cold < 0)
                return 1;
        if (searches(server, &n_searches) < 0)
                return 1;
        if (n_searches != N_LDAP) {
                fprintf(stderr, "slapd saw %u searches for the cold call; expected %d\n", n_searches, N_LDAP);
                return 1;
        }

        for (unsigned long i = 0; i < runs; i++) {
                int64_t t;

                t = time_capabilities(bus, &a);
                if (t < 0)
                        return 1;
                a.samples[a.n_samples++] = t;
                t = time_capabilities(bus, &b);
                if (t < 0)
                        return 1;
                b.samples[b.n_samples++] = t;
        }

        /* Warm means warm: the directory was not asked again. */
        if (searches(server, &n_searches) < 0)
                return 1;
        if (n_searches != N_LDAP) {
                fprintf(stderr, "slapd saw %u searches in all; expected %d (the cold call's only)\n", n_searches,
                        N_LDAP);
                return 1;
        }

        median_a = percentile_ms(a.samples, a.n_samples, 50);
        p90_a = percentile_ms(a.samples, a.n_samples, 90);
        median_b = percentile_ms(b.samples, b.n_samples, 50);
        p90_b = percentile_ms(b.samples, b.n_samples, 90);
        printf("GetCapabilities %d recipients, %lu calls each\n", N_RECIPIENTS, runs);
        printf("A all local: median %.2f ms, p90 %.2f ms\n", median_a, p90_a);
        printf("B %d local + %d from LDAP, cache warm: median %.2f ms, p90 %.2f ms\n", N_RECIPIENTS - N_LDAP, N_LDAP,
               median_b, p90_b);
        printf("B cold (first call, %d LDAP searches): %.1f ms\n", N_LDAP, (double) cold / 1000.0);
        printf("ratio B/A (medians): %.2f (target < 2)\n", median_a > 0 ? median_b / median_a : 0.0);

        return harness_stop_smimed(h) == 0 ? 0 : 1;
}
