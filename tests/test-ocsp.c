/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OCSP ([Revocation] Method=ocsp and ocsp-then-crl) against real responders
 * on this machine: `openssl ocsp` (which binds every interface, hence the
 * network namespace of the test's own, as in test-revocation.c) signing
 * with the CA, with delegated responders with and without id-kp-OCSPSigning,
 * and with a key of no relation; a small python3 server that answers a POST
 * with a response made here (stale), never answers under /slow/, and serves
 * CRLs; nothing listens on DEAD_PORT. One smimed for the whole file; each
 * case has CAs of its own. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ocsp.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"

#define HTTP_PORT 8080
#define DEAD_PORT 8081
#define FETCH_TIMEOUT_SEC (wrapped() ? 10 : 2)
#define PROMPT_USEC (wrapped() ? 3000000ULL : 500000ULL)
#define HTTP_URL(path) "http://127.0.0.1:8080/" path
#define MAX_RESPONDERS 8

static Harness *harness;
static char *config_path;
static char *files_dir;
static pid_t pids[MAX_RESPONDERS + 1];
static size_t n_pids;

static const char server_script[] =
        "import http.server, os, sys, time\n"
        "class Handler(http.server.BaseHTTPRequestHandler):\n"
        "    def answer(self, content_type):\n"
        "        if self.path.startswith('/slow/'):\n"
        "            time.sleep(3600)\n"
        "            return\n"
        "        try:\n"
        "            with open(os.path.join(sys.argv[2], os.path.basename(self.path)), 'rb') as f:\n"
        "                data = f.read()\n"
        "        except OSError:\n"
        "            self.send_error(404)\n"
        "            return\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Type', content_type)\n"
        "        self.send_header('Content-Length', str(len(data)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(data)\n"
        "    def do_GET(self):\n"
        "        self.answer('application/pkix-crl')\n"
        "    def do_POST(self):\n"
        "        self.rfile.read(int(self.headers.get('Content-Length', '0')))\n"
        "        self.answer('application/ocsp-response')\n"
        "    def log_message(self, *args):\n"
        "        pass\n"
        "class Server(http.server.ThreadingHTTPServer):\n"
        "    daemon_threads = True\n"
        "Server(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()\n";

static bool wrapped(void) {
        const char *w = getenv("SMIMED_TEST_WRAPPER");

        return w && *w;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static void pause_briefly(void) {
        struct timespec ts = {.tv_nsec = 50 * 1000 * 1000};

        nanosleep(&ts, NULL);
}

/* A network namespace with only loopback, up. */
static int enter_network_namespace(void) {
        struct ifreq ifr = {};
        int fd, r = 0;

        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strcpy(ifr.ifr_name, "lo");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                r = -errno;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (r >= 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                r = -errno;
        close(fd);
        return r;
}

static bool port_accepts(int port) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
        if (fd >= 0)
                close(fd);
        return ok;
}

static bool file_contains(const char *path, const char *needle) {
        char buf[4096] = "";
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        return strstr(buf, needle);
}

/* Starts argv and waits until port accepts connections, or, with
 * ready_log, until the program's stderr (written there) says ready_word:
 * `openssl ocsp` stalls for good on a connection that closes without a
 * request, so it is not probed. */
static int spawn(char *const *argv, int port, const char *ready_log, const char *ready_word) {
        uint64_t deadline;
        pid_t pid;

        assert_true(n_pids < ELEMENTSOF(pids));
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (null >= 0) {
                        dup2(null, STDIN_FILENO);
                        dup2(null, STDOUT_FILENO);
                }
                if (ready_log) {
                        int log = open(ready_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                        if (log >= 0)
                                dup2(log, STDERR_FILENO);
                }
                execv(argv[0], argv);
                _exit(127);
        }
        pids[n_pids++] = pid;
        deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        while (ready_log ? !file_contains(ready_log, ready_word) : !port_accepts(port)) {
                if (now_usec() > deadline || waitpid(pid, NULL, WNOHANG) != 0)
                        return -EIO;
                pause_briefly();
        }
        return 0;
}

static char *write_in_dir(const char *name, const void *data, size_t len) {
        char *path = NULL;

        assert_true(asprintf(&path, "%s/%s", files_dir, name) > 0);
        assert_int_equal(pki_write_file(path, data, len), 0);
        return path;
}

static char *write_text(const char *name, const char *text) {
        return write_in_dir(name, text, strlen(text));
}

/* An `openssl ocsp` responder on port for certificates ca issued, signing
 * with signer; revoked leaves are in its index as revoked, the rest good. */
static void start_responder(int port, const PkiCert *ca, const PkiCert *signer, const PkiCert *const *good,
                            const PkiCert *const *revoked) {
        _cleanup_free_ char *index = NULL, *ca_pem = pki_cert_pem(ca), *signer_pem = pki_cert_pem(signer),
                            *key_pem = pki_key_pem(signer->key), *name = NULL, *ca_path = NULL, *signer_path = NULL,
                            *key_path = NULL, *index_path = NULL, *log_path = NULL;
        char port_text[16];
        size_t size = 0;
        FILE *f;

        assert_non_null(ca_pem);
        assert_non_null(signer_pem);
        assert_non_null(key_pem);
        f = open_memstream(&index, &size);
        assert_non_null(f);
        for (int pass = 0; pass < 2; pass++)
                for (const PkiCert *const *c = pass ? revoked : good; c && *c; c++) {
                        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber((*c)->x509), NULL);
                        char *hex = bn ? BN_bn2hex(bn) : NULL;

                        assert_non_null(hex);
                        fprintf(f, "%s\t301231235959Z\t%s\t%s\tunknown\t/CN=leaf\n", pass ? "R" : "V",
                                pass ? "240101000000Z" : "", hex);
                        OPENSSL_free(hex);
                        BN_free(bn);
                }
        assert_int_equal(fclose(f), 0);

        assert_true(asprintf(&name, "%d", port) > 0);
        snprintf(port_text, sizeof(port_text), "%d", port);
        {
                _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

                assert_true(asprintf(&a, "ocsp-%d-index.txt", port) > 0);
                assert_true(asprintf(&b, "ocsp-%d-ca.pem", port) > 0);
                assert_true(asprintf(&c, "ocsp-%d-signer.pem", port) > 0);
                assert_true(asprintf(&d, "ocsp-%d-signer.key", port) > 0);
                assert_true(asprintf(&log_path, "%s/ocsp-%d.log", files_dir, port) > 0);
                index_path = write_text(a, index ? index : "");
                ca_path = write_text(b, ca_pem);
                signer_path = write_text(c, signer_pem);
                key_path = write_text(d, key_pem);
        }
        assert_int_equal(spawn((char *[]){(char *) "/usr/bin/openssl", (char *) "ocsp", (char *) "-index", index_path,
                                          (char *) "-port", port_text, (char *) "-rsigner", signer_path,
                                          (char *) "-rkey", key_path, (char *) "-CA", ca_path, (char *) "-nmin",
                                          (char *) "60", (char *) "-ignore_err", NULL},
                               port, log_path, "waiting for OCSP client connections"),
                         0);
}

static char *config_text(const char *method, const char *unknown) {
        _cleanup_free_ char *extra = NULL;
        char *text;

        assert_true(asprintf(&extra,
                             "[Revocation]\n"
                             "Method=%s\n"
                             "FetchTimeoutSec=%d\n"
                             "Unknown=%s\n",
                             method, FETCH_TIMEOUT_SEC, unknown) > 0);
        text = harness_config_text(harness, extra);
        assert_non_null(text);
        return text;
}

static int setup(void **state) {
        _cleanup_free_ char *text = NULL, *script = NULL;
        char port[16];
        int r;

        (void) state;
        r = enter_network_namespace();
        if (r < 0) {
                fprintf(stderr, "Cannot make a network namespace: %s\n", strerror(-r));
                return r;
        }
        r = harness_new(&harness);
        if (r < 0)
                return r;
        if (asprintf(&files_dir, "%s/files", harness->dir) < 0 || mkdir(files_dir, 0755) < 0)
                return -1;
        script = harness_write_file(harness, "http-server.py", server_script, 0644);
        if (!script)
                return -1;
        snprintf(port, sizeof(port), "%d", HTTP_PORT);
        r = spawn((char *[]){(char *) "/usr/bin/python3", script, port, files_dir, NULL}, HTTP_PORT, NULL, NULL);
        if (r < 0)
                return r;
        r = harness_start_bus(harness);
        if (r < 0)
                return r;
        text = config_text("ocsp", "soft");
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        if (!config_path)
                return -1;
        return harness_start_smimed(harness, config_path, NULL);
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        for (size_t i = 0; i < n_pids; i++) {
                kill(pids[i], SIGKILL);
                waitpid(pids[i], NULL, 0);
        }
        config_path = mfree(config_path);
        files_dir = mfree(files_dir);
        return 0;
}

/* ---- helpers ---- */

static sd_bus *bus_open(void) {
        sd_bus *bus = NULL;

        assert_int_equal(harness_bus_open(&bus), 0);
        return bus;
}

/* A trusted root: the top of its chains, no CRL speaks for it. */
static PkiCert *make_ca(const char *name) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = name;
        o.is_ca = true;
        o.not_after_days = 3650;
        c = pki_cert_new(&o, NULL);
        assert_non_null(c);
        return c;
}

