/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CRLs fetched from distribution points by smimed itself ([Revocation]),
 * against real HTTP servers on this machine. The test moves into a network
 * namespace of its own first, so that the servers it starts, and the smimed,
 * dbus-daemon and polkitd the harness starts, see only its loopback. One
 * smimed for the whole file; the tests run in order, each with CAs of its
 * own, so that one distribution point's state does not leak into another.
 *
 * The server (a small python3 script) serves the files of a directory, never
 * answers under /slow/, and nothing listens on DEAD_PORT. */
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

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"

#define PORT 8080
#define DEAD_PORT 8081
/* Under valgrind (SMIMED_TEST_WRAPPER) everything is slower: a longer
 * download timeout, so that what must answer within it still can. */
#define FETCH_TIMEOUT_SEC (wrapped() ? 10 : 2)
#define PROMPT_USEC (wrapped() ? 3000000ULL : 500000ULL)
#define URL(path) "http://127.0.0.1:8080/" path

static Harness *harness;
static char *config_path;
static char *crl_dir;
static pid_t server_pid;

static const char server_script[] =
        "import http.server, os, sys, time\n"
        "class Handler(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
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
        "        self.send_header('Content-Type', 'application/pkix-crl')\n"
        "        self.send_header('Content-Length', str(len(data)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(data)\n"
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

static int start_server(void) {
        _cleanup_free_ char *script = harness_write_file(harness, "crl-server.py", server_script, 0644);
        char port[16];
        uint64_t deadline;

        if (!script)
                return -ENOMEM;
        snprintf(port, sizeof(port), "%d", PORT);
        server_pid = fork();
        if (server_pid < 0)
                return -errno;
        if (server_pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                execl("/usr/bin/python3", "python3", script, port, crl_dir, (char *) NULL);
                _exit(127);
        }
        deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        while (!port_accepts(PORT)) {
                if (now_usec() > deadline || waitpid(server_pid, NULL, WNOHANG) != 0)
                        return -EIO;
                pause_briefly();
        }
        return 0;
}

static void write_crl(const char *name, const X509_CRL *crl) {
        _cleanup_free_ char *path = NULL;
        unsigned char *der = NULL;
        size_t len = 0;

        assert_int_equal(pki_crl_der(crl, &der, &len), 0);
        assert_true(asprintf(&path, "%s/%s", crl_dir, name) > 0);
        assert_int_equal(pki_write_file(path, der, len), 0);
        free(der);
}

static char *config_text(const char *unknown) {
        _cleanup_free_ char *extra = NULL;
        char *text;

        assert_true(asprintf(&extra,
                             "[Revocation]\n"
                             "Method=crl\n"
                             "FetchTimeoutSec=%d\n"
                             "MaxCRLSize=64K\n"
                             "Unknown=%s\n",
                             FETCH_TIMEOUT_SEC, unknown) > 0);
        text = harness_config_text(harness, extra);
        assert_non_null(text);
        return text;
}

static int setup(void **state) {
        _cleanup_free_ char *text = NULL;
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
        if (asprintf(&crl_dir, "%s/crls", harness->dir) < 0 || mkdir(crl_dir, 0755) < 0)
                return -1;
        r = start_server();
        if (r < 0)
                return r;
        r = harness_start_bus(harness);
        if (r < 0)
                return r;

        text = config_text("soft");
        config_path = harness_write_file(harness, "smimed.conf", text, 0644);
        if (!config_path)
                return -1;
        return harness_start_smimed(harness, config_path, NULL);
}

