/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimed as a cluster (issue 17): nodes on one PostgreSQL store, one token
 * through `p11-kit server`.
 *
 *   bench-cluster lookup [N]       LookupCertificates of one address and a
 *                                  50-recipient GetCapabilities with 100 and
 *                                  with N (default 100,000) certificates in
 *                                  the store, on SQLite and on PostgreSQL
 *   bench-cluster latency [K]      import on node A until node B announces it
 *                                  (InterfacesAdded): median and max of K
 *                                  (default 50) changes; the bound is 100 ms
 *   bench-cluster sign [SECONDS]   Sign (4 KiB, the harness RSA-2048 key) with
 *                                  2 clients per node on 1, 2 and 3 nodes
 *                                  through the p11-kit server token, against
 *                                  one node on SoftHSM2 directly
 *
 * As root: it starts PostgreSQL (tests/pg-server.c), p11-kit server and a
 * harness (bus, polkitd, token, smimed) per node. Certificates are issued by
 * one EC P-256 root for one EC key and imported in PEM batches of 1000. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "bench-util.h"
#include "p11-server.h"
#include "pg-server.h"
#include "smimed-bus-names.h"
#include "strv.h"

#define MAX_NODES 3
#define CLIENTS_PER_NODE 2
#define BATCH 1000
#define N_RECIPIENTS 50
#define SMALL_STORE 100
#define IMPORT_TIMEOUT_USEC (600ULL * 1000000ULL)
#define WARMUP_SECONDS 0.5

typedef struct Node {
        Harness *harness;
        sd_bus *bus;
} Node;

static PgServer *server;
static P11Server *token_server;

static int bus_open_at(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static void node_done(Node *n) {
        n->bus = sd_bus_flush_close_unref(n->bus);
        if (n->harness && n->harness->smimed_pid > 0)
                (void) harness_stop_smimed(n->harness);
        n->harness = harness_free(n->harness);
}

static int node_new(Node *n, bool postgresql) {
        int r;

        r = harness_new(&n->harness);
        if (r < 0)
                return r;
        if (postgresql) {
                n->harness->store_connection = strdup(server->conninfo);
                if (!n->harness->store_connection)
                        return -ENOMEM;
        }
        return harness_start_bus(n->harness);
}

/* smimed on n's bus (the harness's environment names the last harness's
 * bus and token); token: NULL for n's own SoftHSM2 token, else the
 * p11-kit server's (token_owner's token, PIN and all). */
static int node_start_smimed(Node *n, Harness *token_owner) {
        _cleanup_free_ char *text = NULL, *store = NULL, *config = NULL, *server_env = NULL, *bus_env = NULL,
                            *softhsm_env = NULL;
        int r;

        if (!token_owner)
                text = harness_config_text(n->harness, NULL);
        else {
                store = harness_store_section(n->harness);
                if (!store ||
                    asprintf(&text,
                             "[Token]\nModule=" P11_KIT_CLIENT_MODULE "\nURI=pkcs11:token=" HARNESS_TOKEN_LABEL
                             "\nPINFile=%s\nRescanIntervalSec=86400\n%s[Policy]\nEnabled=yes\n",
                             token_owner->pin_file, store) < 0)
                        return -ENOMEM;
        }
        config = text ? harness_write_file(n->harness, "smimed.conf", text, 0644) : NULL;
        if (!config || asprintf(&bus_env, "DBUS_SYSTEM_BUS_ADDRESS=%s", n->harness->bus_address) < 0 ||
            asprintf(&softhsm_env, "SOFTHSM2_CONF=%s", n->harness->softhsm_conf) < 0 ||
            asprintf(&server_env, "P11_KIT_SERVER_ADDRESS=%s", token_server ? token_server->address : "none") < 0)
                return -ENOMEM;
        r = harness_start_smimed(n->harness, config, (char *const[]){bus_env, softhsm_env, server_env, NULL});
        if (r < 0) {
                fprintf(stderr, "bench: smimed did not start, see %s\n", n->harness->smimed_log);
                return r;
        }
        n->bus = sd_bus_flush_close_unref(n->bus);
        return bus_open_at(n->harness->bus_address, &n->bus);
}

static int import_pem(sd_bus *bus, const char *pem, size_t len, bool trust, char ***ret_paths) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "ImportCertificates");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', pem, len);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust);
        if (r >= 0)
                r = sd_bus_call(bus, m, IMPORT_TIMEOUT_USEC, &e, &reply);
        if (r < 0) {
                fprintf(stderr, "ImportCertificates: %s: %s\n", e.name ?: strerror(-r), strempty(e.message));
                return r;
        }
        return ret_paths ? sd_bus_message_read_strv(reply, ret_paths) : 0;
}

