/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "bench-util.h"
#include "smimed-bus-names.h"

#define CALL_TIMEOUT_USEC (120ULL * 1000000ULL)

uint64_t bench_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

double bench_seconds_from_args(int argc, char **argv) {
        double s = argc > 1 ? strtod(argv[1], NULL) : 3.0;

        return s > 0 ? s : 3.0;
}

/* "Sign: org.smimed1.Error.NoCertificate: …", or the errno when the call
 * never reached the daemon. */
static int call_failed(const char *method, const sd_bus_error *e, int r) {
        if (e && sd_bus_error_is_set(e))
                fprintf(stderr, "%s: %s: %s\n", method, e->name, strempty(e->message));
        else
                fprintf(stderr, "%s: %s\n", method, strerror(r < 0 ? -r : EIO));
        return r < 0 ? r : -EIO;
}

int bench_import_pem(sd_bus *bus, const char *pem, bool trust) {
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
                r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, NULL);
        return r < 0 ? call_failed("ImportCertificates", &e, r) : 0;
}

int bench_issue_leaf(Bench *b, const char *address, EVP_PKEY *pub, PkiCert **ret) {
        _cleanup_(pki_cert_freep) PkiCert *leaf = NULL;
        _cleanup_free_ char *pem = NULL;
        const char *san[] = { address, NULL };
        PkiCertOptions o;
        int r;

        pki_cert_options_init(&o);
        o.common_name = address;
        o.san_emails = san;
        o.key = pub;
        leaf = pki_cert_new(&o, b->root);
        pem = leaf ? pki_cert_pem(leaf) : NULL;
        if (!pem) {
                fprintf(stderr, "bench: cannot issue a certificate for %s\n", address);
                return -EIO;
        }
        r = bench_import_pem(b->bus, pem, false);
        if (r < 0)
                return r;
        if (ret)
                *ret = TAKE_PTR(leaf);
        return 0;
}

/* A shared machine makes low figures: say so where they are read. */
static void warn_if_busy(void) {
        double load = 0;
        FILE *f = fopen("/proc/loadavg", "re");

        if (!f)
                return;
        if (fscanf(f, "%lf", &load) == 1 && load > 0.5)
                fprintf(stderr, "bench: load average %.2f on %ld CPUs before starting: other work competes with "
                                "the figures\n",
                        load, sysconf(_SC_NPROCESSORS_ONLN));
        fclose(f);
}

Bench *bench_free(Bench *b) {
        if (!b)
                return NULL;
        sd_bus_flush_close_unref(b->bus);
        pki_cert_free(b->leaf);
        pki_cert_free(b->root);
        harness_free(b->harness);
        return mfree(b);
}

int bench_new(Bench **ret) {
        return bench_new_full(ret, NULL);
}

int bench_new_full(Bench **ret, const char *extra_config) {
        _cleanup_(bench_freep) Bench *b = NULL;
        _cleanup_free_ char *text = NULL, *config = NULL, *root_pem = NULL;
        EVP_PKEY *pub;
        int r;

        warn_if_busy();
        b = calloc(1, sizeof(Bench));
        if (!b)
                return -ENOMEM;
        r = harness_new(&b->harness);
        if (r < 0)
                return r;
        r = harness_start_bus(b->harness);
        if (r < 0)
                return r;
        text = harness_config_text(b->harness, extra_config);
        config = text ? harness_write_file(b->harness, "smimed.conf", text, 0644) : NULL;
        if (!config)
                return -ENOMEM;
        r = harness_start_smimed(b->harness, config, NULL);
        if (r < 0) {
                fprintf(stderr, "bench: smimed did not start, see %s\n", b->harness->smimed_log);
                return r;
        }
        r = harness_bus_open(&b->bus);
        if (r < 0) {
                fprintf(stderr, "bench: cannot connect to the harness bus: %s\n", strerror(-r));
                return r;
        }

        b->root = pki_root_ca("Bench Root");
        root_pem = b->root ? pki_cert_pem(b->root) : NULL;
        if (!root_pem)
                return -EIO;
        r = bench_import_pem(b->bus, root_pem, true);
        if (r < 0)
                return r;

        pub = pki_public_key_from_pem_file(b->harness->key_pem);
        if (!pub)
                return -EIO;
        r = bench_issue_leaf(b, BENCH_ADDRESS, pub, &b->leaf);
        EVP_PKEY_free(pub);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(b);
        return 0;
}

