/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Attacks of the unprivileged test user (issue 14), each on a smimed and a
 * store of its own:
 *
 *   - fd exhaustion: Verify calls whose inputs never end, on one connection
 *     and on two, and past the total ([Policy] MaxCallsPerClient=,
 *     MaxCallsPerUser=, MaxCalls=); too many recipients (MaxRecipients=);
 *   - messages held in progress past the spool quotas ([Policy]
 *     SpoolQuotaPerClient=, SpoolQuota=);
 *   - a flood of costly calls (GetCapabilities with 1,000 recipients,
 *     GetManagedObjects over 2,000 certificates) that must not make another
 *     client wait behind all of it;
 *   - signing as an address polkit allows with a certificate that names one
 *     it does not, and a From: or Sender: that is not the certificate's;
 *   - decrypting with a key whose token label is an allowed address but
 *     whose certificate names another;
 *   - the audit trail of a certificate the test user's Verify auto-imports;
 *   - a large tampered message that must not hold up the event loop.
 *
 * The test user's side runs in child processes (harness_run_as_test_user(),
 * or child_start() below when root must act while the attacker holds its
 * calls). Nothing in a child uses cmocka: it reports as text and the parent
 * asserts. Every wait is on an event (a reply, a Ping round trip, a signal,
 * a child's report); the one timing assertion is a ratio. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"

#define SUPPORT "support@example.com"
#define BOSS "boss@example.com"
#define CEO "ceo@example.com"
#define FRANK "frank@example.net"
/* Slow setups (valgrind, ASan) get the same room as the harness gives them. */
#define CALL_TIMEOUT_USEC (10 * HARNESS_TIMEOUT_USEC)
#define CHILD_TIMEOUT_MS ((int) (CALL_TIMEOUT_USEC / 1000))
/* Per call in flight, at most this many fds of smimed's (the call's two,
 * smimed's duplicates, spool files, a reader): a generous bound, far below
 * what a flood of calls would take without a limit. */
#define FDS_PER_CALL_MAX 12U
#define DEFAULT_MAX_CALLS_PER_CLIENT 16U
/* The fair-turns tests. */
#define FLOOD_CALLS 64U
#define FLOOD_RECIPIENTS 1000U
/* The object-walk test's store (SMIMED_TEST_MANY_CERTS overrides it: the
 * valgrind and asan setups take 500, where each walk costs seconds). */
#define MANY_CERTIFICATES_DEFAULT 2000U
#define OBJECT_WALKS 5U
/* The large message, in MiB (SMIMED_TEST_BIG_MIB overrides it). */
#define BIG_MIB_DEFAULT 40U
#define BIG_MIB_MAX 1024U

static Harness *harness;
static sd_bus *bus;      /* root's */
static PkiCert *root;    /* EC, trusted in every store */
static PkiCert *support; /* the token key (01), for support@ only */
static PkiCert *frank;   /* a key of its own, issued by root, never imported by a test */
static char *root_pem, *support_pem;
static pid_t running_child = -1; /* killed by the teardown when a test failed while it ran */

/* ---- both sides: no cmocka in here, the test user's children use it ---- */

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int memfd_with(const void *data, size_t size) {
        int fd = memfd_create("attack-input", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        const char *p = data;

        if (fd < 0)
                return -errno;
        while (size > 0) {
                ssize_t n = write(fd, p, size);

                if (n < 0) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
                p += n;
                size -= (size_t) n;
        }
        if (lseek(fd, 0, SEEK_SET) < 0) {
                close(fd);
                return -errno;
        }
        return fd;
}

static int memfd_text(const char *text) {
        return memfd_with(text, strlen(text));
}

/* The answer to an asynchronous call. */
typedef struct Reply {
        bool done;
        bool ok;
        uint64_t when;
        uint64_t serial; /* the sender's: smimed's sd-bus numbers what it sends in order */
        char error_name[128];
        char error_message[512];
} Reply;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        Reply *reply = userdata;

        (void) ret_error;
        reply->done = true;
        reply->when = now_usec();
        reply->ok = !e;
        (void) sd_bus_message_get_cookie(m, &reply->serial);
        if (e) {
                snprintf(reply->error_name, sizeof(reply->error_name), "%s", strempty(e->name));
                snprintf(reply->error_message, sizeof(reply->error_message), "%s", strempty(e->message));
        }
        return 0;
}

/* Dispatches what b has now, without waiting. */
static int bus_drain(sd_bus *b) {
        int r;

        while ((r = sd_bus_process(b, NULL)) > 0)
                ;
        return r;
}

/* Processes b until *flag is set. */
static int bus_wait_for(sd_bus *b, const bool *flag) {
        uint64_t deadline = now_usec() + CALL_TIMEOUT_USEC;
        int r;

        while (!*flag) {
                r = sd_bus_process(b, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (now_usec() >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_wait(b, deadline - now_usec());
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

/* smimed handles the messages of one connection in order: when its answer
 * to a Ping comes, every call sent before has been dispatched, and the
 * answers given at once are here. */
static int ping_smimed(sd_bus *b) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Peer",
                                           "Ping");
        if (r < 0)
                return r;
        return sd_bus_call(b, m, CALL_TIMEOUT_USEC, NULL, &reply);
}

/* What a call answered: its error, or the parts of a status we look at. */
typedef struct Status {
        int r;
        char error_name[128];
        char error_message[512];
        char encryption[32];
        char signature[32];
        char key[80];
        int content; /* -1: not in the status */
} Status;

static void status_error(Status *s, int r, const sd_bus_error *e) {
        s->r = r;
        snprintf(s->error_name, sizeof(s->error_name), "%s", e && e->name ? e->name : "(none)");
        snprintf(s->error_message, sizeof(s->error_message), "%s", e && e->message ? e->message : strerror(-r));
}

static int read_string(sd_bus_message *m, char *buf, size_t size) {
        const char *v;
        int r;

        r = sd_bus_message_read(m, "v", "s", &v);
        if (r < 0)
                return r;
        snprintf(buf, size, "%s", v);
        return 0;
}

static int read_status(sd_bus_message *reply, Status *s) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *k;

                r = sd_bus_message_read(reply, "s", &k);
                if (r < 0)
                        return r;
                if (streq(k, "encryption"))
                        r = read_string(reply, s->encryption, sizeof(s->encryption));
                else if (streq(k, "signature"))
                        r = read_string(reply, s->signature, sizeof(s->signature));
                else if (streq(k, "key"))
                        r = read_string(reply, s->key, sizeof(s->key));
                else if (streq(k, "content"))
                        r = sd_bus_message_read(reply, "v", "b", &s->content);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

/* The answer to an asynchronous Decrypt or Verify. */
typedef struct OpenReply {
        Reply reply;
        Status status;
} OpenReply;

static int on_open_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OpenReply *o = userdata;

        (void) on_reply(m, &o->reply, ret_error);
        if (o->reply.ok && read_status(m, &o->status) < 0)
                snprintf(o->status.signature, sizeof(o->status.signature), "(unreadable)");
        return 0;
}

/* Decrypt or Verify of input (from its start) to output. */
/* key: NULL, or Decrypt's "key" option. */
static Status open_call_key(sd_bus *b, const char *method, int input, int output, const char *key) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        Status s = {.content = -1};
        int r;

        (void) lseek(input, 0, SEEK_SET);
        r = sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           method);
        if (r >= 0)
                r = key ? sd_bus_message_append(m, "hha{sv}", input, output, 1, "key", "s", key)
                        : sd_bus_message_append(m, "hha{sv}", input, output, 0);
        if (r >= 0)
                r = sd_bus_call(b, m, CALL_TIMEOUT_USEC, &e, &reply);
        if (r >= 0)
                r = read_status(reply, &s);
        if (r < 0)
                status_error(&s, r, &e);
        else
                s.r = 0;
        return s;
}

static Status open_call(sd_bus *b, const char *method, int input, int output) {
        return open_call_key(b, method, input, output, NULL);
}

static Status open_text(sd_bus *b, const char *method, const char *text) {
        _cleanup_(closep) int input = memfd_text(text), output = memfd_create("attack-output", MFD_CLOEXEC);
        Status s = {.r = -EIO, .content = -1};

        if (input >= 0 && output >= 0)
                s = open_call(b, method, input, output);
        return s;
}

/* Sign of the message text as sender; the result goes to output. */
static Status sign_call(sd_bus *b, const char *sender, const char *text, int output) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(closep) int input = memfd_text(text);
        Status s = {.content = -1};
        int r;

        r = input < 0 ? input
                      : sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                       SMIMED_MANAGER_INTERFACE, "Sign");
        if (r >= 0)
                r = sd_bus_message_append(m, "shha{sv}", sender, input, output, 0);
        if (r >= 0)
                r = sd_bus_call(b, m, CALL_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                status_error(&s, r, &e);
        else
                s.r = 0;
        return s;
}

/* GetCapabilities(sender, recipients) or Encrypt(recipients) of a short message. */
static Status recipients_call(sd_bus *b, const char *method, char **recipients) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(closep) int input = memfd_text("From: " SUPPORT "\r\nSubject: many\r\n\r\nHello.\r\n"),
                              output = memfd_create("attack-output", MFD_CLOEXEC);
        bool encrypt = streq(method, "Encrypt");
        Status s = {.content = -1};
        int r;

        r = input < 0 || output < 0 ? -EIO
                                    : sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                                     SMIMED_MANAGER_INTERFACE, method);
        if (r >= 0 && !encrypt)
                r = sd_bus_message_append(m, "s", "");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, recipients);
        if (r >= 0 && encrypt)
                r = sd_bus_message_append(m, "hh", input, output);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call(b, m, CALL_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                status_error(&s, r, &e);
        else
                s.r = 0;
        return s;
}

/* "ok", or "error name|message" */
static const char *status_outcome(const Status *s, char *buf, size_t size) {
        if (s->r >= 0)
                snprintf(buf, size, "ok");
        else
                snprintf(buf, size, "%s|%s", s->error_name, s->error_message);
        return buf;
}