static char *path_of(const PkiCert *c) {
        char fp[65];
        char *p;

        assert_int_equal(pki_cert_fingerprint(c, fp), 0);
        assert_true(asprintf(&p, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", fp) > 0);
        return p;
}

static void import(const PkiCert *c, bool trust) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pem, strlen(pem)) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust) >= 0);
        if (sd_bus_call(bus, m, 0, &e, &reply) < 0)
                fail_msg("ImportCertificates failed: %s: %s", e.name, e.message);
}

static char *get_string(const PkiCert *c, const char *property) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = path_of(c);
        char *s = NULL;

        if (sd_bus_get_property_string(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, property, &e, &s) < 0)
                fail_msg("Get %s of %s failed: %s: %s", property, path, e.name, e.message);
        return s;
}

/* Polls Status until it is want, for up to HARNESS_TIMEOUT_USEC. */
static void wait_status(const PkiCert *c, const char *want) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;

        for (;;) {
                _cleanup_free_ char *status = get_string(c, "Status");

                if (streq(status, want))
                        return;
                if (now_usec() > deadline)
                        fail_msg("Status stayed %s, expected %s", status, want);
                pause_briefly();
        }
}

typedef struct Encrypt {
        bool possible;
        char *reason;
        char *message;
} Encrypt;