static int unhex(const char *hex, unsigned char *ret, size_t max, size_t *ret_len) {
        size_t n = strlen(hex);

        if (n == 0 || n % 2 != 0 || n / 2 > max)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;

                if (sscanf(hex + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                ret[i] = (unsigned char) v;
        }
        *ret_len = n / 2;
        return 0;
}

int bench_generate_key(sd_bus *bus, const char *address, const char *type, unsigned char *ret_id, size_t *ret_id_len,
                       EVP_PKEY **ret_pub) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *path, *csr_pem, *id;
        X509_REQ *req = NULL;
        EVP_PKEY *pub = NULL;
        BIO *bio;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "GenerateKey");
        if (r >= 0)
                r = sd_bus_message_append(m, "sa{sv}", address, 1, "type", "s", type);
        if (r >= 0)
                r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                return call_failed("GenerateKey", &e, r);
        r = sd_bus_message_read(reply, "os", &path, &csr_pem);
        if (r < 0)
                return call_failed("GenerateKey (reply)", NULL, r);

        /* /org/smimed1/key/<CKA_ID hex> */
        id = strrchr(path, '/');
        if (!id || unhex(id + 1, ret_id, 64, ret_id_len) < 0) {
                fprintf(stderr, "GenerateKey: the key object %s does not name a CKA_ID\n", path);
                return -EBADMSG;
        }

        bio = BIO_new_mem_buf(csr_pem, -1);
        req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
        pub = req ? X509_REQ_get_pubkey(req) : NULL;
        X509_REQ_free(req);
        BIO_free(bio);
        if (!pub) {
                fprintf(stderr, "GenerateKey: the CSR it returned cannot be read\n");
                return -EBADMSG;
        }
        *ret_pub = pub;
        return 0;
}

static int memfd_write_all(int fd, const char *data, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, data, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                data += n;
                len -= (size_t) n;
        }
        return 0;
}

int bench_message_memfd(const char *address, size_t size) {
        static const char line[] = "The quick brown fox jumps over the lazy dog, and smimed signs what it wrote.\n";
        _cleanup_(closep) int fd = memfd_create("bench-message", MFD_CLOEXEC);
        char head[512];
        size_t len;
        int r;

        if (fd < 0)
                return -errno;
        snprintf(head, sizeof(head),
                 "From: Bench <%s>\nTo: Bench <%s>\nSubject: bench\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
                 "Message-ID: <bench@example.com>\nMIME-Version: 1.0\n"
                 "Content-Type: text/plain; charset=us-ascii\n\n",
                 address, address);
        len = strlen(head);
        r = memfd_write_all(fd, head, len);
        while (r >= 0 && len < size) {
                size_t k = size - len < sizeof(line) - 1 ? size - len : sizeof(line) - 1;

                r = memfd_write_all(fd, line, k);
                len += k;
        }
        if (r < 0 || lseek(fd, 0, SEEK_SET) < 0)
                return r < 0 ? r : -errno;
        return TAKE_FD(fd);
}