/* Appends a formatted line to out (a child's report). */
static void report(char *out, size_t size, const char *format, ...) _printf_(3, 4);
static void report(char *out, size_t size, const char *format, ...) {
        size_t len = strnlen(out, size);
        va_list ap;

        if (len + 1 >= size)
                return;
        va_start(ap, format);
        vsnprintf(out + len, size - len, format, ap);
        va_end(ap);
}

/* ---- the parent's helpers ---- */

/* The value of "key=value" in a child's report, or NULL. */
static char *report_value(const char *text, const char *key) {
        size_t n = strlen(key);

        for (const char *line = text; line && *line;) {
                const char *end = strchrnul(line, '\n');

                if ((size_t) (end - line) > n && strncmp(line, key, n) == 0 && line[n] == '=')
                        return strndup(line + n + 1, (size_t) (end - line) - n - 1);
                line = *end ? end + 1 : NULL;
        }
        return NULL;
}

static char *report_get(const char *text, const char *key) {
        char *v = report_value(text, key);

        if (!v)
                fail_msg("the child's report has no %s: \"%s\"", key, strempty(text));
        return v;
}

/* The child's report says key=expected. */
static void report_expect(const char *text, const char *key, const char *expected) {
        _cleanup_free_ char *v = report_get(text, key);

        if (!streq(v, expected))
                fail_msg("%s: \"%s\", expected \"%s\" (report: %s)", key, v, expected, text);
}

/* key=name|message in the report: the error name, and a message holding each of the NULL-terminated parts. */
static void report_expect_error(const char *text, const char *key, const char *error_name, ...) {
        _cleanup_free_ char *v = report_get(text, key);
        char *bar = strchr(v, '|');
        va_list ap;

        if (!bar)
                fail_msg("%s succeeded (\"%s\"), expected %s", key, v, error_name);
        *bar = '\0';
        if (!streq(v, error_name))
                fail_msg("%s failed with %s (%s), expected %s", key, v, bar + 1, error_name);
        va_start(ap, error_name);
        for (const char *part; (part = va_arg(ap, const char *));)
                if (!strstr(bar + 1, part)) {
                        va_end(ap);
                        fail_msg("%s: the message \"%s\" does not name \"%s\"", key, bar + 1, part);
                }
        va_end(ap);
}

static unsigned idle_fds(void) {
        unsigned n;

        assert_true(ping_smimed(bus) >= 0);
        assert_int_equal(harness_smimed_fds(harness, &n, NULL), 0);
        return n;
}

static void assert_fds(unsigned before) {
        unsigned now = idle_fds();

        if (now != before) {
                char *list = NULL; /* freed here: fail_msg() longjmps past _cleanup_ */

                (void) harness_smimed_fds(harness, &now, &list);
                fprintf(stderr, "smimed's fds:\n%s", strempty(list));
                free(list);
                fail_msg("smimed holds %u fds, %u before", now, before);
        }
}

/* The same once the work of clients that left has ended: a job of theirs
 * that a worker thread had begun finishes when the thread is done with it
 * (its fds go then). Each look is a Ping round trip; 200 of them are far
 * more than two jobs of a short message take. */
static void assert_fds_settle(unsigned before) {
        for (unsigned i = 0; i < 200; i++)
                if (idle_fds() == before)
                        return;
        assert_fds(before);
}

static char *smimed_log_from(size_t offset) {
        _cleanup_free_ char *log = harness_read_file(harness->smimed_log);

        assert_non_null(log);
        assert_true(strlen(log) >= offset);
        return strdup(log + offset);
}

/* How many lines of text hold every one of the NULL-terminated parts. */
static unsigned lines_with(const char *text, ...) {
        unsigned n = 0;

        for (const char *line = text; line && *line;) {
                const char *end = strchrnul(line, '\n');
                _cleanup_free_ char *copy = strndup(line, (size_t) (end - line));
                bool all = true;
                va_list ap;

                assert_non_null(copy);
                va_start(ap, text);
                for (const char *part; all && (part = va_arg(ap, const char *));)
                        all = strstr(copy, part) != NULL;
                va_end(ap);
                if (all)
                        n++;
                line = *end ? end + 1 : NULL;
        }
        return n;
}

static char *path_in(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", harness->dir, name) > 0);
        return p;
}

static char *write_cert_file(const char *name, const PkiCert *c) {
        _cleanup_free_ char *pem = pki_cert_pem(c);
        char *p = path_in(name);

        assert_non_null(pem);
        assert_int_equal(pki_write_file(p, pem, strlen(pem)), 0);
        return p;
}

static char *write_key_file(const char *name, EVP_PKEY *key) {
        char *p = path_in(name);
        FILE *f = fopen(p, "we");

        assert_non_null(f);
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
        assert_int_equal(fclose(f), 0);
        return p;
}

static void openssl(const char *first, ...) {
        char *argv[32] = {(char *) "openssl", (char *) first};
        _cleanup_free_ char *err = NULL;
        size_t n = 2;
        va_list ap;
        int r;

        va_start(ap, first);
        for (const char *s; (s = va_arg(ap, const char *));) {
                assert_true(n < ELEMENTSOF(argv) - 1);
                argv[n++] = (char *) s;
        }
        va_end(ap);
        r = harness_run(harness, argv, false, NULL, &err);
        if (r != 0)
                fail_msg("openssl %s failed (%d): %s", first, r, strempty(err));
}

static char *fingerprint_of(const PkiCert *c) {
        char fp[65];

        assert_int_equal(pki_cert_fingerprint(c, fp), 0);
        return strdup(fp);
}

/* A leaf issued by root for key (no private part needed) naming the addresses. */
static PkiCert *leaf_for(EVP_PKEY *key, const char *common_name, const char *const *addresses) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.common_name = common_name;
        o.san_emails = addresses;
        o.key = key;
        c = pki_cert_new(&o, root);
        assert_non_null(c);
        return c;
}

/* ---- smimed ---- */

static void start_smimed(const char *name, const char *policy) {
        _cleanup_free_ char *more = NULL, *text = NULL, *file = NULL, *config = NULL;

        /* No token health check while fds are counted (SoftHSM2 opens its files for it). */
        assert_true(asprintf(&more, "[Token]\nRescanIntervalSec=86400\n[Store]\nPath=%s/%s.db\n[Policy]\n%s",
                             harness->state_dir, name, strempty(policy)) > 0);
        text = harness_config_text(harness, more);
        assert_non_null(text);
        assert_true(asprintf(&file, "%s.conf", name) > 0);
        config = harness_write_file(harness, file, text, 0644);
        assert_non_null(config);
        assert_int_equal(harness_start_smimed(harness, config, NULL), 0);
}

static int stop_smimed(void **state) {
        (void) state;
        if (running_child > 0) {
                (void) kill(running_child, SIGKILL);
                (void) waitpid(running_child, NULL, 0);
                running_child = -1;
        }
        if (harness->smimed_pid > 0)
                assert_int_equal(harness_stop_smimed(harness), 0);
        return 0;
}

static sd_bus_message *import_call(const void *data, size_t size, bool trust) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', data, size) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust) >= 0);
        if (sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply) < 0)
                fail_msg("ImportCertificates failed: %s: %s", e.name, e.message);
        return reply;
}

static void import_pem(const char *pem, bool trust) {
        sd_bus_message_unref(import_call(pem, strlen(pem), trust));
}

static void import_cert(const PkiCert *c) {
        _cleanup_free_ char *pem = pki_cert_pem(c);

        assert_non_null(pem);
        import_pem(pem, false);
}

/* The root, trusted, and the token key's certificate for support@. */
static void import_anchors(void) {
        import_pem(root_pem, true);
        import_pem(support_pem, false);
}

static uint64_t certificate_count(void) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &s), 0);
        return strtoull(s, NULL, 10);
}

static void remove_certificate(const PkiCert *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *fp = fingerprint_of(c), *path = NULL;

        assert_true(asprintf(&path, SMIMED_CERTIFICATE_PATH_PREFIX "/%s", fp) > 0);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, path, SMIMED_CERTIFICATE_INTERFACE, "Remove", &e, NULL, "") < 0)
                fail_msg("Remove of %s failed: %s: %s", fp, e.name, e.message);
}

/* A plain message through Verify on b: answered, not signed, with content. */
static void verify_plain_ok(sd_bus *b) {
        Status s = open_text(b, "Verify", "From: " SUPPORT "\r\nSubject: plain\r\n\r\nHello.\r\n");

        if (s.r < 0)
                fail_msg("Verify failed: %s: %s", s.error_name, s.error_message);
        assert_string_equal(s.signature, "not-signed");
        assert_int_equal(s.content, 1);
}

/* ---- a test user's process beside the test ---- */

/* A child as the test user that the test talks to over a socket: it
 * reports, then waits to be told to go on. */
typedef struct Child {
        pid_t pid;
        int control;
} Child;

static int drop_to_test_user(void) {
        if (setgroups(0, NULL) < 0 || setresgid(harness->test_gid, harness->test_gid, harness->test_gid) < 0 ||
            setresuid(harness->test_uid, harness->test_uid, harness->test_uid) < 0)
                return -errno;
        return 0;
}

static void child_start(Child *c, int (*fn)(int control, void *userdata), void *userdata) {
        pid_t parent = getpid();
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        c->pid = fork();
        assert_true(c->pid >= 0);
        if (c->pid == 0) {
                close(sv[0]);
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || drop_to_test_user() < 0)
                        _exit(127);
                _exit(fn(sv[1], userdata) & 0xff);
        }
        close(sv[1]);
        c->control = sv[0];
        running_child = c->pid;
}