static void encrypt_done(Encrypt *e) {
        free(e->reason);
        free(e->message);
}

/* GetCapabilities("", [address]): the one encrypt entry. */
static Encrypt get_encrypt(const char *address) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *recipients[] = {address, NULL};
        Encrypt result = {};
        int r;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "GetCapabilities") >= 0);
        assert_true(sd_bus_message_append(m, "s", "") >= 0);
        assert_true(sd_bus_message_append_strv(m, (char **) recipients) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        if (sd_bus_call(bus, m, 0, &e, &reply) < 0)
                fail_msg("GetCapabilities failed: %s: %s", e.name, e.message);

        assert_true(sd_bus_message_skip(reply, "a{sv}") >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "a{sv}") > 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key, *s;
                int b;

                assert_true(sd_bus_message_read(reply, "s", &key) > 0);
                if (streq(key, "possible")) {
                        assert_true(sd_bus_message_read(reply, "v", "b", &b) > 0);
                        result.possible = b;
                } else if (streq(key, "reason") || streq(key, "message")) {
                        assert_true(sd_bus_message_read(reply, "v", "s", &s) > 0);
                        *(streq(key, "reason") ? &result.reason : &result.message) = strdup(s);
                } else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_true(r >= 0);
        assert_non_null(result.reason);
        assert_non_null(result.message);
        return result;
}