static int memfd_copy(int fd, bool sealed) {
        _cleanup_(closep) int copy = memfd_create("bench-input", MFD_CLOEXEC | (sealed ? MFD_ALLOW_SEALING : 0));
        char buf[65536];
        ssize_t n;
        off_t at = 0;
        int r;

        if (copy < 0)
                return -errno;
        while ((n = pread(fd, buf, sizeof(buf), at)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                r = memfd_write_all(copy, buf, (size_t) n);
                if (r < 0)
                        return r;
                at += n;
        }
        if (lseek(copy, 0, SEEK_SET) < 0 ||
            (sealed && fcntl(copy, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0))
                return -errno;
        return TAKE_FD(copy);
}

int bench_memfd_copy(int fd) {
        return memfd_copy(fd, false);
}

int bench_memfd_copy_sealed(int fd) {
        return memfd_copy(fd, true);
}

/* The string value of key in the a{sv} of reply; NULL when absent. */
static int reply_string(sd_bus_message *reply, const char *key, const char **ret) {
        int r;

        *ret = NULL;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *k, *type;

                r = sd_bus_message_read(reply, "s", &k);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, NULL, &type);
                if (r >= 0 && streq(k, key) && streq(type, "s"))
                        r = sd_bus_message_read(reply, "v", "s", ret);
                else if (r >= 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r < 0 ? r : 0;
}

/* Calls method with the input read from its start; the reply's a{sv} must
 * hold key (with the value expect, unless NULL). */
static int fd_call(sd_bus *bus, const char *method, const char *const *recipients, const char *sender, int input,
                   int output, const char *key, const char *expect) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *value;
        int r;

        if (lseek(input, 0, SEEK_SET) < 0 || (lseek(output, 0, SEEK_SET) < 0 && errno != ESPIPE))
                return call_failed(method, NULL, -errno);
        if (ftruncate(output, 0) < 0 && errno != EINVAL)
                return call_failed(method, NULL, -errno);

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           method);
        if (r >= 0 && recipients)
                r = sd_bus_message_append_strv(m, (char **) recipients);
        if (r >= 0 && sender)
                r = sd_bus_message_append(m, "s", sender);
        if (r >= 0)
                r = sd_bus_message_append(m, "hha{sv}", input, output, 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                return call_failed(method, &e, r);

        r = reply_string(reply, key, &value);
        if (r < 0)
                return call_failed(method, NULL, r);
        if (!value || (expect && !streq(value, expect))) {
                fprintf(stderr, "%s: the result has %s=%s, expected %s\n", method, key, value ? value : "(none)",
                        expect ? expect : "a value");
                return -EBADMSG;
        }
        return 0;
}

int bench_sign(sd_bus *bus, const char *sender, int input, int output) {
        return fd_call(bus, "Sign", NULL, sender, input, output, "signer", NULL);
}

int bench_sign_data(sd_bus *bus, const char *sender, const void *data, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const void *result;
        size_t result_size = 0;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "SignData");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", sender);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', data, size);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply);
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &result, &result_size);
        if (r < 0)
                return call_failed("SignData", &e, r);
        return result_size > size ? 0 : call_failed("SignData", NULL, -EBADMSG);
}

int bench_encrypt(sd_bus *bus, const char *recipient, int input, int output) {
        const char *recipients[] = { recipient, NULL };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (lseek(input, 0, SEEK_SET) < 0)
                return call_failed("Encrypt", NULL, -errno);
        r = sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "Encrypt");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char **) recipients);
        if (r >= 0)
                r = sd_bus_message_append(m, "hha{sv}", input, output, 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply);
        return r < 0 ? call_failed("Encrypt", &e, r) : 0;
}

int bench_decrypt(sd_bus *bus, int input, int output) {
        return fd_call(bus, "Decrypt", NULL, NULL, input, output, "encryption", "encrypted");
}

/* The rate runner. */

typedef struct Runner {
        const BenchOps *ops;
        void *arg;
        pthread_barrier_t ready;
        pthread_barrier_t go;
        uint64_t start, end;
        atomic_bool failed;
} Runner;