/* The next message of fd (a report or a command), or "" when the other side is gone. */
static int control_read(int fd, char *buf, size_t size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        int r;

        do
                r = poll(&p, 1, CHILD_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r <= 0)
                return r < 0 ? -errno : -ETIMEDOUT;
        n = recv(fd, buf, size - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

static char *child_read(Child *c) {
        char buf[8192];

        assert_int_equal(control_read(c->control, buf, sizeof(buf)), 0);
        if (!buf[0])
                fail_msg("the test user's process left without a report");
        return strdup(buf);
}

static int child_wait(Child *c) {
        int status;

        close(c->control);
        assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
        running_child = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct Departures {
        char *names[4];
        unsigned n, gone;
} Departures;

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Departures *d = userdata;
        const char *name, *old_owner, *new_owner;

        (void) error;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || new_owner[0])
                return 0;
        for (unsigned i = 0; i < d->n; i++)
                if (streq(d->names[i], name))
                        d->gone++;
        return 0;
}

/* Tells the child to leave, and waits until smimed has seen each of its
 * connections go: the bus tells smimed before it tells us, so a Ping sent
 * after our NameOwnerChanged reaches smimed after its own. */
static void child_quit(Child *c, const char *report_text) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        Departures d = {};
        bool all_gone = false;
        char key[16];

        for (unsigned i = 0; i < ELEMENTSOF(d.names); i++) {
                snprintf(key, sizeof(key), "name%u", i);
                d.names[d.n] = report_value(report_text, key);
                if (d.names[d.n])
                        d.n++;
        }
        assert_true(d.n > 0);
        assert_true(sd_bus_match_signal(bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, &d) >= 0);
        assert_true(send(c->control, "quit", 4, MSG_NOSIGNAL) == 4);
        assert_int_equal(child_wait(c), 0);
        while (!all_gone) {
                int r = sd_bus_process(bus, NULL);

                assert_true(r >= 0);
                all_gone = d.gone >= d.n;
                if (r == 0 && !all_gone)
                        assert_true(sd_bus_wait(bus, CALL_TIMEOUT_USEC) >= 0);
        }
        for (unsigned i = 0; i < d.n; i++)
                free(d.names[i]);
        assert_true(ping_smimed(bus) >= 0);
}

/* ---- 1. limits on calls in flight ---- */

#define MAX_FLOOD 64U

/* Verify calls whose inputs are sockets nobody ever writes to or closes: each
 * stays in flight as long as the connection does (IOTimeoutSec= is long). */
typedef struct Flood {
        sd_bus_slot *slots[MAX_FLOOD];
        Reply replies[MAX_FLOOD];
        int keep[MAX_FLOOD]; /* our ends of the input sockets */
        unsigned n;
} Flood;

static int flood(sd_bus *b, Flood *f, unsigned n, int output) {
        int r;

        if (n > MAX_FLOOD)
                return -E2BIG;
        for (unsigned i = 0; i < n; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                int sv[2];

                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        return -errno;
                f->keep[f->n] = sv[1];
                r = sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "Verify");
                if (r >= 0)
                        r = sd_bus_message_append(m, "hha{sv}", sv[0], output, 0);
                close(sv[0]); /* the message holds its own copy */
                if (r >= 0)
                        r = sd_bus_call_async(b, &f->slots[f->n], m, on_reply, &f->replies[f->n], CALL_TIMEOUT_USEC);
                if (r < 0)
                        return r;
                f->n++;
        }
        /* Every call dispatched: the refusals are here. */
        r = ping_smimed(b);
        if (r < 0)
                return r;
        return bus_drain(b);
}

/* One letter per call: p still pending, L refused with LimitsExceeded naming
 * key, l LimitsExceeded naming something else, x another error, s answered. */
static void flood_pattern(const Flood *f, const char *key, char *out, size_t size) {
        size_t i;

        for (i = 0; i < f->n && i + 1 < size; i++) {
                const Reply *r = &f->replies[i];

                out[i] = !r->done                                              ? 'p'
                         : r->ok                                               ? 's'
                         : !streq(r->error_name, SMIMED_ERROR_LIMITS_EXCEEDED) ? 'x'
                         : strstr(r->error_message, key)                       ? 'L'
                                                                               : 'l';
        }
        out[i] = '\0';
}

typedef struct FloodPlan {
        unsigned calls[2]; /* on the first connection, then on a second one (0: none) */
        const char *key;   /* what a refusal must name, e.g. "MaxCallsPerClient=16" */
} FloodPlan;

/* The test user floods smimed on one or two connections, reports what was
 * refused (pattern0, pattern1; name0, name1: the connections; refusal: the
 * first refusal), and keeps everything in flight until told to quit. */
static int flood_child(int control, void *userdata) {
        const FloodPlan *plan = userdata;
        _cleanup_free_ Flood *floods = calloc(2, sizeof(Flood));
        sd_bus *buses[2] = {};
        char out[8192] = "", buf[64];
        int output = memfd_create("attack-output", MFD_CLOEXEC), r = 0;

        if (!floods || output < 0)
                return 2;
        for (unsigned c = 0; c < 2 && plan->calls[c] > 0; c++) {
                char pattern[MAX_FLOOD + 1];
                const char *name = NULL;

                r = harness_bus_open(&buses[c]);
                if (r < 0) {
                        report(out, sizeof(out), "error=cannot connect: %s\n", strerror(-r));
                        break;
                }
                (void) sd_bus_get_unique_name(buses[c], &name);
                report(out, sizeof(out), "name%u=%s\n", c, strempty(name));
                r = flood(buses[c], &floods[c], plan->calls[c], output);
                if (r < 0) {
                        report(out, sizeof(out), "error=flood on connection %u: %s\n", c, strerror(-r));
                        break;
                }
                flood_pattern(&floods[c], plan->key, pattern, sizeof(pattern));
                report(out, sizeof(out), "pattern%u=%s\n", c, pattern);
                for (unsigned i = 0; i < floods[c].n; i++)
                        if (floods[c].replies[i].done && !strstr(out, "refusal=")) {
                                report(out, sizeof(out), "refusal=%s|%s\n", floods[c].replies[i].error_name,
                                       floods[c].replies[i].error_message);
                                break;
                        }
        }
        if (send(control, out, strlen(out), MSG_NOSIGNAL) < 0)
                return 3;
        /* Everything stays in flight until the test has looked. */
        if (control_read(control, buf, sizeof(buf)) < 0)
                return 4;
        for (unsigned c = 0; c < 2; c++)
                sd_bus_flush_close_unref(buses[c]);
        return r < 0 ? 1 : 0;
}

static char *repeat(char c, unsigned n, char c2, unsigned n2) {
        char *s = calloc(n + n2 + 1, 1);

        assert_non_null(s);
        memset(s, c, n);
        memset(s + n, c2, n2);
        return s;
}

/* (a) 40 never-ending Verify calls on one connection: 16 stay, 24 are
 * refused at once; root's Verify is answered meanwhile; smimed holds a
 * bounded number of fds, and all of them go with the attacker. */
static void test_fd_exhaustion(void **state) {
        const FloodPlan plan = {.calls = {40}, .key = "[Policy] MaxCallsPerClient=16"};
        _cleanup_free_ char *text = NULL, *expected = repeat('p', 16, 'L', 24);
        unsigned idle, during;
        Child c;

        (void) state;
        start_smimed("fd-exhaustion", "IOTimeoutSec=600\n");
        import_anchors();
        verify_plain_ok(bus); /* the timers and spool of a Verify exist once used */
        idle = idle_fds();

        child_start(&c, flood_child, (void *) &plan);
        text = child_read(&c);
        report_expect(text, "pattern0", expected);
        report_expect_error(text, "refusal", SMIMED_ERROR_LIMITS_EXCEEDED, "This client has 16 calls in progress",
                            "[Policy] MaxCallsPerClient=16", NULL);

        /* Another client goes on: root, on a connection of its own. */
        {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *other = NULL;

                assert_int_equal(harness_bus_open(&other), 0);
                verify_plain_ok(other);
        }

        assert_int_equal(harness_smimed_fds(harness, &during, NULL), 0);
        fprintf(stderr, "# smimed's fds: %u idle, %u with 16 calls that never end\n", idle, during);
        /* The 16 calls are held (each at least its input socket), and no more than 16 of them. */
        assert_true(during >= idle + DEFAULT_MAX_CALLS_PER_CLIENT);
        assert_true(during < idle + DEFAULT_MAX_CALLS_PER_CLIENT * FDS_PER_CALL_MAX);

        child_quit(&c, text);
        assert_fds(idle);
        verify_plain_ok(bus);
}

/* (b) Two connections of the test user: the second reaches the user's total. */
static void test_calls_per_user(void **state) {
        const FloodPlan plan = {.calls = {16, 8}, .key = "[Policy] MaxCallsPerUser=20"};
        _cleanup_free_ char *text = NULL, *first = repeat('p', 16, 'L', 0), *second = repeat('p', 4, 'L', 4);
        unsigned idle;
        Child c;

        (void) state;
        start_smimed("calls-per-user", "IOTimeoutSec=600\nMaxCallsPerClient=16\nMaxCallsPerUser=20\n");
        import_anchors();
        verify_plain_ok(bus);
        idle = idle_fds();

        child_start(&c, flood_child, (void *) &plan);
        text = child_read(&c);
        report_expect(text, "pattern0", first);
        report_expect(text, "pattern1", second);
        report_expect_error(text, "refusal", SMIMED_ERROR_LIMITS_EXCEEDED, "The clients of this user have 20 calls",
                            "MaxCallsPerUser=20", NULL);
        /* Root is another user. */
        verify_plain_ok(bus);

        child_quit(&c, text);
        assert_fds(idle);
}

/* (c) The total: the test user's 10 calls leave nothing for anyone, root
 * included, until it goes. */
static void test_calls_total(void **state) {
        const FloodPlan plan = {.calls = {12}, .key = "[Policy] MaxCalls=10"};
        _cleanup_free_ char *text = NULL, *expected = repeat('p', 10, 'L', 2);
        unsigned idle;
        Status s;
        Child c;

        (void) state;
        start_smimed("calls-total", "IOTimeoutSec=600\nMaxCalls=10\n");
        import_anchors();
        verify_plain_ok(bus);
        idle = idle_fds();

        child_start(&c, flood_child, (void *) &plan);
        text = child_read(&c);
        report_expect(text, "pattern0", expected);
        report_expect_error(text, "refusal", SMIMED_ERROR_LIMITS_EXCEEDED, "smimed has 10 calls in progress",
                            "[Policy] MaxCalls=10", NULL);

        s = open_text(bus, "Verify", "Subject: plain\r\n\r\nHello.\r\n");
        assert_true(s.r < 0);
        assert_string_equal(s.error_name, SMIMED_ERROR_LIMITS_EXCEEDED);
        assert_non_null(strstr(s.error_message, "[Policy] MaxCalls=10"));

        child_quit(&c, text);
        assert_fds(idle);
        verify_plain_ok(bus);
}