static PkiCert *make_leaf(const char *address, const PkiCert *ca, const char *ocsp_uri, const char *crl_uri) {
        const char *sans[] = {address, NULL};
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = address;
        o.san_emails = sans;
        o.ocsp_uri = ocsp_uri;
        o.crl_uri = crl_uri;
        c = pki_cert_new(&o, ca);
        assert_non_null(c);
        return c;
}

/* A responder certificate ca issued, with eku. */
static PkiCert *make_responder(const char *name, const PkiCert *ca, PkiEku eku) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = name;
        o.eku = eku;
        o.key_usage = KU_DIGITAL_SIGNATURE;
        c = pki_cert_new(&o, ca);
        assert_non_null(c);
        return c;
}

static void reload(const char *method, const char *unknown) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *text = config_text(method, unknown);

        assert_int_equal(pki_write_file(config_path, text, strlen(text)), 0);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload", &e, NULL,
                               NULL) < 0)
                fail_msg("Reload failed: %s: %s", e.name, e.message);
}

/* Asks about leaf (which makes smimed ask its responder), then waits for
 * the log to say needle. */
static void ask_and_wait_log(const PkiCert *leaf, const char *needle) {
        size_t from = harness_smimed_log_size(harness);
        _cleanup_free_ char *status = get_string(leaf, "Status");

        assert_int_equal(harness_wait_smimed_log(harness, from, needle), 0);
}

/* Not revoked, usable under soft, no answer from OCSP. */
static void assert_ignored(const PkiCert *leaf) {
        _cleanup_free_ char *status = get_string(leaf, "Status"), *text = get_string(leaf, "StatusText"),
                            *revocation = get_string(leaf, "Revocation");

        assert_string_equal(status, "valid");
        if (!strstr(text, "Revocation was not checked"))
                fail_msg("soft, no answer, yet: %s", text);
        assert_string_equal(revocation, "");
}

/* ---- the cases ---- */

#define GOOD_PORT 8082

static PkiCert *ca, *good_leaf, *revoked_leaf;

static void test_good_and_revoked(void **state) {
        _cleanup_free_ char *out = NULL, *err = NULL, *json = NULL, *text = NULL, *revocation = NULL;
        int r;

        (void) state;
        ca = make_ca("OCSP CA");
        good_leaf = make_leaf("good@example.com", ca, "http://127.0.0.1:8082/", NULL);
        revoked_leaf = make_leaf("revoked@example.com", ca, "http://127.0.0.1:8082/", NULL);
        start_responder(GOOD_PORT, ca, ca, (const PkiCert *const[]){good_leaf, NULL},
                        (const PkiCert *const[]){revoked_leaf, NULL});
        import(ca, true);
        import(good_leaf, false);
        import(revoked_leaf, false);

        wait_status(revoked_leaf, "revoked");
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("revoked@example.com");

                assert_false(e.possible);
                assert_string_equal(e.reason, "revoked");
                assert_non_null(strstr(e.message, "OCSP responder http://127.0.0.1:8082/"));
        }
        revocation = get_string(revoked_leaf, "Revocation");
        if (!startswith(revocation, "revoked since 2024-01-01 00:00:00 UTC by OCSP (http://127.0.0.1:8082/) at "))
                fail_msg("Revocation of the revoked leaf: %s", revocation);

        /* The good one: valid, with no word of revocation not checked, once answered. */
        {
                uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;

                for (;;) {
                        _cleanup_free_ char *rev = get_string(good_leaf, "Revocation");

                        if (startswith(rev, "good by OCSP (http://127.0.0.1:8082/) at "))
                                break;
                        if (now_usec() > deadline)
                                fail_msg("Revocation of the good leaf stayed \"%s\"", rev);
                        pause_briefly();
                }
        }
        {
                _cleanup_free_ char *status = get_string(good_leaf, "Status");

                text = get_string(good_leaf, "StatusText");
                assert_string_equal(status, "valid");
                if (strstr(text, "not checked"))
                        fail_msg("OCSP answered, yet: %s", text);
                assert_non_null(strstr(text, "valid until"));
        }

        /* smimectl show says where the answer came from and when, and --json too. */
        r = harness_run(harness,
                        (char *[]){(char *) SMIMECTL_BINARY, (char *) "show", (char *) "good@example.com", NULL},
                        false, &out, &err);
        if (r != 0 || !strstr(out, "good by OCSP (http://127.0.0.1:8082/) at ") || !strstr(out, "next update"))
                fail_msg("smimectl show exited %d:\n%s%s", r, strempty(out), strempty(err));
        err = mfree(err);
        r = harness_run(harness,
                        (char *[]){(char *) SMIMECTL_BINARY, (char *) "--json=short", (char *) "show",
                                   (char *) "revoked@example.com", NULL},
                        false, &json, &err);
        if (r != 0 || !strstr(json, "\"revocation\":\"revoked since 2024-01-01 00:00:00 UTC by OCSP"))
                fail_msg("smimectl --json show exited %d:\n%s%s", r, strempty(json), strempty(err));
}