typedef struct Worker {
        Runner *runner;
        pthread_t thread;
        unsigned index;
        double rate;
        int r;
} Worker;

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        Runner *run = w->runner;
        void *state = NULL;
        uint64_t first = 0, last = 0;
        unsigned long n = 0;

        w->r = run->ops->setup(run->arg, w->index, &state);
        if (w->r < 0)
                atomic_store(&run->failed, true);
        pthread_barrier_wait(&run->ready);
        pthread_barrier_wait(&run->go);

        /* Each thread's rate over its own window: from the start of its
         * first op after the warm-up to the end of its last one. */
        while (w->r >= 0 && !atomic_load(&run->failed)) {
                uint64_t t0 = bench_now_usec(), t1;

                if (t0 >= run->end)
                        break;
                w->r = run->ops->op(state);
                if (w->r < 0) {
                        atomic_store(&run->failed, true);
                        break;
                }
                t1 = bench_now_usec();
                if (t0 >= run->start) {
                        if (n == 0)
                                first = t0;
                        n++;
                        last = t1;
                }
        }
        w->rate = n > 0 && last > first ? (double) n * 1e6 / (double) (last - first) : 0.0;
        if (state)
                run->ops->teardown(state);
        return NULL;
}

static void sleep_until(uint64_t usec) {
        struct timespec ts = {.tv_sec = (time_t) (usec / 1000000ULL), .tv_nsec = (long) (usec % 1000000ULL) * 1000L};

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

double bench_rate(const BenchOps *ops, void *arg, unsigned threads, double warmup, double seconds) {
        return bench_rate_window(ops, arg, threads, warmup, seconds, NULL, NULL);
}

double bench_rate_window(const BenchOps *ops, void *arg, unsigned threads, double warmup, double seconds,
                         void (*window)(void *userdata, bool end), void *userdata) {
        Runner run = { .ops = ops, .arg = arg };
        _cleanup_free_ Worker *workers = NULL;
        unsigned started = 0;
        double total = 0;
        int r = 0;

        if (threads == 0 || threads > BENCH_MAX_THREADS)
                return -EINVAL;
        workers = calloc(threads, sizeof(Worker));
        if (!workers)
                return -ENOMEM;
        pthread_barrier_init(&run.ready, NULL, threads + 1);
        pthread_barrier_init(&run.go, NULL, threads + 1);
        for (; started < threads; started++) {
                workers[started] = (Worker) { .runner = &run, .index = started };
                r = -pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                /* The barriers wait for threads that do not exist: give up. */
                fprintf(stderr, "bench: cannot start a thread: %s\n", strerror(-r));
                exit(EXIT_FAILURE);
        }

        pthread_barrier_wait(&run.ready);
        run.start = bench_now_usec() + (uint64_t) (warmup * 1e6);
        run.end = run.start + (uint64_t) (seconds * 1e6);
        pthread_barrier_wait(&run.go);
        if (window) {
                sleep_until(run.start);
                window(userdata, false);
                sleep_until(run.end);
                window(userdata, true);
        }

        for (unsigned i = 0; i < started; i++) {
                pthread_join(workers[i].thread, NULL);
                if (workers[i].r < 0 && r >= 0)
                        r = workers[i].r;
                total += workers[i].rate;
        }
        pthread_barrier_destroy(&run.ready);
        pthread_barrier_destroy(&run.go);
        return r < 0 ? (double) r : total;
}

/* Bus clients. */

typedef struct BusClientState {
        const BenchBusClient *client;
        sd_bus *bus;
        int input;
        int output;
        char *data; /* SignData: the message */
        size_t size;
} BusClientState;

/* All of the file fd, from its start. */
static int read_whole(int fd, char **ret, size_t *ret_size) {
        struct stat st;
        char *data;

        if (fstat(fd, &st) < 0)
                return -errno;
        data = malloc((size_t) st.st_size + 1);
        if (!data)
                return -ENOMEM;
        if (pread(fd, data, (size_t) st.st_size, 0) != st.st_size) {
                free(data);
                return -EIO;
        }
        *ret = data;
        *ret_size = (size_t) st.st_size;
        return 0;
}

static void bus_client_teardown(void *userdata) {
        BusClientState *s = userdata;

        sd_bus_flush_close_unref(s->bus);
        free(s->data);
        if (s->input >= 0)
                close(s->input);
        if (s->output >= 0)
                close(s->output);
        free(s);
}

int bench_ping(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", &e,
                               NULL, "");
        if (r < 0)
                fprintf(stderr, "bench: Ping: %s\n", e.message ?: strerror(-r));
        return r;
}