/* (c2) Calls left behind: a client that sends a call and goes at once
 * leaves smimed a call it has read and queued for the client's turn, and
 * then the bus's word that the client is gone. Forgetting the client freed
 * the queued call, whose end freed the client a second time, under the
 * loop that was still walking its queue: smimed died of SIGBUS in CI
 * (MALLOC_PERTURB_) and corrupted its heap without it. The test user does
 * it many times over, with a GetCapabilities, a Sign (polkit is asked) and
 * a Verify (a job, its input spooled) in turn; smimed must answer root
 * afterwards, with the fds it had. */
#define LEAVERS 300

static int leaver_call(sd_bus *b, unsigned kind) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(closep) int input = memfd_text("From: " SUPPORT "\r\nSubject: gone\r\n\r\nHello.\r\n"),
                              output = memfd_create("attack-output", MFD_CLOEXEC);
        const char *method = kind == 0 ? "GetCapabilities" : kind == 1 ? "Sign" : "Verify";
        char *one[] = {SUPPORT, NULL};
        int r;

        if (input < 0 || output < 0)
                return -EIO;
        r = sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           method);
        if (r >= 0 && kind == 0) {
                r = sd_bus_message_append(m, "s", "");
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, one);
                if (r >= 0)
                        r = sd_bus_message_append(m, "a{sv}", 0);
        } else if (r >= 0 && kind == 1)
                r = sd_bus_message_append(m, "shha{sv}", SUPPORT, input, output, 0);
        else if (r >= 0)
                r = sd_bus_message_append(m, "hha{sv}", input, output, 0);
        if (r >= 0)
                r = sd_bus_send(b, m, NULL);
        return r;
}

static int leaver_child(char *out, size_t size, void *userdata) {
        sd_bus *pacer = NULL;
        unsigned sent = 0;

        (void) userdata;
        if (harness_bus_open(&pacer) < 0)
                return 2;
        for (unsigned i = 0; i < LEAVERS; i++) {
                sd_bus *b = NULL;
                int r;

                /* A Ping round trip every 10: smimed has read what came
                 * before, so that a slow smimed (valgrind) does not let the
                 * bus queue fill up and refuse everyone's calls. */
                if (i % 10 == 9 && ping_smimed(pacer) < 0)
                        return 3;
                if (harness_bus_open(&b) < 0)
                        return 2;
                r = leaver_call(b, i % 3);
                if (r >= 0)
                        r = sd_bus_flush(b);
                if (r >= 0)
                        sent++;
                sd_bus_close_unref(b); /* without waiting for the answer */
        }
        sd_bus_flush_close_unref(pacer);
        report(out, size, "sent=%u\n", sent);
        return 0;
}

static void test_leave_with_calls_queued(void **state) {
        _cleanup_free_ char *out = NULL, *expected = NULL;
        unsigned idle;

        (void) state;
        start_smimed("leavers", "");
        import_anchors();
        verify_plain_ok(bus);
        idle = idle_fds();

        assert_int_equal(harness_run_as_test_user(harness, leaver_child, NULL, &out), 0);
        assert_true(asprintf(&expected, "sent=%u\n", LEAVERS) >= 0);
        assert_string_equal(out, expected);

        /* Still there, and holding nothing of the clients that left. */
        verify_plain_ok(bus);
        assert_fds_settle(idle);
}