typedef struct Pki {
        PkiCert *root;
        EVP_PKEY *leaf_key;
        char *root_pem;
} Pki;

static int pki_setup(Pki *p) {
        PkiCertOptions o;

        pki_cert_options_init(&o);
        o.common_name = "Bench Cluster Root";
        o.is_ca = true;
        o.not_after_days = 3650;
        o.key = pki_key_ec();
        p->root = o.key ? pki_cert_new(&o, NULL) : NULL;
        EVP_PKEY_free(o.key);
        p->leaf_key = pki_key_ec();
        p->root_pem = p->root ? pki_cert_pem(p->root) : NULL;
        return p->root_pem && p->leaf_key ? 0 : -EIO;
}

static void pki_done(Pki *p) {
        pki_cert_free(p->root);
        EVP_PKEY_free(p->leaf_key);
        free(p->root_pem);
}

/* PEM of n leaves for prefix<first>…@example.com. */
static char *leaves_pem(const Pki *p, const char *prefix, unsigned first, unsigned n, size_t *ret_len) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *pem = NULL;
        long len;

        if (!bio)
                return NULL;
        for (unsigned i = 0; i < n; i++) {
                _cleanup_(pki_cert_freep) PkiCert *c = NULL;
                char address[64];
                const char *san[] = {address, NULL};
                PkiCertOptions o;

                snprintf(address, sizeof(address), "%s%u@example.com", prefix, first + i);
                pki_cert_options_init(&o);
                o.common_name = address;
                o.san_emails = san;
                o.key = p->leaf_key;
                c = pki_cert_new(&o, p->root);
                if (!c || !PEM_write_bio_X509(bio, c->x509))
                        goto out;
        }
        len = BIO_get_mem_data(bio, &data);
        pem = malloc((size_t) len + 1);
        if (pem) {
                memcpy(pem, data, (size_t) len);
                pem[len] = 0;
                *ret_len = (size_t) len;
        }
out:
        BIO_free(bio);
        return pem;
}

/* ---- lookup ---- */

typedef struct Batches {
        char **pem;
        size_t *len;
        size_t n;
} Batches;

static int lookup_once(sd_bus *bus, const char *address, uint64_t *ret_usec) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(strv_freep) char **paths = NULL;
        uint64_t t0 = bench_now_usec();
        int r;

        r = sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                               "LookupCertificates", &e, &reply, "sa{sv}", address, 0);
        *ret_usec = bench_now_usec() - t0;
        if (r < 0) {
                fprintf(stderr, "LookupCertificates: %s: %s\n", e.name ?: strerror(-r), strempty(e.message));
                return r;
        }
        r = sd_bus_message_read_strv(reply, &paths);
        if (r < 0 || strv_length(paths) != 1) {
                fprintf(stderr, "LookupCertificates(%s): %zu certificates, expected 1\n", address, strv_length(paths));
                return -EBADMSG;
        }
        return 0;
}