static int bus_client_setup(void *arg, unsigned index, void **ret) {
        BusClientState *s = calloc(1, sizeof(BusClientState));
        int r;

        if (!s)
                return -ENOMEM;
        s->client = arg;
        /* Ping carries no message: its input is /dev/null, unused. */
        s->input = streq(s->client->method, "Ping") ? open("/dev/null", O_RDONLY | O_CLOEXEC)
                                                    : bench_memfd_copy_sealed(s->client->input);
        s->output = open("/dev/null", O_WRONLY | O_CLOEXEC);
        r = harness_bus_open(&s->bus);
        if (r >= 0 && s->input >= 0 && streq(s->client->method, "SignData"))
                r = read_whole(s->input, &s->data, &s->size);
        if (r < 0 || s->input < 0 || s->output < 0) {
                fprintf(stderr, "bench: client %u cannot be set up: %s\n", index,
                        strerror(r < 0 ? -r : s->input < 0 ? -s->input : errno));
                bus_client_teardown(s);
                return r < 0 ? r : -EIO;
        }
        *ret = s;
        return 0;
}

static int bus_client_op(void *userdata) {
        BusClientState *s = userdata;

        if (streq(s->client->method, "Ping"))
                return bench_ping(s->bus);
        if (streq(s->client->method, "Sign"))
                return bench_sign(s->bus, s->client->sender, s->input, s->output);
        if (streq(s->client->method, "SignData"))
                return bench_sign_data(s->bus, s->client->sender, s->data, s->size);
        return bench_decrypt(s->bus, s->input, s->output);
}

const BenchOps bench_bus_client_ops = {
        .setup = bus_client_setup,
        .op = bus_client_op,
        .teardown = bus_client_teardown,
};

double bench_print_bus_ceiling(const char *what, double raw_rate, double warmup, double seconds) {
        const BenchBusClient ping = { .method = "Ping", .input = -1 };
        double ping_rate = bench_rate(&bench_bus_client_ops, (void *) &ping, 1, warmup, seconds);

        if (ping_rate < 0)
                return ping_rate;
        /* Per message: the token's time plus at least one round trip. */
        printf("%s ceiling: one round trip through dbus-daemon (Peer.Ping of smimed) takes %.0f us; a service "
               "behind the bus cannot exceed %.2f of raw\n",
               what, 1e6 / ping_rate, ping_rate / (raw_rate + ping_rate));
        fflush(stdout);
        return ping_rate;
}

/* Raw PKCS#11. */

const char *bench_ck_rv_name(CK_RV rv) {
        static __thread char buf[32];

        switch (rv) {
        case CKR_OK: return "CKR_OK";
        case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
        case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
        case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
        case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
        case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
        case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
        case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
        case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
        case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
        case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
        case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
        case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
        case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
        case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
        case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
        default:
                snprintf(buf, sizeof(buf), "CKR 0x%lx", (unsigned long) rv);
                return buf;
        }
}

static int ck_failed(const char *what, CK_RV rv) {
        fprintf(stderr, "PKCS#11: %s: %s\n", what, bench_ck_rv_name(rv));
        return -EIO;
}

BenchToken *bench_token_close(BenchToken *t) {
        if (!t)
                return NULL;
        if (t->f) {
                t->f->C_CloseAllSessions(t->slot);
                t->f->C_Finalize(NULL);
        }
        /* No dlclose(): SoftHSM2 shares this process's libcrypto. */
        return mfree(t);
}

static bool label_is(const CK_UTF8CHAR label[32], const char *want) {
        size_t n = strlen(want);

        if (n > 32 || memcmp(label, want, n) != 0)
                return false;
        for (size_t i = n; i < 32; i++)
                if (label[i] != ' ')
                        return false;
        return true;
}