/* Signed by a key of no relation to the CA (a certificate of the same
 * name): refused; the revocation it claims counts for nothing. */
static void test_forged(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *impostor = make_ca("Forged OCSP CA");
        _cleanup_(pki_cert_freep) PkiCert *real = make_ca("Forged OCSP CA");
        _cleanup_(pki_cert_freep) PkiCert *leaf =
                make_leaf("forged@example.com", real, "http://127.0.0.1:8083/", NULL);

        (void) state;
        start_responder(8083, real, impostor, NULL, (const PkiCert *const[]){leaf, NULL});
        import(real, true);
        import(leaf, false);
        ask_and_wait_log(leaf, "The OCSP response from http://127.0.0.1:8083/ is refused: The OCSP response is "
                               "signed neither by the issuer nor by a responder it delegated");
        assert_ignored(leaf);
}

/* A delegated responder: with id-kp-OCSPSigning, believed; without, refused. */
static void test_delegated(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *dca = make_ca("Delegating CA");
        _cleanup_(pki_cert_freep) PkiCert *with = make_responder("OCSP responder", dca, PKI_EKU_OCSP_SIGNING);
        _cleanup_(pki_cert_freep) PkiCert *without = make_responder("Not a responder", dca, PKI_EKU_CLIENT_AUTH);
        _cleanup_(pki_cert_freep) PkiCert *leaf1 =
                make_leaf("delegated@example.com", dca, "http://127.0.0.1:8084/", NULL);
        _cleanup_(pki_cert_freep) PkiCert *leaf2 =
                make_leaf("undelegated@example.com", dca, "http://127.0.0.1:8085/", NULL);

        (void) state;
        start_responder(8084, dca, with, NULL, (const PkiCert *const[]){leaf1, NULL});
        start_responder(8085, dca, without, NULL, (const PkiCert *const[]){leaf2, NULL});
        import(dca, true);
        import(leaf1, false);
        import(leaf2, false);
        wait_status(leaf1, "revoked");
        ask_and_wait_log(leaf2, "The OCSP response from http://127.0.0.1:8085/ is refused: The OCSP response is "
                                "signed neither by the issuer nor by a responder it delegated");
        assert_ignored(leaf2);
}