static int teardown(void **state) {
        (void) state;
        harness = harness_free(harness);
        if (server_pid > 0) {
                kill(server_pid, SIGKILL);
                waitpid(server_pid, NULL, 0);
        }
        config_path = mfree(config_path);
        crl_dir = mfree(crl_dir);
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

static PkiCert *make_leaf(const char *address, const PkiCert *ca, const char *crl_uri) {
        const char *sans[] = {address, NULL};
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = address;
        o.san_emails = sans;
        o.crl_uri = crl_uri;
        c = pki_cert_new(&o, ca);
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

static void reload(const char *unknown) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *text = config_text(unknown);

        assert_int_equal(pki_write_file(config_path, text, strlen(text)), 0);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload", &e, NULL,
                               NULL) < 0)
                fail_msg("Reload failed: %s: %s", e.name, e.message);
}

/* FetchCRLs; the count on success. */
static int fetch_crls(uint32_t *ret_fetched, sd_bus_error *e) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = bus_open();
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "FetchCRLs", e,
                               &reply, "a{sv}", 0);
        if (r < 0)
                return r;
        assert_true(sd_bus_message_read(reply, "u", ret_fetched) > 0);
        return r;
}

/* ---- the cases ---- */

static PkiCert *good_ca, *good_leaf, *revoked_leaf;

/* A validation that misses the CRL has it fetched: the revoked leaf comes
 * to say revoked, the other one valid without a word about revocation. */
static void test_fetched_on_validation(void **state) {
        uint64_t serial;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        PkiCrlOptions o;

        (void) state;
        good_ca = make_ca("Good CA");
        good_leaf = make_leaf("good@example.com", good_ca, URL("good.crl"));
        revoked_leaf = make_leaf("revoked@example.com", good_ca, URL("good.crl"));
        serial = pki_cert_serial(revoked_leaf);
        pki_crl_options_init(&o);
        o.crl_number = 1;
        crl = pki_crl_new(good_ca, &serial, 1, &o);
        assert_non_null(crl);
        write_crl("good.crl", crl);

        import(good_ca, true);
        import(good_leaf, false);
        import(revoked_leaf, false);

        wait_status(revoked_leaf, "revoked");
        {
                _cleanup_free_ char *status = get_string(good_leaf, "Status");
                _cleanup_free_ char *text = get_string(good_leaf, "StatusText");

                assert_string_equal(status, "valid");
                if (strstr(text, "not checked"))
                        fail_msg("the CRL is in, yet: %s", text);
        }
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("revoked@example.com");

                assert_false(e.possible);
                assert_string_equal(e.reason, "revoked");
        }
}

/* smimectl fetch-crls: a newer CRL at the same place revokes the other
 * leaf at once, without waiting for the old one's nextUpdate. */
static void test_smimectl_fetch_crls(void **state) {
        uint64_t serials[2] = {pki_cert_serial(revoked_leaf), pki_cert_serial(good_leaf)};
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *out = NULL, *err = NULL, *status = NULL;
        PkiCrlOptions o;
        int r;

        (void) state;
        pki_crl_options_init(&o);
        o.crl_number = 2;
        o.last_update_days = 0;
        crl = pki_crl_new(good_ca, serials, 2, &o);
        assert_non_null(crl);
        write_crl("good.crl", crl);

        r = harness_run(harness, (char *[]){(char *) SMIMECTL_BINARY, (char *) "fetch-crls", NULL}, false, &out, &err);
        if (r != 0)
                fail_msg("smimectl fetch-crls exited %d: %s%s", r, strempty(out), strempty(err));
        assert_non_null(strstr(out, "Fetched 1 CRL(s)"));
        status = get_string(good_leaf, "Status");
        assert_string_equal(status, "revoked");

        /* Not for everyone: polkit's manage-certificates. */
        out = mfree(out);
        err = mfree(err);
        r = harness_run(harness, (char *[]){(char *) SMIMECTL_BINARY, (char *) "fetch-crls", NULL}, true, &out, &err);
        assert_int_not_equal(r, 0);
}

static PkiCert *dead_ca, *dead_leaf;

/* Nothing listens at the distribution point: soft leaves the certificate
 * usable and says so; hard (after a reload) makes it revocation-unknown. */