int bench_token_open(const char *module, const char *label, const char *pin, BenchToken **ret) {
        _cleanup_(bench_token_closep) BenchToken *t = NULL;
        CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
        CK_C_GetFunctionList get_function_list;
        CK_SLOT_ID slots[64];
        CK_ULONG n = ELEMENTSOF(slots);
        CK_RV rv;
        bool found = false;

        t = calloc(1, sizeof(BenchToken));
        if (!t)
                return -ENOMEM;
        t->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
        if (!t->dl) {
                fprintf(stderr, "PKCS#11: cannot load %s: %s\n", module, dlerror());
                return -ENOENT;
        }
        get_function_list = (CK_C_GetFunctionList) dlsym(t->dl, "C_GetFunctionList");
        if (!get_function_list) {
                fprintf(stderr, "PKCS#11: %s has no C_GetFunctionList\n", module);
                return -ENOENT;
        }
        rv = get_function_list(&t->f);
        if (rv != CKR_OK)
                return ck_failed("C_GetFunctionList", rv);
        rv = t->f->C_Initialize(&args);
        if (rv != CKR_OK) {
                t->f = NULL;
                return ck_failed("C_Initialize", rv);
        }

        rv = t->f->C_GetSlotList(CK_TRUE, slots, &n);
        if (rv != CKR_OK)
                return ck_failed("C_GetSlotList", rv);
        for (CK_ULONG i = 0; i < n && !found; i++) {
                CK_TOKEN_INFO info;

                if (t->f->C_GetTokenInfo(slots[i], &info) == CKR_OK && label_is(info.label, label)) {
                        t->slot = slots[i];
                        found = true;
                }
        }
        if (!found) {
                fprintf(stderr, "PKCS#11: no token labelled %s\n", label);
                return -ENODEV;
        }

        rv = t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &t->login_session);
        if (rv != CKR_OK)
                return ck_failed("C_OpenSession", rv);
        /* Login state belongs to the application: every session sees it. */
        rv = t->f->C_Login(t->login_session, CKU_USER, (CK_UTF8CHAR_PTR) pin, strlen(pin));
        if (rv != CKR_OK)
                return ck_failed("C_Login", rv);

        *ret = TAKE_PTR(t);
        return 0;
}

int bench_token_session_key(BenchToken *t, const unsigned char *id, size_t id_len, CK_SESSION_HANDLE *ret_session,
                            CK_OBJECT_HANDLE *ret_key) {
        CK_OBJECT_CLASS class = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE template[] = {
                { CKA_CLASS, &class, sizeof(class) },
                { CKA_ID, (void *) id, id_len },
        };
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE key;
        CK_ULONG found = 0;
        CK_RV rv;

        rv = t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
        if (rv != CKR_OK)
                return ck_failed("C_OpenSession", rv);
        rv = t->f->C_FindObjectsInit(s, template, ELEMENTSOF(template));
        if (rv == CKR_OK) {
                rv = t->f->C_FindObjects(s, &key, 1, &found);
                (void) t->f->C_FindObjectsFinal(s);
        }
        if (rv != CKR_OK || found == 0) {
                t->f->C_CloseSession(s);
                if (rv != CKR_OK)
                        return ck_failed("C_FindObjects", rv);
                fprintf(stderr, "PKCS#11: no private key with that CKA_ID in the token\n");
                return -ENOKEY;
        }
        *ret_session = s;
        *ret_key = key;
        return 0;
}

typedef struct RawState {
        const BenchRawOp *raw;
        CK_SESSION_HANDLE session;
        CK_OBJECT_HANDLE key;
} RawState;