/* (d) MaxRecipients=5: six recipients are refused before any work, five are not. */
static int recipients_child(char *out, size_t size, void *userdata) {
        char *six[] = {"r1@example.com",
                       "r2@example.com",
                       "r3@example.com",
                       "r4@example.com",
                       "r5@example.com",
                       "r6@example.com",
                       NULL};
        char *five[] = {SUPPORT, SUPPORT, SUPPORT, SUPPORT, SUPPORT, NULL};
        char buf[1024];
        Status s;
        sd_bus *b = NULL;

        (void) userdata;
        if (harness_bus_open(&b) < 0)
                return 2;
        s = recipients_call(b, "GetCapabilities", six);
        report(out, size, "capabilities6=%s\n", status_outcome(&s, buf, sizeof(buf)));
        s = recipients_call(b, "GetCapabilities", five);
        report(out, size, "capabilities5=%s\n", status_outcome(&s, buf, sizeof(buf)));
        s = recipients_call(b, "Encrypt", six);
        report(out, size, "encrypt6=%s\n", status_outcome(&s, buf, sizeof(buf)));
        s = recipients_call(b, "Encrypt", five);
        report(out, size, "encrypt5=%s\n", status_outcome(&s, buf, sizeof(buf)));
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_max_recipients(void **state) {
        _cleanup_free_ char *out = NULL;

        (void) state;
        start_smimed("max-recipients", "MaxRecipients=5\n");
        import_anchors();
        assert_int_equal(harness_run_as_test_user(harness, recipients_child, NULL, &out), 0);
        report_expect_error(out, "capabilities6", SMIMED_ERROR_LIMITS_EXCEEDED, "6 recipients", "at most 5",
                            "[Policy] MaxRecipients=", NULL);
        report_expect(out, "capabilities5", "ok");
        report_expect_error(out, "encrypt6", SMIMED_ERROR_LIMITS_EXCEEDED, "6 recipients", "at most 5",
                            "[Policy] MaxRecipients=", NULL);
        report_expect(out, "encrypt5", "ok");
}

/* ---- 1b. spool quotas ---- */

#define SPOOL_MESSAGE_KIB 700U

/* A plain message of SPOOL_MESSAGE_KIB KiB, as a memfd from its start. */
/* Whether spool_message() seals its memfd, as libsmimed does: smimed then
 * reads it where it is and charges it all at once, not as it copies it. */
static bool spool_sealed;

static int seal(int fd) {
        if (fd >= 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

static int spool_message(void) {
        static const char head[] = "From: " FRANK "\r\nTo: " SUPPORT "\r\nSubject: spool\r\n\r\n";
        size_t size = SPOOL_MESSAGE_KIB * 1024U;
        _cleanup_free_ char *text = malloc(size);
        size_t k = sizeof(head) - 1;

        if (!text)
                return -ENOMEM;
        memcpy(text, head, k);
        while (k < size) {
                size_t n = size - k < 64 ? size - k : 64;

                memset(text + k, 'q', n);
                if (n >= 2)
                        memcpy(text + k + n - 2, "\r\n", 2);
                k += n;
        }
        return spool_sealed ? seal(memfd_with(text, size)) : memfd_with(text, size);
}

/* A Verify of a SPOOL_MESSAGE_KIB message on b whose output is a socket
 * nobody reads after its first byte: smimed has spooled the whole input
 * once that byte is there, and the call stays in flight (with its input
 * charged) as long as the connection does. *keep is our end of the output. */
static int spool_held(sd_bus *b, sd_bus_slot **slot, Reply *reply, int *keep) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(closep) int input = spool_message();
        struct pollfd p = {.events = POLLIN};
        char byte;
        int sv[2], r;

        if (input < 0)
                return input;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        *keep = p.fd = sv[1];
        r = sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "Verify");
        if (r >= 0)
                r = sd_bus_message_append(m, "hha{sv}", input, sv[0], 0);
        close(sv[0]);
        if (r >= 0)
                r = sd_bus_call_async(b, slot, m, on_reply, reply, CALL_TIMEOUT_USEC);
        if (r >= 0)
                r = sd_bus_flush(b);
        if (r < 0)
                return r;
        do
                r = poll(&p, 1, CHILD_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r <= 0)
                return r < 0 ? -errno : -ETIMEDOUT;
        if (recv(p.fd, &byte, 1, 0) != 1)
                return -EIO;
        return bus_drain(b);
}

/* A Verify of a SPOOL_MESSAGE_KIB message on b, to a memfd, answered. */
static Status spool_whole(sd_bus *b) {
        _cleanup_(closep) int input = spool_message(), output = memfd_create("attack-output", MFD_CLOEXEC);
        Status s = {.r = -EIO, .content = -1};

        if (input >= 0 && output >= 0)
                s = open_call(b, "Verify", input, output);
        return s;
}

/* The test user, with [Policy] SpoolQuotaPerClient=1M and SpoolQuota=2M:
 * on connection 0 one message is held and a second refused (over the
 * client's quota); on connection 1 one more is held (1.4 MiB in all), and
 * on connection 2 a third refused (over the total), while a short message
 * there still goes through. Everything stays in flight until told to quit. */
static int spool_child(int control, void *userdata) {
        sd_bus *buses[3] = {};
        sd_bus_slot *slots[2] = {};
        Reply held[2] = {};
        int keep[2] = {-1, -1};
        char out[4096] = "", buf[64], outcome[1024];
        Status s;
        int r = 0;

        (void) userdata;
        for (unsigned c = 0; c < ELEMENTSOF(buses); c++) {
                const char *name = NULL;

                r = harness_bus_open(&buses[c]);
                if (r < 0) {
                        report(out, sizeof(out), "error=cannot connect: %s\n", strerror(-r));
                        goto done;
                }
                (void) sd_bus_get_unique_name(buses[c], &name);
                report(out, sizeof(out), "name%u=%s\n", c, strempty(name));
        }
        for (unsigned c = 0; c < 2; c++) {
                r = spool_held(buses[c], &slots[c], &held[c], &keep[c]);
                if (r < 0) {
                        report(out, sizeof(out), "error=held call %u: %s\n", c, strerror(-r));
                        goto done;
                }
                s = c == 0 ? spool_whole(buses[0]) : spool_whole(buses[2]);
                report(out, sizeof(out), "%s=%s\n", c == 0 ? "client" : "total",
                       status_outcome(&s, outcome, sizeof(outcome)));
        }
        s = open_text(buses[2], "Verify", "From: " FRANK "\r\nSubject: short\r\n\r\nshort\r\n");
        report(out, sizeof(out), "short=%s\n", status_outcome(&s, outcome, sizeof(outcome)));
        for (unsigned c = 0; c < 2; c++)
                report(out, sizeof(out), "held%u=%s\n", c, held[c].done ? "answered" : "pending");
done:
        if (send(control, out, strlen(out), MSG_NOSIGNAL) < 0)
                return 3;
        if (control_read(control, buf, sizeof(buf)) < 0)
                return 4;
        for (unsigned c = 0; c < ELEMENTSOF(buses); c++)
                sd_bus_flush_close_unref(buses[c]);
        for (unsigned c = 0; c < 2; c++)
                if (keep[c] >= 0)
                        close(keep[c]);
        return r < 0 ? 1 : 0;
}

/* (e) The input of messages in progress is charged to their client and to
 * smimed as it arrives: past a quota the call is refused with LimitsExceeded
 * naming it, and what a client held comes back when it goes. */
static void spool_quotas(bool sealed) {
        _cleanup_free_ char *text = NULL, *log = NULL;
        size_t log_start;
        Status s;
        Child c;

        spool_sealed = sealed;
        start_smimed(sealed ? "spool-quotas-sealed" : "spool-quotas",
                     "IOTimeoutSec=600\nSpoolQuotaPerClient=1M\nSpoolQuota=2M\n");
        import_anchors();
        log_start = harness_smimed_log_size(harness);

        child_start(&c, spool_child, NULL);
        text = child_read(&c);
        fprintf(stderr, "# %s", text);
        report_expect(text, "held0", "pending");
        report_expect(text, "held1", "pending");
        report_expect_error(text, "client", SMIMED_ERROR_LIMITS_EXCEEDED, "This client's messages in progress",
                            "[Policy] SpoolQuotaPerClient=1048576 bytes", NULL);
        report_expect_error(text, "total", SMIMED_ERROR_LIMITS_EXCEEDED, "The messages in progress",
                            "[Policy] SpoolQuota=2097152 bytes", NULL);
        report_expect(text, "short", "ok");
        log = smimed_log_from(log_start);
        assert_int_equal(lines_with(log, "Refusing more input", "SpoolQuota=", NULL), 1);

        /* The attacker goes: its 1.4 MiB are given back, so root's message of
         * 700 KiB fits again under the total of 2 MiB. */
        child_quit(&c, text);
        s = spool_whole(bus);
        spool_sealed = false;
        if (s.r < 0)
                fail_msg("Verify after the attacker left: %s: %s", s.error_name, s.error_message);
}

static void test_spool_quotas(void **state) {
        (void) state;
        spool_quotas(false);
}

/* The same with sealed memfds, which smimed does not copy: each is charged
 * whole when its call starts, and the quotas hold as before. */
static void test_spool_quotas_sealed(void **state) {
        (void) state;
        spool_quotas(true);
}

/* ---- 2. fair turns ---- */

typedef struct FairPlan {
        bool object_walks; /* A sends GetManagedObjects, else GetCapabilities with many recipients */
        unsigned calls;
        int all_sent_fd; /* >= 0: written to once every call (B's too) has reached the bus */
} FairPlan;

static int wait_two(sd_bus *a, sd_bus *b) {
        struct pollfd p[2] = {
                {.fd = sd_bus_get_fd(a), .events = (short) sd_bus_get_events(a)},
                {.fd = sd_bus_get_fd(b), .events = (short) sd_bus_get_events(b)},
        };
        int r;

        r = poll(p, 2, CHILD_TIMEOUT_MS);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        return r == 0 ? -ETIMEDOUT : 0;
}

/* Client A sends its calls, all at once; once the bus has passed them on
 * to smimed, client B sends one GetCapabilities. Reported:
 *   before: how many of A's smimed answered before B's. smimed's sd-bus
 *     numbers the messages it sends in order, and the bus passes the
 *     numbers on: an answer to A with a smaller serial than B's went out
 *     first. (What A has read when B's answer comes is not that: a large
 *     answer, such as a GetManagedObjects over thousands of objects, may
 *     still be on its way to A when a small one that went out after it has
 *     reached B.)
 *   received: how many A had read when B's answer came (A's connection read
 *     to its end at that moment), for the record. */
static int fair_child(char *out, size_t size, void *userdata) {
        const FairPlan *plan = userdata;
        _cleanup_free_ Reply *a_replies = calloc(plan->calls, sizeof(Reply));
        _cleanup_free_ sd_bus_slot **a_slots = calloc(plan->calls, sizeof(sd_bus_slot *));
        _cleanup_free_ char **recipients = calloc(FLOOD_RECIPIENTS + 1, sizeof(char *));
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *mb = NULL;
        sd_bus_slot *b_slot = NULL;
        sd_bus *a = NULL, *b = NULL;
        Reply b_reply = {};
        unsigned before = 0, received = 0, answered = 0, ok = 0, unnumbered = 0;
        int r;

        if (!a_replies || !a_slots || !recipients)
                return 2;
        if (harness_bus_open(&a) < 0 || harness_bus_open(&b) < 0)
                return 3;
        for (unsigned i = 0; i < FLOOD_RECIPIENTS; i++)
                if (asprintf(&recipients[i], "flood-%u@example.com", i) < 0)
                        return 2;

        for (unsigned i = 0; i < plan->calls; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                if (plan->object_walks)
                        r = sd_bus_message_new_method_call(a, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           "org.freedesktop.DBus.ObjectManager", "GetManagedObjects");
                else {
                        r = sd_bus_message_new_method_call(a, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "GetCapabilities");
                        if (r >= 0)
                                r = sd_bus_message_append(m, "s", "");
                        if (r >= 0)
                                r = sd_bus_message_append_strv(m, recipients);
                        if (r >= 0)
                                r = sd_bus_message_append(m, "a{sv}", 0);
                }
                if (r >= 0)
                        r = sd_bus_call_async(a, &a_slots[i], m, on_reply, &a_replies[i], CALL_TIMEOUT_USEC);
                if (r < 0) {
                        report(out, size, "error=call %u of A: %s\n", i, strerror(-r));
                        return 1;
                }
        }
        /* The bus handles a connection's messages in order: when it has answered A's Ping, all of A's calls
         * are on their way to smimed, and B's comes after them. */
        r = sd_bus_call_method(a, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer", "Ping",
                               NULL, NULL, NULL);
        if (r >= 0)
                r = sd_bus_message_new_method_call(b, &mb, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "GetCapabilities");
        if (r >= 0)
                r = sd_bus_message_append(mb, "sasa{sv}", "", 1, "b@example.com", 0);
        if (r >= 0)
                r = sd_bus_call_async(b, &b_slot, mb, on_reply, &b_reply, CALL_TIMEOUT_USEC);
        if (r >= 0)
                r = sd_bus_flush(b);
        /* Answered once the bus has put B's call in line for smimed, behind A's. */
        if (r >= 0 && plan->all_sent_fd >= 0)
                r = sd_bus_call_method(b, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer",
                                       "Ping", NULL, NULL, NULL);
        if (r >= 0 && plan->all_sent_fd >= 0 && write(plan->all_sent_fd, "x", 1) != 1)
                r = -errno;
        if (r < 0) {
                report(out, size, "error=B's call: %s\n", strerror(-r));
                return 1;
        }

        /* B first, always; A only read as far as it has come. */
        for (;;) {
                r = bus_drain(b);
                if (r < 0 || b_reply.done)
                        break;
                r = bus_drain(a);
                if (r >= 0)
                        r = wait_two(a, b);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                r = bus_drain(a);
        if (r < 0) {
                report(out, size, "error=waiting for B: %s\n", strerror(-r));
                return 1;
        }
        for (unsigned i = 0; i < plan->calls; i++)
                received += a_replies[i].done;

        /* Then all of A's. */
        for (unsigned i = 0; i < plan->calls && r >= 0; i++)
                r = bus_wait_for(a, &a_replies[i].done);
        for (unsigned i = 0; i < plan->calls; i++) {
                answered += a_replies[i].done;
                ok += a_replies[i].ok;
                before += a_replies[i].done && a_replies[i].serial < b_reply.serial;
                unnumbered += a_replies[i].done && a_replies[i].serial == 0;
                if (a_replies[i].done && !a_replies[i].ok && !strstr(out, "a_error="))
                        report(out, size, "a_error=%s|%s\n", a_replies[i].error_name, a_replies[i].error_message);
        }
        unnumbered += b_reply.serial == 0;
        report(out, size, "before=%u\nreceived=%u\nanswered=%u\nok=%u\nunnumbered=%u\nb=%s\n", before, received,
               answered, ok, unnumbered, b_reply.ok ? "ok" : b_reply.error_name);
        return 0;
}

/* 64 GetCapabilities of 1,000 recipients each from A, then B's one, all
 * sent while smimed is stopped (SIGSTOP), so that all of them wait for it in
 * the one stream the bus sends it: B's is answered after at most an eighth
 * of A's. In turns, with the bus read before each turn, B's came after 1 or
 * 2 of A's. Served in arrival order, B's waits for all 64; in turns but with
 * one message read per turn (B's call is in line only once all of A's are),
 * it did too. (With smimed running while the calls come, how many of A's it
 * answers before B's call even reaches it depends on the machine: 1 to 3 on
 * two cores, 18 on a faster one.) */
static void test_fair_turns_capabilities(void **state) {
        FairPlan plan = {.object_walks = false, .calls = FLOOD_CALLS};
        _cleanup_free_ char *out = NULL, *before = NULL;
        _cleanup_free_ char *max = NULL;
        int all_sent[2], status;
        pid_t waker;
        char c;

        (void) state;
        assert_true(asprintf(&max, "MaxCallsPerClient=%u\n", FLOOD_CALLS) > 0);
        start_smimed("fair-capabilities", max);
        import_anchors();

        /* The waker continues smimed once the child says all calls are in line
         * (or is gone: then the pipe ends). */
        assert_int_equal(pipe2(all_sent, O_CLOEXEC), 0);
        assert_int_equal(kill(harness->smimed_pid, SIGSTOP), 0);
        /* Stopped in all its threads, not just signalled. */
        assert_int_equal(waitpid(harness->smimed_pid, &status, WUNTRACED), harness->smimed_pid);
        assert_true(WIFSTOPPED(status));
        waker = fork();
        assert_true(waker >= 0);
        if (waker == 0) {
                close(all_sent[1]);
                (void) !read(all_sent[0], &c, 1);
                _exit(kill(harness->smimed_pid, SIGCONT) < 0);
        }
        running_child = waker;
        close(all_sent[0]);
        plan.all_sent_fd = all_sent[1];
        assert_int_equal(harness_run_as_test_user(harness, fair_child, (void *) &plan, &out), 0);
        close(all_sent[1]);
        assert_int_equal(waitpid(waker, NULL, 0), waker);
        running_child = -1;

        fprintf(stderr, "# %s", out);
        report_expect(out, "b", "ok");
        report_expect(out, "answered", "64");
        report_expect(out, "ok", "64");
        report_expect(out, "unnumbered", "0");
        before = report_get(out, "before");
        if (strtoul(before, NULL, 10) > FLOOD_CALLS / 8)
                fail_msg("B's GetCapabilities was answered after %s of A's %u calls", before, FLOOD_CALLS);
}

/* GetManagedObjects over ~2,000 certificate objects: B's GetCapabilities is
 * answered before A's fifth walk. */
static unsigned many_certificates(void) {
        const char *e = getenv("SMIMED_TEST_MANY_CERTS");
        unsigned long n = e ? strtoul(e, NULL, 10) : MANY_CERTIFICATES_DEFAULT;

        return n >= 100 && n <= 100000 ? (unsigned) n : MANY_CERTIFICATES_DEFAULT;
}

static void test_fair_turns_object_walks(void **state) {
        const FairPlan plan = {.object_walks = true, .calls = OBJECT_WALKS, .all_sent_fd = -1};
        const unsigned many = many_certificates();
        _cleanup_free_ char *out = NULL, *before = NULL, *pem = NULL, *expected = NULL;
        PkiCert **certs = calloc(many, sizeof(PkiCert *));
        EVP_PKEY *key = pki_key_rsa(2048);
        uint64_t count;

        (void) state;
        assert_non_null(certs);
        assert_non_null(key);
        for (unsigned i = 0; i < many; i++) {
                char address[64];
                const char *addresses[] = {address, NULL};

                snprintf(address, sizeof(address), "many-%u@example.com", i);
                certs[i] = leaf_for(key, address, addresses);
        }
        pem = pki_certs_pem((const PkiCert *const *) certs, many);
        assert_non_null(pem);
        for (unsigned i = 0; i < many; i++)
                pki_cert_free(certs[i]);
        free(certs);
        EVP_PKEY_free(key);

        start_smimed("fair-objects", NULL);
        import_anchors();
        count = certificate_count();
        import_pem(pem, false);
        assert_int_equal(certificate_count(), count + many);

        assert_int_equal(harness_run_as_test_user(harness, fair_child, (void *) &plan, &out), 0);
        fprintf(stderr, "# %s", out);
        report_expect(out, "b", "ok");
        assert_true(asprintf(&expected, "%u", OBJECT_WALKS) > 0);
        report_expect(out, "answered", expected);
        report_expect(out, "ok", expected);
        report_expect(out, "unnumbered", "0");
        before = report_get(out, "before");
        if (strtoul(before, NULL, 10) >= OBJECT_WALKS)
                fail_msg("B's GetCapabilities was answered after all %u of A's GetManagedObjects", OBJECT_WALKS);
}

/* ---- 3. whom a signature speaks for ---- */

typedef struct SignPlan {
        bool identity; /* the From:/Sender: cases; else one Sign as support@ */
} SignPlan;

static int sign_child(char *out, size_t size, void *userdata) {
        const SignPlan *plan = userdata;
        char buf[1024];
        sd_bus *b = NULL;
        Status s;

        if (harness_bus_open(&b) < 0)
                return 2;
        if (!plan->identity) {
                _cleanup_(closep) int output = memfd_create("attack-output", MFD_CLOEXEC);

                s = sign_call(b, SUPPORT,
                              "From: " SUPPORT "\r\nTo: customer@example.com\r\nSubject: identity\r\n\r\nHello.\r\n",
                              output);
                report(out, size, "sign=%s\n", status_outcome(&s, buf, sizeof(buf)));
        } else {
                _cleanup_(closep) int o1 = memfd_create("attack-output", MFD_CLOEXEC),
                                      o2 = memfd_create("attack-output", MFD_CLOEXEC),
                                      o3 = memfd_create("attack-output", MFD_CLOEXEC),
                                      o4 = memfd_create("attack-output", MFD_CLOEXEC);

                s = sign_call(b, SUPPORT,
                              "From: " BOSS "\r\nTo: customer@example.com\r\nSubject: identity\r\n\r\nHello.\r\n", o1);
                report(out, size, "from=%s\n", status_outcome(&s, buf, sizeof(buf)));
                s = sign_call(b, SUPPORT,
                              "From: " SUPPORT "\r\nSender: " BOSS
                              "\r\nTo: customer@example.com\r\nSubject: identity\r\n\r\nHello.\r\n",
                              o2);
                report(out, size, "sender=%s\n", status_outcome(&s, buf, sizeof(buf)));
                s = sign_call(b, SUPPORT,
                              "From: \"Support\" <" SUPPORT
                              ">\r\nTo: customer@example.com\r\nSubject: identity\r\n\r\nHello.\r\n",
                              o3);
                report(out, size, "display=%s\n", status_outcome(&s, buf, sizeof(buf)));
                if (s.r >= 0) {
                        s = open_call(b, "Verify", o3, o4);
                        report(out, size, "verify=%s\n",
                               s.r >= 0 ? s.signature : status_outcome(&s, buf, sizeof(buf)));
                }
        }
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_sign_identity(void **state) {
        const char *both[] = {SUPPORT, BOSS, NULL};
        const SignPlan refused = {.identity = false}, identity = {.identity = true};
        _cleanup_free_ char *out = NULL, *log = NULL, *denied = NULL, *signed_line = NULL;
        _cleanup_(pki_cert_freep) PkiCert *two = NULL;
        EVP_PKEY *key = pki_public_key_from_pem_file(harness->key_pem);
        size_t log_start;

        (void) state;
        assert_non_null(key);
        two = leaf_for(key, "Support and Boss", both);
        EVP_PKEY_free(key);
        start_smimed("sign-identity", NULL);
        import_pem(root_pem, true);
        import_cert(two);

        /* polkit lets the test user sign as support@ only: a signature that also speaks for boss@ is not its to make.
         */
        log_start = harness_smimed_log_size(harness);
        assert_int_equal(harness_run_as_test_user(harness, sign_child, (void *) &refused, &out), 0);
        report_expect_error(out, "sign", SD_BUS_ERROR_ACCESS_DENIED, NULL);
        log = smimed_log_from(log_start);
        assert_true(asprintf(&denied, "AUDIT org.smimed1.sign outcome=denied uid=%u ", (unsigned) harness->test_uid) >
                    0);
        if (lines_with(log, denied, "address=" BOSS, NULL) != 1)
                fail_msg("no audit record of the denial for " BOSS " in:\n%s", log);
        assert_true(asprintf(&signed_line, "AUDIT sign outcome=success uid=%u ", (unsigned) harness->test_uid) > 0);
        assert_int_equal(lines_with(log, signed_line, NULL), 0);

        /* A certificate for support@ alone: what the message says it is from must be that. */
        remove_certificate(two);
        import_pem(support_pem, false);
        free(out);
        out = NULL;
        assert_int_equal(harness_run_as_test_user(harness, sign_child, (void *) &identity, &out), 0);
        report_expect_error(out, "from", SMIMED_ERROR_POLICY_VIOLATION, "From:", BOSS, NULL);
        report_expect_error(out, "sender", SMIMED_ERROR_POLICY_VIOLATION, "Sender:", BOSS, NULL);
        report_expect(out, "display", "ok");
        /* The root is a trust anchor of this store, and the From: is the signer's. */
        report_expect(out, "verify", "valid");
}

/* ---- 4. which key a Decrypt may use ---- */

static char *encrypted_file(const char *name, const char *entity, const char *const *recipient_files) {
        _cleanup_free_ char *in = path_in("decrypt.entity"), *out = NULL, *text = NULL;
        char *argv[16] = {(char *) "openssl",  (char *) "cms",
                          (char *) "-encrypt", (char *) "-aes-256-cbc",
                          (char *) "-in",      in,
                          (char *) "-out",     NULL};
        _cleanup_free_ char *err = NULL, *body = NULL;
        size_t n = 8;
        int r;

        assert_int_equal(pki_write_file(in, entity, strlen(entity)), 0);
        out = path_in(name);
        argv[7] = out;
        for (const char *const *f = recipient_files; *f; f++) {
                argv[n++] = (char *) "-recip";
                argv[n++] = (char *) *f;
        }
        argv[n] = NULL;
        r = harness_run(harness, argv, false, NULL, &err);
        if (r != 0)
                fail_msg("openssl cms -encrypt failed (%d): %s", r, strempty(err));
        body = harness_read_file(out);
        assert_non_null(body);
        assert_true(asprintf(&text, "From: someone@example.org\nTo: " SUPPORT "\nSubject: scope\n%s", body) > 0);
        return TAKE_PTR(text);
}

typedef struct DecryptPlan {
        int only_ceo, ceo_first, support_first; /* memfds */
        const char *ceo_key;                    /* the id of the key whose certificate names ceo@ */
} DecryptPlan;

static int decrypt_child(char *out, size_t size, void *userdata) {
        const DecryptPlan *plan = userdata;
        const struct {
                const char *name;
                int fd;
        } cases[] = {
                {"only_ceo", plan->only_ceo},
                {"ceo_first", plan->ceo_first},
                {"support_first", plan->support_first},
        };
        char buf[1024];
        sd_bus *b = NULL;

        if (harness_bus_open(&b) < 0)
                return 2;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(closep) int output = memfd_create("attack-output", MFD_CLOEXEC);
                Status s = open_call(b, "Decrypt", cases[i].fd, output);

                if (s.r < 0)
                        report(out, size, "%s=%s\n", cases[i].name, status_outcome(&s, buf, sizeof(buf)));
                else
                        report(out, size, "%s=%s,%s\n", cases[i].name, s.encryption, s.key);
        }
        /* Asking for a key by its id does not get around polkit. */
        {
                _cleanup_(closep) int output = memfd_create("attack-output", MFD_CLOEXEC);
                Status s = open_call_key(b, "Decrypt", plan->support_first, output, plan->ceo_key);

                if (s.r < 0)
                        report(out, size, "asked_ceo=%s\n", status_outcome(&s, buf, sizeof(buf)));
                else
                        report(out, size, "asked_ceo=%s,%s\n", s.encryption, s.key);
        }
        /* Nor asking for it by its certificate's address. */
        {
                _cleanup_(closep) int output = memfd_create("attack-output", MFD_CLOEXEC);
                Status s = open_call_key(b, "Decrypt", plan->support_first, output, CEO);

                if (s.r < 0)
                        report(out, size, "asked_ceo_address=%s\n", status_outcome(&s, buf, sizeof(buf)));
                else
                        report(out, size, "asked_ceo_address=%s,%s\n", s.encryption, s.key);
        }
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_decrypt_scope(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *ceo_file = NULL, *support_file = NULL, *only_ceo = NULL, *ceo_first = NULL,
                            *support_first = NULL, *out = NULL, *log = NULL, *denied = NULL, *decrypted = NULL;
        _cleanup_(pki_cert_freep) PkiCert *ceo = NULL;
        static const char entity[] = "Content-Type: text/plain\n\nFor the CEO only.\n";
        const char *ceo_addresses[] = {CEO, NULL};
        const char *key_path, *csr;
        DecryptPlan plan;
        size_t log_start;

        (void) state;
        start_smimed("decrypt-scope", NULL);
        import_anchors();

        /* A key labelled support@ in the token, whose certificate names ceo@ only. */
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GenerateKey", &e,
                               &reply, "sa{sv}", SUPPORT, 1, "type", "s", "ec-p256") < 0)
                fail_msg("GenerateKey failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read(reply, "os", &key_path, &csr) > 0);
        {
                BIO *bio = BIO_new_mem_buf(csr, -1);
                X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
                EVP_PKEY *public = req ? X509_REQ_get_pubkey(req) : NULL;

                assert_non_null(public);
                ceo = leaf_for(public, "The CEO", ceo_addresses);
                EVP_PKEY_free(public);
                X509_REQ_free(req);
                BIO_free(bio);
        }
        import_cert(ceo);

        ceo_file = write_cert_file("ceo.pem", ceo);
        support_file = write_cert_file("support.pem", support);
        only_ceo = encrypted_file("only-ceo.eml", entity, (const char *const[]){ceo_file, NULL});
        ceo_first = encrypted_file("ceo-first.eml", entity, (const char *const[]){ceo_file, support_file, NULL});
        support_first =
                encrypted_file("support-first.eml", entity, (const char *const[]){support_file, ceo_file, NULL});
        plan = (DecryptPlan){
                .only_ceo = memfd_text(only_ceo),
                .ceo_first = memfd_text(ceo_first),
                .support_first = memfd_text(support_first),
                .ceo_key = strrchr(key_path, '/') + 1,
        };
        assert_true(plan.only_ceo >= 0 && plan.ceo_first >= 0 && plan.support_first >= 0);

        log_start = harness_smimed_log_size(harness);
        assert_int_equal(harness_run_as_test_user(harness, decrypt_child, &plan, &out), 0);
        close(plan.only_ceo);
        close(plan.ceo_first);
        close(plan.support_first);

        /* The label says support@, the certificate ceo@: polkit is asked about ceo@. */
        report_expect_error(out, "only_ceo", SD_BUS_ERROR_ACCESS_DENIED, NULL);
        /* The key the caller may use decrypts, whichever comes first in the message. */
        report_expect(out, "ceo_first", "encrypted," HARNESS_KEY_ID_HEX);
        report_expect(out, "support_first", "encrypted," HARNESS_KEY_ID_HEX);
        report_expect_error(out, "asked_ceo", SD_BUS_ERROR_ACCESS_DENIED, NULL);
        report_expect_error(out, "asked_ceo_address", SD_BUS_ERROR_ACCESS_DENIED, NULL);

        log = smimed_log_from(log_start);
        assert_true(asprintf(&denied, "AUDIT org.smimed1.decrypt outcome=denied uid=%u ",
                             (unsigned) harness->test_uid) > 0);
        if (lines_with(log, denied, "address=" CEO, NULL) < 1)
                fail_msg("no audit record of the denial for " CEO " in:\n%s", log);
        assert_int_equal(lines_with(log, denied, "address=" SUPPORT, NULL), 0);
        assert_true(asprintf(&decrypted, "AUDIT decrypt outcome=success uid=%u ", (unsigned) harness->test_uid) > 0);
        assert_int_equal(lines_with(log, decrypted, "key=" HARNESS_KEY_ID_HEX " address=" SUPPORT " ", NULL), 2);
        assert_int_equal(lines_with(log, decrypted, NULL), 2);

        /* The "key" option: root, who may use both keys, decrypts the message
         * encrypted to support@ first with the CEO's key when asked to, and
         * a key the message is not encrypted to is no-private-key. */
        {
                const char *ceo_key = strrchr(key_path, '/') + 1;
                _cleanup_(closep) int input = memfd_text(support_first), o1 = memfd_create("o", MFD_CLOEXEC),
                                      o2 = memfd_create("o", MFD_CLOEXEC), o3 = memfd_create("o", MFD_CLOEXEC);
                Status first, asked, absent;

                first = open_call_key(bus, "Decrypt", input, o1, NULL);
                asked = open_call_key(bus, "Decrypt", input, o2, ceo_key);
                absent = open_call_key(bus, "Decrypt", input, o3, "00ff00ff");
                assert_int_equal(first.r, 0);
                assert_string_equal(first.key, HARNESS_KEY_ID_HEX);
                assert_int_equal(asked.r, 0);
                assert_string_equal(asked.encryption, "encrypted");
                assert_string_equal(asked.key, ceo_key);
                assert_int_equal(absent.r, 0);
                assert_string_equal(absent.encryption, "no-private-key");
        }
        /* ... and by address: the key whose certificate names it (any case),
         * no-private-key for an address no key of the message has. */
        {
                const char *ceo_key = strrchr(key_path, '/') + 1;
                _cleanup_(closep) int input = memfd_text(ceo_first), o1 = memfd_create("o", MFD_CLOEXEC),
                                      o2 = memfd_create("o", MFD_CLOEXEC), o3 = memfd_create("o", MFD_CLOEXEC);
                _cleanup_free_ char *upper = strdup(CEO);
                Status ceo_asked, support_asked, stranger;

                assert_non_null(upper);
                for (char *c = upper; *c; c++)
                        *c = (char) toupper((unsigned char) *c);
                ceo_asked = open_call_key(bus, "Decrypt", input, o1, upper);
                support_asked = open_call_key(bus, "Decrypt", input, o2, SUPPORT);
                stranger = open_call_key(bus, "Decrypt", input, o3, "nobody@example.com");
                assert_int_equal(ceo_asked.r, 0);
                assert_string_equal(ceo_asked.encryption, "encrypted");
                assert_string_equal(ceo_asked.key, ceo_key);
                assert_int_equal(support_asked.r, 0);
                assert_string_equal(support_asked.encryption, "encrypted");
                assert_string_equal(support_asked.key, HARNESS_KEY_ID_HEX);
                assert_int_equal(stranger.r, 0);
                assert_string_equal(stranger.encryption, "no-private-key");
        }
}

/* ---- 5. the audit trail of an auto-import ---- */

static int verify_child(char *out, size_t size, void *userdata) {
        const int *input = userdata;
        _cleanup_(closep) int output = memfd_create("attack-output", MFD_CLOEXEC);
        char buf[1024];
        sd_bus *b = NULL;
        Status s;

        if (harness_bus_open(&b) < 0)
                return 2;
        s = open_call(b, "Verify", *input, output);
        report(out, size, "verify=%s\n", s.r >= 0 ? s.signature : status_outcome(&s, buf, sizeof(buf)));
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_auto_import_audit(void **state) {
        _cleanup_free_ char *cert_file = write_cert_file("frank.pem", frank),
                            *key_file = write_key_file("frank.key", frank->key), *entity = path_in("frank.entity"),
                            *signed_file = path_in("frank.signed"), *body = NULL, *message = NULL, *out = NULL,
                            *log = NULL, *line = NULL, *fp = fingerprint_of(frank), *fp_field = NULL;
        static const char entity_text[] = "Content-Type: text/plain\n\nSigned by Frank.\n";
        _cleanup_(closep) int input = -1;
        size_t log_start;
        uint64_t count;

        (void) state;
        start_smimed("auto-import", NULL);
        import_pem(root_pem, true);
        count = certificate_count();

        assert_int_equal(pki_write_file(entity, entity_text, strlen(entity_text)), 0);
        openssl("cms", "-sign", "-in", entity, "-signer", cert_file, "-inkey", key_file, "-md", "sha256", "-out",
                signed_file, NULL);
        body = harness_read_file(signed_file);
        assert_non_null(body);
        assert_true(asprintf(&message,
                             "From: Frank <" FRANK ">\nTo: " SUPPORT
                             "\nSubject: hello\nMessage-ID: <attack-8@example.com>\n%s",
                             body) > 0);
        input = memfd_text(message);
        assert_true(input >= 0);

        log_start = harness_smimed_log_size(harness);
        assert_int_equal(harness_run_as_test_user(harness, verify_child, &input, &out), 0);
        report_expect(out, "verify", "valid");
        assert_int_equal(certificate_count(), count + 1);

        log = smimed_log_from(log_start);
        assert_true(asprintf(&line, "AUDIT auto-import outcome=success uid=%u ", (unsigned) harness->test_uid) > 0);
        assert_true(asprintf(&fp_field, "fingerprint=%s ", fp) > 0);
        if (lines_with(log, line, fp_field, "mail_message_id=<attack-8@example.com>", NULL) != 1)
                fail_msg("no audit record of the auto-import of %s by uid %u in:\n%s", fp,
                         (unsigned) harness->test_uid, log);
}

/* ---- 6. a large message must not hold up the loop ---- */

static unsigned big_mib(void) {
        const char *e = getenv("SMIMED_TEST_BIG_MIB");
        char *end = NULL;
        unsigned long n;

        if (!e)
                return BIG_MIB_DEFAULT;
        errno = 0;
        n = strtoul(e, &end, 10);
        if (errno != 0 || !end || *end || n < 1 || n > BIG_MIB_MAX)
                fail_msg("SMIMED_TEST_BIG_MIB=%s: expected 1 to %u", e, BIG_MIB_MAX);
        return (unsigned) n;
}

static void write_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);

                assert_true(n > 0);
                p += n;
                size -= (size_t) n;
        }
}