/* A response whose nextUpdate is past (made here, served as it is): refused. */
static void test_stale(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *sca = make_ca("Stale CA");
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf("stale@example.com", sca, HTTP_URL("stale.ocsp"), NULL);
        _cleanup_free_ char *path = NULL;
        OCSP_BASICRESP *basic = OCSP_BASICRESP_new();
        OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf->x509, sca->x509);
        ASN1_TIME *this_update = X509_gmtime_adj(NULL, -2 * 86400), *next_update = X509_gmtime_adj(NULL, -86400),
                  *revoked_at = X509_gmtime_adj(NULL, -3 * 86400);
        OCSP_RESPONSE *response;
        unsigned char *der = NULL;
        int len;

        (void) state;
        /* It says revoked: were it believed, the status would say so. */
        assert_non_null(OCSP_basic_add1_status(basic, id, V_OCSP_CERTSTATUS_REVOKED, OCSP_REVOKED_STATUS_UNSPECIFIED,
                                               revoked_at, this_update, next_update));
        assert_int_equal(OCSP_basic_sign(basic, sca->x509, sca->key, EVP_sha256(), NULL, 0), 1);
        response = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic);
        assert_non_null(response);
        len = i2d_OCSP_RESPONSE(response, &der);
        assert_true(len > 0);
        path = write_in_dir("stale.ocsp", der, (size_t) len);
        OPENSSL_free(der);
        OCSP_RESPONSE_free(response);
        OCSP_BASICRESP_free(basic);
        OCSP_CERTID_free(id);
        ASN1_TIME_free(this_update);
        ASN1_TIME_free(next_update);
        ASN1_TIME_free(revoked_at);

        import(sca, true);
        import(leaf, false);
        ask_and_wait_log(leaf, "The OCSP response is not current");
        assert_ignored(leaf);
}

static PkiCert *dead_ca, *dead_leaf;

/* Nobody at the responder's address: soft leaves the certificate usable and
 * says so; hard makes it revocation-unknown; a known revocation stays. */
static void test_server_down(void **state) {
        (void) state;
        dead_ca = make_ca("Dead OCSP CA");
        dead_leaf = make_leaf("dead@example.com", dead_ca, "http://127.0.0.1:8081/", NULL);
        import(dead_ca, true);
        import(dead_leaf, false);

        ask_and_wait_log(dead_leaf, "The OCSP response from http://127.0.0.1:8081/ cannot be fetched");
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("dead@example.com");

                assert_true(e.possible);
                if (!strstr(e.message, "Revocation was not checked: no OCSP responder gave an answer"))
                        fail_msg("soft: %s", e.message);
        }
        assert_ignored(dead_leaf);

        reload("ocsp", "hard");
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("dead@example.com");
                _cleanup_free_ char *status = get_string(dead_leaf, "Status");
                _cleanup_free_ char *revoked = get_string(revoked_leaf, "Status");
                _cleanup_free_ char *good = get_string(good_leaf, "Status");

                assert_false(e.possible);
                assert_string_equal(e.reason, "revocation-unknown");
                assert_string_equal(status, "revocation-unknown");
                assert_string_equal(revoked, "revoked");
                assert_string_equal(good, "valid");
        }
        reload("ocsp", "soft");
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("dead@example.com");

                assert_true(e.possible);
        }
}

/* A responder that accepts and never answers: calls answer at once
 * meanwhile, and smimed gives up after FetchTimeoutSec=. */