static int capabilities_once(sd_bus *bus, uint64_t *ret_usec) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        char addresses[N_RECIPIENTS][64], *recipients[N_RECIPIENTS + 1];
        unsigned possible = 0;
        uint64_t t0;
        int r;

        for (unsigned i = 0; i < N_RECIPIENTS; i++) {
                snprintf(addresses[i], sizeof(addresses[i]), "recipient%u@example.com", i);
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
        t0 = bench_now_usec();
        r = sd_bus_call(bus, m, 0, &e, &reply);
        *ret_usec = bench_now_usec() - t0;
        if (r < 0) {
                fprintf(stderr, "GetCapabilities: %s: %s\n", e.name ?: strerror(-r), strempty(e.message));
                return r;
        }
        r = sd_bus_message_skip(reply, "a{sv}");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
        while (r >= 0 && sd_bus_message_enter_container(reply, 'a', "{sv}") > 0) {
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        const char *key;
                        int b;

                        if (sd_bus_message_read(reply, "s", &key) < 0)
                                return -EBADMSG;
                        if (streq(key, "possible")) {
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
        if (r < 0 || possible != N_RECIPIENTS) {
                fprintf(stderr, "GetCapabilities: %u of %u recipients possible\n", possible, N_RECIPIENTS);
                return -EBADMSG;
        }
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* Median of runs of the lookup (what 0) or the capabilities (what 1), in ms. */
static double median_ms(sd_bus *bus, int what, unsigned runs, unsigned n_addresses) {
        uint64_t t[256];
        int r;

        if (runs > ELEMENTSOF(t))
                runs = ELEMENTSOF(t);
        for (unsigned i = 0; i < runs; i++) {
                char address[64];

                snprintf(address, sizeof(address), "recipient%u@example.com", (i * 7919) % n_addresses);
                r = what == 0 ? lookup_once(bus, address, &t[i]) : capabilities_once(bus, &t[i]);
                if (r < 0)
                        return r;
        }
        qsort(t, runs, sizeof(uint64_t), cmp_u64);
        return (double) t[runs / 2] / 1000.0;
}

static int bench_lookup_on(const char *backend, const Pki *p, const Batches *b, unsigned long big) {
        Node n = {};
        double small_lookup, small_caps, big_lookup, big_caps;
        uint64_t t0;
        int r;

        r = node_new(&n, streq(backend, "postgresql"));
        if (r >= 0)
                r = node_start_smimed(&n, NULL);
        if (r >= 0)
                r = import_pem(n.bus, p->root_pem, strlen(p->root_pem), true, NULL);
        /* Batch 0 holds the 50 recipients and the first fillers: 100 with the root. */
        if (r >= 0)
                r = import_pem(n.bus, b->pem[0], b->len[0], false, NULL);
        if (r < 0)
                goto out;
        small_lookup = median_ms(n.bus, 0, 201, N_RECIPIENTS);
        small_caps = median_ms(n.bus, 1, 21, N_RECIPIENTS);
        if (small_lookup < 0 || small_caps < 0) {
                r = -EIO;
                goto out;
        }
        t0 = bench_now_usec();
        for (size_t i = 1; i < b->n && r >= 0; i++)
                r = import_pem(n.bus, b->pem[i], b->len[i], false, NULL);
        if (r < 0)
                goto out;
        fprintf(stderr, "(%s: filled the store to %lu certificates in %.1f s through ImportCertificates)\n", backend,
                big, (double) (bench_now_usec() - t0) / 1e6);
        big_lookup = median_ms(n.bus, 0, 201, N_RECIPIENTS);
        big_caps = median_ms(n.bus, 1, 21, N_RECIPIENTS);
        if (big_lookup < 0 || big_caps < 0) {
                r = -EIO;
                goto out;
        }
        printf("%-10s LookupCertificates (1 address): %.2f ms @%d, %.2f ms @%lu, ratio %.2f\n", backend, small_lookup,
               SMALL_STORE, big_lookup, big, big_lookup / small_lookup);
        printf("%-10s GetCapabilities (%d recipients): %.2f ms @%d, %.2f ms @%lu, ratio %.2f\n", backend, N_RECIPIENTS,
               small_caps, SMALL_STORE, big_caps, big, big_caps / small_caps);
        fflush(stdout);
out:
        node_done(&n);
        return r;
}

static int bench_lookup(unsigned long big) {
        _cleanup_free_ size_t *lens = NULL;
        _cleanup_free_ char **pems = NULL;
        Batches b = {};
        Pki p = {};
        uint64_t t0;
        int r;

        if (big < SMALL_STORE * 2)
                return -EINVAL;
        r = pki_setup(&p);
        if (r < 0)
                return r;
        /* Batch 0: the recipients and 49 fillers; then the rest in batches. */
        b.n = 1 + (big - SMALL_STORE + BATCH - 1) / BATCH;
        pems = calloc(b.n, sizeof(char *));
        lens = calloc(b.n, sizeof(size_t));
        if (!pems || !lens)
                return -ENOMEM;
        b.pem = pems;
        b.len = lens;
        t0 = bench_now_usec();
        {
                size_t l1 = 0, l2 = 0;
                _cleanup_free_ char *a = leaves_pem(&p, "recipient", 0, N_RECIPIENTS, &l1),
                                    *f = leaves_pem(&p, "filler", 0, SMALL_STORE - N_RECIPIENTS - 1, &l2);

                if (!a || !f || !(pems[0] = malloc(l1 + l2 + 1)))
                        return -ENOMEM;
                memcpy(pems[0], a, l1);
                memcpy(pems[0] + l1, f, l2 + 1);
                lens[0] = l1 + l2;
        }
        for (size_t i = 1, first = SMALL_STORE - N_RECIPIENTS - 1; i < b.n; i++) {
                unsigned k = (unsigned) ((big - SMALL_STORE) - (i - 1) * BATCH < BATCH
                                                 ? (big - SMALL_STORE) - (i - 1) * BATCH
                                                 : BATCH);

                pems[i] = leaves_pem(&p, "filler", (unsigned) first, k, &lens[i]);
                if (!pems[i])
                        return -EIO;
                first += k;
        }
        fprintf(stderr, "(issued %lu certificates with OpenSSL in %.1f s)\n", big - 1,
                (double) (bench_now_usec() - t0) / 1e6);

        r = bench_lookup_on("sqlite", &p, &b, big);
        if (r >= 0)
                r = bench_lookup_on("postgresql", &p, &b, big);
        for (size_t i = 0; i < b.n; i++)
                free(pems[i]);
        pki_done(&p);
        return r;
}

/* ---- latency ---- */

typedef struct Seen {
        uint64_t at;
} Seen;

static int on_added(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Seen *s = userdata;
        const char *path;

        (void) error;
        /* One certificate is imported at a time: the first certificate announced is it. */
        if (!s->at && sd_bus_message_read(m, "o", &path) >= 0 &&
            strncmp(path, SMIMED_CERTIFICATE_PATH_PREFIX "/", strlen(SMIMED_CERTIFICATE_PATH_PREFIX "/")) == 0)
                s->at = bench_now_usec();
        return 0;
}

typedef struct Done {
        bool done;
        bool failed;
        uint64_t at;
        char *path;
} Done;

static int on_import_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Done *d = userdata;
        char **paths = NULL;

        (void) error;
        d->done = true;
        d->at = bench_now_usec();
        if (sd_bus_message_is_method_error(m, NULL) || sd_bus_message_read_strv(m, &paths) < 0 ||
            strv_length(paths) != 1) {
                d->failed = true;
                strv_free(paths);
                return 0;
        }
        d->path = strdup(paths[0]);
        strv_free(paths);
        return 0;
}

/* Processes both buses until A replied and B announced. */
static int pump(Node *a, Node *b, Done *d, Seen *s, uint64_t deadline) {
        while (!d->done || !s->at) {
                struct pollfd fds[2];
                int r;

                while ((r = sd_bus_process(a->bus, NULL)) > 0)
                        ;
                if (r < 0)
                        return r;
                while ((r = sd_bus_process(b->bus, NULL)) > 0)
                        ;
                if (r < 0)
                        return r;
                if (d->failed)
                        return -EIO;
                if (d->done && s->at)
                        break;
                if (bench_now_usec() > deadline)
                        return -ETIMEDOUT;
                fds[0] = (struct pollfd){.fd = sd_bus_get_fd(a->bus), .events = (short) sd_bus_get_events(a->bus)};
                fds[1] = (struct pollfd){.fd = sd_bus_get_fd(b->bus), .events = (short) sd_bus_get_events(b->bus)};
                if (poll(fds, 2, 100) < 0)
                        return -errno;
        }
        return 0;
}

static int bench_latency(unsigned k) {
        Node nodes[2] = {};
        Pki p = {};
        uint64_t *to_signal = NULL, *to_reply = NULL;
        int r;

        to_signal = calloc(k, sizeof(uint64_t));
        to_reply = calloc(k, sizeof(uint64_t));
        r = to_signal && to_reply ? pki_setup(&p) : -ENOMEM;
        for (size_t i = 0; i < 2 && r >= 0; i++) {
                r = node_new(&nodes[i], true);
                if (r >= 0)
                        r = node_start_smimed(&nodes[i], NULL);
        }
        if (r >= 0)
                r = import_pem(nodes[0].bus, p.root_pem, strlen(p.root_pem), true, NULL);
        for (unsigned i = 0; i < k && r >= 0; i++) {
                _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *call = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                _cleanup_free_ char *pem = NULL;
                Seen s = {};
                Done d = {};
                size_t len = 0;
                uint64_t t0;

                pem = leaves_pem(&p, "latency", i, 1, &len);
                if (!pem) {
                        r = -EIO;
                        break;
                }
                r = sd_bus_match_signal(nodes[1].bus, &match, SMIMED_BUS_NAME, NULL,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_added, &s);
                if (r >= 0)
                        r = sd_bus_message_new_method_call(nodes[0].bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "ImportCertificates");
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', pem, len);
                if (r >= 0)
                        r = sd_bus_message_append(m, "a{sv}", 0);
                if (r < 0)
                        break;
                t0 = bench_now_usec();
                r = sd_bus_call_async(nodes[0].bus, &call, m, on_import_reply, &d, IMPORT_TIMEOUT_USEC);
                if (r >= 0)
                        r = pump(&nodes[0], &nodes[1], &d, &s, t0 + 10ULL * 1000000ULL);
                free(d.path);
                if (r < 0) {
                        fprintf(stderr, "change %u: %s\n", i, strerror(-r));
                        break;
                }
                to_reply[i] = d.at - t0;
                to_signal[i] = s.at - t0;
        }
        if (r >= 0) {
                qsort(to_signal, k, sizeof(uint64_t), cmp_u64);
                qsort(to_reply, k, sizeof(uint64_t), cmp_u64);
                printf("change visibility, %u imports on node A: A's reply after %.1f ms median (max %.1f); node B's "
                       "InterfacesAdded after %.1f ms median, max %.1f ms (bound 100 ms)\n",
                       k, (double) to_reply[k / 2] / 1000.0, (double) to_reply[k - 1] / 1000.0,
                       (double) to_signal[k / 2] / 1000.0, (double) to_signal[k - 1] / 1000.0);
        }
        for (size_t i = 0; i < 2; i++)
                node_done(&nodes[i]);
        pki_done(&p);
        free(to_signal);
        free(to_reply);
        return r;
}

/* ---- sign ---- */

typedef struct SignArg {
        const char *addresses[MAX_NODES];
        unsigned n_nodes;
        int input;
} SignArg;

typedef struct SignState {
        sd_bus *bus;
        int input, output;
} SignState;

static void sign_teardown(void *userdata) {
        SignState *s = userdata;

        sd_bus_flush_close_unref(s->bus);
        if (s->input >= 0)
                close(s->input);
        if (s->output >= 0)
                close(s->output);
        free(s);
}

static int sign_setup(void *arg, unsigned index, void **ret) {
        SignArg *a = arg;
        SignState *s = calloc(1, sizeof(SignState));
        int r;

        if (!s)
                return -ENOMEM;
        s->input = bench_memfd_copy_sealed(a->input);
        s->output = open("/dev/null", O_WRONLY | O_CLOEXEC);
        r = bus_open_at(a->addresses[index % a->n_nodes], &s->bus);
        if (r < 0 || s->input < 0 || s->output < 0) {
                sign_teardown(s);
                return r < 0 ? r : -EIO;
        }
        *ret = s;
        return 0;
}

static int sign_op(void *userdata) {
        SignState *s = userdata;

        return bench_sign(s->bus, BENCH_ADDRESS, s->input, s->output);
}

static const BenchOps sign_ops = {.setup = sign_setup, .op = sign_op, .teardown = sign_teardown};

static double sign_rate(Node *nodes, unsigned n_nodes, int message, double seconds) {
        SignArg a = {.n_nodes = n_nodes, .input = message};

        for (unsigned i = 0; i < n_nodes; i++)
                a.addresses[i] = nodes[i].harness->bus_address;
        return bench_rate(&sign_ops, &a, n_nodes * CLIENTS_PER_NODE, WARMUP_SECONDS, seconds);
}

static int bench_sign_cluster(double seconds) {
        Node nodes[MAX_NODES] = {};
        _cleanup_(closep) int message = bench_message_memfd(BENCH_ADDRESS, BENCH_MESSAGE_SIZE);
        _cleanup_free_ char *socket_path = NULL, *conf = NULL, *leaf_pem = NULL;
        _cleanup_(pki_cert_freep) PkiCert *leaf = NULL;
        double direct = 0, rate[MAX_NODES] = {};
        Pki p = {};
        int r;

        r = message < 0 ? message : pki_setup(&p);
        for (size_t i = 0; i < MAX_NODES && r >= 0; i++)
                r = node_new(&nodes[i], true);
        if (r < 0)
                goto out;

        /* The harness RSA key of node 0's token, for BENCH_ADDRESS. */
        {
                EVP_PKEY *pub = pki_public_key_from_pem_file(nodes[0].harness->key_pem);
                const char *san[] = {BENCH_ADDRESS, NULL};
                PkiCertOptions o;

                pki_cert_options_init(&o);
                o.common_name = BENCH_ADDRESS;
                o.san_emails = san;
                o.key = pub;
                leaf = pub ? pki_cert_new(&o, p.root) : NULL;
                EVP_PKEY_free(pub);
                leaf_pem = leaf ? pki_cert_pem(leaf) : NULL;
                if (!leaf_pem) {
                        r = -EIO;
                        goto out;
                }
        }

        /* One node on its token directly. */
        r = node_start_smimed(&nodes[0], NULL);
        if (r >= 0)
                r = import_pem(nodes[0].bus, p.root_pem, strlen(p.root_pem), true, NULL);
        if (r >= 0)
                r = import_pem(nodes[0].bus, leaf_pem, strlen(leaf_pem), false, NULL);
        if (r >= 0) {
                _cleanup_(closep) int out = open("/dev/null", O_WRONLY | O_CLOEXEC);

                r = bench_sign(nodes[0].bus, BENCH_ADDRESS, message, out);
        }
        if (r < 0)
                goto out;
        direct = sign_rate(nodes, 1, message, seconds);
        if (direct < 0) {
                r = (int) direct;
                goto out;
        }
        printf("sign rsa-2048, 1 node on SoftHSM2 directly, %d clients: %.1f/s\n", CLIENTS_PER_NODE, direct);
        fflush(stdout);
        nodes[0].bus = sd_bus_flush_close_unref(nodes[0].bus);
        (void) harness_stop_smimed(nodes[0].harness);

        /* Node 0's token through p11-kit server, for every node. */
        if (asprintf(&socket_path, "%s/p11-kit.sock", nodes[0].harness->state_dir) < 0 ||
            asprintf(&conf, "SOFTHSM2_CONF=%s", nodes[0].harness->softhsm_conf) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = p11_server_start(BENCH_SOFTHSM_MODULE, "pkcs11:token=" HARNESS_TOKEN_LABEL, socket_path,
                             nodes[0].harness->smimed_uid, nodes[0].harness->smimed_gid, (char *const[]){conf, NULL},
                             &token_server);
        for (size_t i = 0; i < MAX_NODES && r >= 0; i++)
                r = node_start_smimed(&nodes[i], nodes[0].harness);
        for (size_t i = 0; i < MAX_NODES && r >= 0; i++) {
                _cleanup_(closep) int out = open("/dev/null", O_WRONLY | O_CLOEXEC);

                r = bench_sign(nodes[i].bus, BENCH_ADDRESS, message, out);
        }
        if (r < 0)
                goto out;
        for (unsigned n = 1; n <= MAX_NODES; n++) {
                rate[n - 1] = sign_rate(nodes, n, message, seconds);
                if (rate[n - 1] < 0) {
                        r = (int) rate[n - 1];
                        goto out;
                }
                printf("sign rsa-2048, %u node%s through p11-kit server, %u clients: %.1f/s; %.2fx direct; %.2fx 1 "
                       "node\n",
                       n, n > 1 ? "s" : "", n * CLIENTS_PER_NODE, rate[n - 1], rate[n - 1] / direct,
                       rate[n - 1] / rate[0]);
                fflush(stdout);
        }
out:
        for (size_t i = 0; i < MAX_NODES; i++)
                node_done(&nodes[i]);
        token_server = p11_server_free(token_server);
        pki_done(&p);
        return r;
}

int main(int argc, char **argv) {
        const char *what = argc > 1 ? argv[1] : "";
        int r;

        if (!streq(what, "lookup") && !streq(what, "latency") && !streq(what, "sign")) {
                fprintf(stderr, "usage: %s lookup [N] | latency [K] | sign [SECONDS]\n", argv[0]);
                return 2;
        }
        r = pg_server_start(&server);
        if (r < 0) {
                fprintf(stderr, "bench: PostgreSQL did not start: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        if (streq(what, "lookup"))
                r = bench_lookup(argc > 2 ? strtoul(argv[2], NULL, 10) : 100000);
        else if (streq(what, "latency"))
                r = bench_latency(argc > 2 ? (unsigned) strtoul(argv[2], NULL, 10) : 50);
        else
                r = bench_sign_cluster(argc > 2 ? strtod(argv[2], NULL) : 3.0);
        server = pg_server_free(server);
        if (r < 0)
                fprintf(stderr, "bench-cluster %s: %s\n", what, strerror(-r));
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