/* multipart/signed whose first part (mib MiB of text) is not what the
 * detached signature (Frank's, over a short text) signed. */
static int tampered_message(unsigned mib) {
        static const char signed_text[] = "Content-Type: text/plain\r\n\r\nWhat was signed.\r\n";
        _cleanup_free_ char *chunk = NULL, *b64 = NULL, *head = NULL, *tail = NULL;
        unsigned char *der = NULL;
        const size_t chunk_size = 1024 * 1024;
        BIO *in = BIO_new_mem_buf(signed_text, -1);
        CMS_ContentInfo *cms;
        int fd, len;

        assert_non_null(in);
        cms = CMS_sign(frank->x509, frank->key, NULL, in, CMS_DETACHED | CMS_BINARY);
        assert_non_null(cms);
        len = i2d_CMS_ContentInfo(cms, &der);
        assert_true(len > 0);
        CMS_ContentInfo_free(cms);
        BIO_free(in);

        /* Base64 in lines of 64. */
        {
                size_t encoded = 4 * (((size_t) len + 2) / 3);
                _cleanup_free_ char *flat = malloc(encoded + 1);
                size_t k = 0;

                assert_non_null(flat);
                assert_int_equal(EVP_EncodeBlock((unsigned char *) flat, der, len), (int) encoded);
                b64 = malloc(encoded + 2 * (encoded / 64 + 1) + 1);
                assert_non_null(b64);
                for (size_t i = 0; i < encoded; i += 64) {
                        size_t n = encoded - i < 64 ? encoded - i : 64;

                        memcpy(b64 + k, flat + i, n);
                        k += n;
                        b64[k++] = '\r';
                        b64[k++] = '\n';
                }
                b64[k] = '\0';
        }
        OPENSSL_free(der);

        assert_true(asprintf(&head,
                             "From: Frank <" FRANK ">\r\nTo: " SUPPORT "\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
                             "micalg=\"sha-256\"; boundary=\"attack-boundary\"\r\n\r\n"
                             "--attack-boundary\r\nContent-Type: text/plain\r\n\r\n") > 0);
        assert_true(asprintf(&tail,
                             "--attack-boundary\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
                             "Content-Transfer-Encoding: base64\r\n"
                             "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n%s\r\n"
                             "--attack-boundary--\r\n",
                             b64) > 0);

        chunk = malloc(chunk_size);
        assert_non_null(chunk);
        for (size_t i = 0; i < chunk_size; i += 64) {
                memset(chunk + i, 'a' + (char) ((i / 64) % 26), 62);
                chunk[i + 62] = '\r';
                chunk[i + 63] = '\n';
        }
        fd = memfd_create("attack-big", MFD_CLOEXEC);
        assert_true(fd >= 0);
        write_all(fd, head, strlen(head));
        for (unsigned i = 0; i < mib; i++)
                write_all(fd, chunk, chunk_size);
        write_all(fd, tail, strlen(tail));
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

/* The test user Verifies the large message on one connection and, on
 * another, asks GetCapabilities one call after the other until the Verify
 * is answered. */
static int big_child(char *out, size_t size, void *userdata) {
        const int *input = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(closep) int output = memfd_create("attack-output", MFD_CLOEXEC);
        sd_bus_slot *slot = NULL;
        sd_bus *v = NULL, *g = NULL;
        OpenReply reply = {.status.content = -1};
        uint64_t start, max_rtt = 0;
        unsigned during = 0, calls = 0;
        int r;

        if (output < 0 || harness_bus_open(&v) < 0 || harness_bus_open(&g) < 0)
                return 2;

        r = sd_bus_message_new_method_call(v, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "Verify");
        if (r >= 0)
                r = sd_bus_message_append(m, "hha{sv}", *input, output, 0);
        if (r >= 0)
                r = sd_bus_call_async(v, &slot, m, on_open_reply, &reply, CALL_TIMEOUT_USEC);
        start = now_usec();
        if (r >= 0)
                r = sd_bus_flush(v);
        while (r >= 0 && !reply.reply.done) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *answer = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                uint64_t t = now_usec();

                r = sd_bus_call_method(g, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                       "GetCapabilities", &e, &answer, "sasa{sv}", SUPPORT, 1, "partner@example.org",
                                       0);
                if (r < 0) {
                        report(out, size, "error=GetCapabilities: %s: %s\n", strempty(e.name), strempty(e.message));
                        return 1;
                }
                t = now_usec() - t;
                if (t > max_rtt)
                        max_rtt = t;
                calls++;
                r = bus_drain(v);
                /* Answered while the Verify was not. */
                if (!reply.reply.done)
                        during++;
        }
        if (r < 0) {
                report(out, size, "error=%s\n", strerror(-r));
                return 1;
        }
        if (reply.reply.ok)
                report(out, size, "verify=%s,content=%d\n", reply.status.signature, reply.status.content);
        else
                report(out, size, "verify=%s|%s\n", reply.reply.error_name, reply.reply.error_message);
        report(out, size, "duration=%" PRIu64 "\nmax_rtt=%" PRIu64 "\ncalls=%u\nduring=%u\n", reply.reply.when - start,
               max_rtt, calls, during);
        sd_bus_flush_close_unref(v);
        sd_bus_flush_close_unref(g);
        return 0;
}