static void test_server_down(void **state) {
        (void) state;
        dead_ca = make_ca("Dead CA");
        dead_leaf = make_leaf("dead@example.com", dead_ca, "http://127.0.0.1:8081/dead.crl");
        import(dead_ca, true);
        import(dead_leaf, false);

        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("dead@example.com");

                assert_true(e.possible);
                if (!strstr(e.message, "Revocation was not checked"))
                        fail_msg("soft: the message does not say revocation was not checked: %s", e.message);
        }
        {
                _cleanup_free_ char *status = get_string(dead_leaf, "Status");
                _cleanup_free_ char *text = get_string(dead_leaf, "StatusText");

                assert_string_equal(status, "valid");
                assert_non_null(strstr(text, "not checked"));
        }
        /* smimectl show says so next to "valid". */
        {
                _cleanup_free_ char *out = NULL, *err = NULL;
                int r = harness_run(
                        harness,
                        (char *[]){(char *) SMIMECTL_BINARY, (char *) "show", (char *) "dead@example.com", NULL},
                        false, &out, &err);

                if (r != 0 || !strstr(out, "Revocation was not checked"))
                        fail_msg("smimectl show exited %d:\n%s%s", r, strempty(out), strempty(err));
        }

        reload("hard");
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("dead@example.com");
                _cleanup_free_ char *status = get_string(dead_leaf, "Status");

                assert_false(e.possible);
                assert_string_equal(e.reason, "revocation-unknown");
                assert_string_equal(status, "revocation-unknown");
        }
        /* A known revocation stays what it is. */
        {
                _cleanup_free_ char *status = get_string(revoked_leaf, "Status");

                assert_string_equal(status, "revoked");
        }
        reload("soft");
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("dead@example.com");

                assert_true(e.possible);
        }
}

/* A server that accepts and never answers: calls about other certificates
 * (and this one) answer at once meanwhile, and smimed gives up after
 * FetchTimeoutSec=. */
static void test_slow_server(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *ca = make_ca("Slow CA");
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf("slow@example.com", ca, URL("slow/slow.crl"));
        size_t log_from;
        uint64_t start, elapsed;

        (void) state;
        import(ca, true);
        import(leaf, false);

        log_from = harness_smimed_log_size(harness);
        start = now_usec();
        {
                _cleanup_(encrypt_done) Encrypt e = get_encrypt("slow@example.com");

                assert_true(e.possible); /* soft */
                assert_non_null(strstr(e.message, "not checked"));
        }
        assert_int_equal(harness_wait_smimed_log(harness, log_from, "Fetching the CRL at " URL("slow/slow.crl")), 0);
        for (int i = 0; i < 5; i++) {
                uint64_t t = now_usec();
                _cleanup_(encrypt_done) Encrypt e = get_encrypt(i % 2 ? "dead@example.com" : "slow@example.com");

                elapsed = now_usec() - t;
                if (elapsed > PROMPT_USEC)
                        fail_msg("GetCapabilities took %" PRIu64 " ms while a CRL download hung", elapsed / 1000);
        }
        if (now_usec() - start >= (uint64_t) FETCH_TIMEOUT_SEC * 1000000ULL)
                print_message("(the calls above outlasted the fetch timeout: the machine is slow)\n");

        assert_int_equal(harness_wait_smimed_log(harness, log_from, "did not arrive within FetchTimeoutSec="), 0);
        elapsed = now_usec() - start;
        if (elapsed < (uint64_t) (FETCH_TIMEOUT_SEC - 1) * 1000000ULL ||
            elapsed > (uint64_t) (FETCH_TIMEOUT_SEC + 20) * 1000000ULL)
                fail_msg("the download gave up after %" PRIu64 " ms, expected about %d s", elapsed / 1000,
                         FETCH_TIMEOUT_SEC);
}

/* A CRL of the right name signed by another key is refused: it revokes
 * nothing, and the log says why. */