static void test_slow_server(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *sca = make_ca("Slow OCSP CA");
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf("slow@example.com", sca, HTTP_URL("slow/"), NULL);
        size_t log_from;
        uint64_t start, elapsed;

        (void) state;
        import(sca, true);
        import(leaf, false);

        log_from = harness_smimed_log_size(harness);
        start = now_usec();
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("slow@example.com");

                assert_true(e.possible); /* soft */
                assert_non_null(strstr(e.message, "not checked"));
        }
        assert_int_equal(harness_wait_smimed_log(harness, log_from, "Asking the OCSP responder " HTTP_URL("slow/")),
                         0);
        for (int i = 0; i < 5; i++) {
                uint64_t t = now_usec();
                _cleanup_(encrypt_done) Encrypt e = get_encrypt(i % 2 ? "good@example.com" : "slow@example.com");

                elapsed = now_usec() - t;
                if (elapsed > PROMPT_USEC)
                        fail_msg("GetCapabilities took %" PRIu64 " ms while an OCSP query hung", elapsed / 1000);
                if (i % 2)
                        assert_true(e.possible);
        }
        assert_int_equal(harness_wait_smimed_log(harness, log_from, "did not arrive within FetchTimeoutSec="), 0);
        elapsed = now_usec() - start;
        if (elapsed < (uint64_t) (FETCH_TIMEOUT_SEC - 1) * 1000000ULL ||
            elapsed > (uint64_t) (FETCH_TIMEOUT_SEC + 20) * 1000000ULL)
                fail_msg("the query gave up after %" PRIu64 " ms, expected about %d s", elapsed / 1000,
                         FETCH_TIMEOUT_SEC);
}

/* ocsp-then-crl: the responder is down, the CRL of the distribution point
 * revokes the certificate; one the CRL does not list is good by the CRL. */
static void test_ocsp_then_crl(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *cca = make_ca("Fallback CA");
        _cleanup_(pki_cert_freep) PkiCert *leaf =
                make_leaf("fallback@example.com", cca, "http://127.0.0.1:8081/", HTTP_URL("fallback.crl"));
        _cleanup_(pki_cert_freep) PkiCert *other =
                make_leaf("fallback-good@example.com", cca, "http://127.0.0.1:8081/", HTTP_URL("fallback.crl"));
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *path = NULL, *revocation = NULL, *under_ocsp = NULL;
        uint64_t serial = pki_cert_serial(leaf);
        unsigned char *der = NULL;
        size_t len = 0;
        PkiCrlOptions o;

        (void) state;
        pki_crl_options_init(&o);
        crl = pki_crl_new(cca, &serial, 1, &o);
        assert_non_null(crl);
        assert_int_equal(pki_crl_der(crl, &der, &len), 0);
        path = write_in_dir("fallback.crl", der, len);
        free(der);

        import(cca, true);
        import(leaf, false);
        import(other, false);
        /* Under ocsp alone, the CRL is not fetched: nothing revokes it. */
        ask_and_wait_log(leaf, "The OCSP response from http://127.0.0.1:8081/ cannot be fetched");
        under_ocsp = get_string(leaf, "Status");
        assert_string_equal(under_ocsp, "valid");

        reload("ocsp-then-crl", "soft");
        wait_status(leaf, "revoked");
        revocation = get_string(leaf, "Revocation");
        if (!startswith(revocation, "revoked by the CRL of \"Fallback CA\" issued "))
                fail_msg("Revocation: %s", revocation);
        {
                _cleanup_free_ char *status = get_string(other, "Status"), *rev = get_string(other, "Revocation");

                assert_string_equal(status, "valid");
                if (!startswith(rev, "good by the CRL of \"Fallback CA\""))
                        fail_msg("Revocation of the other: %s", rev);
        }
        /* And OCSP still first where it answers. */
        {
                _cleanup_free_ char *status = get_string(revoked_leaf, "Status");

                assert_string_equal(status, "revoked");
        }
        reload("ocsp", "soft");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_and_revoked), cmocka_unit_test(test_forged),
                cmocka_unit_test(test_delegated),        cmocka_unit_test(test_stale),
                cmocka_unit_test(test_server_down),      cmocka_unit_test(test_slow_server),
                cmocka_unit_test(test_ocsp_then_crl),
        };
        int r;

        r = cmocka_run_group_tests(tests, setup, teardown);
        ca = pki_cert_free(ca);
        good_leaf = pki_cert_free(good_leaf);
        revoked_leaf = pki_cert_free(revoked_leaf);
        dead_ca = pki_cert_free(dead_ca);
        dead_leaf = pki_cert_free(dead_leaf);
        return r;
}