static void test_big_verify_off_the_loop(void **state) {
        _cleanup_free_ char *out = NULL, *during = NULL, *duration = NULL, *max_rtt = NULL;
        _cleanup_(closep) int input = -1;
        unsigned mib = big_mib();

        (void) state;
        start_smimed("big-verify", NULL);
        import_anchors();
        input = tampered_message(mib);

        assert_int_equal(harness_run_as_test_user(harness, big_child, &input, &out), 0);
        fprintf(stderr, "# %u MiB: %s", mib, out);
        /* The digest does not match: invalid, and the message is there to read. */
        report_expect(out, "verify", "invalid,content=1");
        during = report_get(out, "during");
        duration = report_get(out, "duration");
        max_rtt = report_get(out, "max_rtt");
        if (strtoul(during, NULL, 10) < 3)
                fail_msg("only %s GetCapabilities were answered during the Verify of %u MiB (%s µs)", during, mib,
                         duration);
        /* Under a wrapper (valgrind runs one thread at a time) a waiting
         * time says nothing about the loop; the answers during the Verify
         * above still do. */
        if (*strempty(getenv("SMIMED_TEST_WRAPPER")))
                return;
        if (strtoull(max_rtt, NULL, 10) * 4 >= strtoull(duration, NULL, 10))
                fail_msg("a GetCapabilities took %s µs, more than a quarter of the Verify's %s µs", max_rtt, duration);
}