static void test_forged_crl(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *ca = make_ca("Forged CA");
        _cleanup_(pki_cert_freep) PkiCert *impostor = make_ca("Forged CA");
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf("forged@example.com", ca, URL("forged.crl"));
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        uint64_t serial = pki_cert_serial(leaf);
        _cleanup_free_ char *status = NULL;
        PkiCrlOptions o;
        size_t log_from;

        (void) state;
        pki_crl_options_init(&o);
        crl = pki_crl_new(impostor, &serial, 1, &o);
        assert_non_null(crl);
        write_crl("forged.crl", crl);
        import(ca, true);

        log_from = harness_smimed_log_size(harness);
        import(leaf, false);
        { _cleanup_(encrypt_done) Encrypt e = get_encrypt("forged@example.com"); }
        assert_int_equal(harness_wait_smimed_log(harness, log_from, "forged.crl does not verify with the key"), 0);
        status = get_string(leaf, "Status");
        assert_string_equal(status, "valid");
}

/* A response larger than MaxCRLSize= is refused. */
static void test_oversized_crl(void **state) {
        _cleanup_(pki_cert_freep) PkiCert *ca = make_ca("Big CA");
        _cleanup_(pki_cert_freep) PkiCert *leaf = make_leaf("big@example.com", ca, URL("big.crl"));
        _cleanup_free_ char *path = NULL, *status = NULL;
        size_t size = 200 * 1024, log_from;
        unsigned char *data = calloc(1, size);

        (void) state;
        assert_non_null(data);
        /* A DER SEQUENCE that says it is as long as the file. */
        data[0] = 0x30;
        data[1] = 0x83;
        data[2] = (unsigned char) ((size - 5) >> 16);
        data[3] = (unsigned char) ((size - 5) >> 8);
        data[4] = (unsigned char) (size - 5);
        assert_true(asprintf(&path, "%s/big.crl", crl_dir) > 0);
        assert_int_equal(pki_write_file(path, data, size), 0);
        free(data);
        import(ca, true);

        log_from = harness_smimed_log_size(harness);
        import(leaf, false);
        { _cleanup_(encrypt_done) Encrypt e = get_encrypt("big@example.com"); }
        assert_int_equal(harness_wait_smimed_log(harness, log_from, "big.crl is larger than MaxCRLSize="), 0);
        status = get_string(leaf, "Status");
        assert_string_equal(status, "valid");
}

/* FetchCRLs over the bus with every kind of failure in the store: it waits
 * for all of them, fails with the first and names each. */
static void test_fetch_crls_failures(void **state) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint32_t fetched = 0;
        uint64_t start = now_usec();

        (void) state;
        if (fetch_crls(&fetched, &e) >= 0)
                fail_msg("FetchCRLs succeeded (%u) with dead, slow, forged and oversized distribution points",
                         fetched);
        if (!strstr(e.message, "dead.crl") || !strstr(e.message, "slow.crl") || !strstr(e.message, "forged.crl") ||
            !strstr(e.message, "big.crl"))
                fail_msg("FetchCRLs: %s: %s", e.name, e.message);
        print_message("FetchCRLs: %s\n", e.message);
        /* It waited for the slow one. */
        assert_true(now_usec() - start >= (uint64_t) (FETCH_TIMEOUT_SEC - 1) * 1000000ULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fetched_on_validation),
                cmocka_unit_test(test_smimectl_fetch_crls),
                cmocka_unit_test(test_server_down),
                cmocka_unit_test(test_slow_server),
                cmocka_unit_test(test_forged_crl),
                cmocka_unit_test(test_oversized_crl),
                cmocka_unit_test(test_fetch_crls_failures),
        };
        int r;

        r = cmocka_run_group_tests(tests, setup, teardown);
        good_ca = pki_cert_free(good_ca);
        good_leaf = pki_cert_free(good_leaf);
        revoked_leaf = pki_cert_free(revoked_leaf);
        dead_ca = pki_cert_free(dead_ca);
        dead_leaf = pki_cert_free(dead_leaf);
        return r;
}