static int raw_setup(void *arg, unsigned index, void **ret) {
        RawState *s = calloc(1, sizeof(RawState));
        int r;

        if (!s)
                return -ENOMEM;
        s->raw = arg;
        r = bench_token_session_key(s->raw->token, s->raw->id, s->raw->id_len, &s->session, &s->key);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static void raw_teardown(void *userdata) {
        RawState *s = userdata;

        s->raw->token->f->C_CloseSession(s->session);
        free(s);
}

/* One operation; the output in out (size *out_len on entry). */
static int raw_once(const BenchRawOp *raw, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, unsigned char *out,
                    CK_ULONG *out_len) {
        CK_FUNCTION_LIST *f = raw->token->f;
        CK_MECHANISM mechanism = { raw->mechanism, NULL, 0 };
        CK_RV rv;

        if (raw->decrypt) {
                rv = f->C_DecryptInit(session, &mechanism, key);
                if (rv != CKR_OK)
                        return ck_failed("C_DecryptInit", rv);
                rv = f->C_Decrypt(session, (CK_BYTE_PTR) raw->data, raw->data_len, out, out_len);
                if (rv != CKR_OK)
                        return ck_failed("C_Decrypt", rv);
                return 0;
        }
        rv = f->C_SignInit(session, &mechanism, key);
        if (rv != CKR_OK)
                return ck_failed("C_SignInit", rv);
        rv = f->C_Sign(session, (CK_BYTE_PTR) raw->data, raw->data_len, out, out_len);
        if (rv != CKR_OK)
                return ck_failed("C_Sign", rv);
        return 0;
}

static int raw_op(void *userdata) {
        RawState *s = userdata;
        unsigned char out[1024];
        CK_ULONG len = sizeof(out);
        int r;

        r = raw_once(s->raw, s->session, s->key, out, &len);
        if (r < 0)
                return r;
        if (s->raw->expect && (len != s->raw->expect_len || memcmp(out, s->raw->expect, len) != 0)) {
                fprintf(stderr, "PKCS#11: C_Decrypt returned another plaintext\n");
                return -EBADMSG;
        }
        return 0;
}

const BenchOps bench_raw_ops = {
        .setup = raw_setup,
        .op = raw_op,
        .teardown = raw_teardown,
};

/* CKM_ECDSA gives r || s; OpenSSL verifies DER. */
static int ecdsa_raw_to_der(const unsigned char *sig, size_t len, unsigned char **ret, size_t *ret_len) {
        ECDSA_SIG *e = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int) (len / 2), NULL), *s = BN_bin2bn(sig + len / 2, (int) (len / 2), NULL);
        unsigned char *der = NULL;
        int n;

        if (!e || !r || !s || !ECDSA_SIG_set0(e, r, s)) {
                ECDSA_SIG_free(e);
                BN_free(r);
                BN_free(s);
                return -ENOMEM;
        }
        n = i2d_ECDSA_SIG(e, &der);
        ECDSA_SIG_free(e);
        if (n <= 0)
                return -EIO;
        *ret = der;
        *ret_len = (size_t) n;
        return 0;
}

int bench_raw_check_signature(const BenchRawOp *raw, EVP_PKEY *pub) {
        CK_SESSION_HANDLE session;
        CK_OBJECT_HANDLE key;
        unsigned char sig[1024], *der = NULL;
        CK_ULONG len = sizeof(sig);
        size_t der_len = 0;
        EVP_PKEY_CTX *ctx = NULL;
        int r, ok = 0;

        r = bench_token_session_key(raw->token, raw->id, raw->id_len, &session, &key);
        if (r < 0)
                return r;
        r = raw_once(raw, session, key, sig, &len);
        raw->token->f->C_CloseSession(session);
        if (r < 0)
                return r;

        if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC)
                r = ecdsa_raw_to_der(sig, len, &der, &der_len);
        if (r < 0)
                return r;
        ctx = EVP_PKEY_CTX_new(pub, NULL);
        if (ctx && EVP_PKEY_verify_init(ctx) > 0 &&
            (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0))
                ok = der ? EVP_PKEY_verify(ctx, der, der_len, raw->data, raw->data_len)
                         : EVP_PKEY_verify(ctx, sig, len, raw->data, raw->data_len);
        EVP_PKEY_CTX_free(ctx);
        OPENSSL_free(der);
        if (ok != 1) {
                fprintf(stderr, "PKCS#11: the raw signature does not verify with the public key of the "
                                "certificate: not the same key\n");
                return -EBADMSG;
        }
        return 0;
}