/* ---- ---- */

static int setup(void **state) {
        const char *support_addresses[] = {SUPPORT, NULL};
        const char *frank_addresses[] = {FRANK, NULL};
        EVP_PKEY *token_key = NULL;
        PkiCertOptions o;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r >= 0)
                r = harness_bus_open(&bus);
        if (r < 0)
                return r;

        pki_cert_options_init(&o);
        o.common_name = "Attack Test Root";
        o.is_ca = true;
        o.key = pki_key_ec();
        root = pki_cert_new(&o, NULL);
        EVP_PKEY_free(o.key);
        if (!root)
                return -EIO;

        token_key = pki_public_key_from_pem_file(harness->key_pem);
        pki_cert_options_init(&o);
        o.common_name = "Support";
        o.san_emails = support_addresses;
        o.key = token_key;
        support = token_key ? pki_cert_new(&o, root) : NULL;
        EVP_PKEY_free(token_key);

        pki_cert_options_init(&o);
        o.common_name = "Frank";
        o.san_emails = frank_addresses;
        o.key = pki_key_ec();
        frank = pki_cert_new(&o, root);
        EVP_PKEY_free(o.key);
        if (!support || !frank)
                return -EIO;

        root_pem = pki_cert_pem(root);
        support_pem = pki_cert_pem(support);
        return root_pem && support_pem ? 0 : -ENOMEM;
}

static int teardown(void **state) {
        (void) state;
        bus = sd_bus_flush_close_unref(bus);
        harness = harness_free(harness);
        root = pki_cert_free(root);
        support = pki_cert_free(support);
        frank = pki_cert_free(frank);
        root_pem = mfree(root_pem);
        support_pem = mfree(support_pem);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_fd_exhaustion, stop_smimed),
                cmocka_unit_test_teardown(test_calls_per_user, stop_smimed),
                cmocka_unit_test_teardown(test_calls_total, stop_smimed),
                cmocka_unit_test_teardown(test_leave_with_calls_queued, stop_smimed),
                cmocka_unit_test_teardown(test_max_recipients, stop_smimed),
                cmocka_unit_test_teardown(test_spool_quotas, stop_smimed),
                cmocka_unit_test_teardown(test_spool_quotas_sealed, stop_smimed),
                cmocka_unit_test_teardown(test_fair_turns_capabilities, stop_smimed),
                cmocka_unit_test_teardown(test_fair_turns_object_walks, stop_smimed),
                cmocka_unit_test_teardown(test_sign_identity, stop_smimed),
                cmocka_unit_test_teardown(test_decrypt_scope, stop_smimed),
                cmocka_unit_test_teardown(test_auto_import_audit, stop_smimed),
                cmocka_unit_test_teardown(test_big_verify_off_the_loop, stop_smimed),
        };

        /* SMIMED_TEST_FILTER=test_fair* runs some of them. */
        if (getenv("SMIMED_TEST_FILTER"))
                cmocka_set_test_filter(getenv("SMIMED_TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
