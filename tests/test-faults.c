/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Faults (issue #9), each a test on the real pieces: the token's storage
 * taken away and given back, a wrong PIN reloaded again and again, the
 * store's files made immutable and too large to grow during an import,
 * SIGKILL in the middle of an import, clients that leave in the middle of a
 * call, and an input that never reaches its end. After every fault the
 * daemon must still run and answer, and hold no more file descriptors than
 * before. Every wait is on an event: a reply, a PropertiesChanged signal, a
 * line in smimed's log (inotify), a pipe's far end closing (poll), a
 * process exit. Each test runs its own smimed on its own store. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "harness.h"
#include "pki.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"

#define SIGNER "signer@example.com"
#define SPY_MODULE "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"
#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
/* Imports of thousands of certificates take long under valgrind. */
#define CALL_TIMEOUT_USEC (10 * HARNESS_TIMEOUT_USEC)
/* 200 certificates of about 6 KiB: 1.2 MiB, within SQLite's page cache. */
#define BIG_BATCH 200
#define BIG_BATCH_PADDING (6 * 1024)
/* 300 certificates of about 10 KiB: 3 MiB, more than SQLite's page cache. */
#define FULL_BATCH 300
#define FULL_BATCH_PADDING (10 * 1024)

static Harness *harness;
static sd_bus *bus;
static PkiCert *root;           /* EC, trusted in every store */
static PkiCert *signer;         /* for the token's key: Sign works */
static char *anchors_pem;       /* both */
static char *immutable[4];      /* files a test made immutable, for the teardown */

/* ---- small helpers ---- */

static char *path_in(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", harness->dir, name) > 0);
        return p;
}

static void strv_free_(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

static void strv_freep_(char ***l) {
        strv_free_(*l);
}

static size_t strv_len(char **l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int memfd_with(const char *text) {
        int fd = memfd_create("test-input", MFD_CLOEXEC);
        size_t len = strlen(text);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

/* A pipe of one page, so that a writer on the other side fills it at once. */
static void small_pipe(int p[2]) {
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
}

/* Waits (poll, up to the harness timeout) for events on fd; returns revents. */
static short wait_fd(int fd, short events) {
        struct pollfd p = { .fd = fd, .events = events };
        int r;

        do
                r = poll(&p, 1, (int) (HARNESS_TIMEOUT_USEC / 1000));
        while (r < 0 && errno == EINTR);
        assert_true(r >= 0);
        if (r == 0)
                fail_msg("fd %d: no poll events 0x%x within the harness timeout", fd, (unsigned) events);
        return p.revents;
}

/* The write end of a pipe whose read ends are all closed: POLLERR. */
static void wait_read_ends_closed(int write_end) {
        assert_true(wait_fd(write_end, 0) & POLLERR);
}

/* The read end of a pipe whose write ends are all closed: POLLHUP, and
 * nothing in it. */
static void wait_write_ends_closed_empty(int read_end) {
        char c;

        assert_true(wait_fd(read_end, POLLIN) & POLLHUP);
        assert_int_equal(read(read_end, &c, 1), 0);
}

/* smimed's fds once it is idle. A reply goes out before the call's job is
 * freed, in the same turn of smimed's event loop; a call made after it is
 * dispatched only after that turn, so its reply means the job is gone. */
static unsigned idle_fds(void) {
        unsigned n;

        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping",
                                       NULL, NULL, NULL) >= 0);
        assert_int_equal(harness_smimed_fds(harness, &n, NULL), 0);
        return n;
}

/* smimed holds as many fds as it did before: nothing of a call is left. */
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

static char *smimed_log_from(size_t offset) {
        _cleanup_free_ char *log = harness_read_file(harness->smimed_log);

        assert_non_null(log);
        assert_true(strlen(log) >= offset);
        return strdup(log + offset);
}

static unsigned count_lines_ending(const char *text, const char *suffix) {
        size_t n = strlen(suffix);
        unsigned count = 0;

        for (const char *line = text; line && *line;) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t) (end - line) : strlen(line);

                if (len >= n && memcmp(line + len - n, suffix, n) == 0)
                        count++;
                line = end ? end + 1 : NULL;
        }
        return count;
}

/* ---- smimed ---- */

/* The harness configuration with extra appended, on a store of its own. */
static char *write_config(const char *name, const char *extra) {
        _cleanup_free_ char *more = NULL, *text = NULL, *file = NULL;
        char *path;

        /* No token health check unless a test asks for one (a later key wins):
         * SoftHSM2 opens its token files for it, and a count of smimed's fds
         * taken in that moment would show one more. */
        assert_true(asprintf(&more, "[Token]\nRescanIntervalSec=86400\n[Store]\nPath=%s/%s.db\n%s", harness->state_dir, name,
                             strempty(extra)) > 0);
        text = harness_config_text(harness, more);
        assert_non_null(text);
        assert_true(asprintf(&file, "%s.conf", name) > 0);
        path = harness_write_file(harness, file, text, 0644);
        assert_non_null(path);
        return path;
}

static char *store_path(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s.db", harness->state_dir, name) > 0);
        return p;
}

static void start_smimed(const char *name, const char *extra, char *const *env, const HarnessSmimedOptions *o) {
        _cleanup_free_ char *config = write_config(name, extra);

        assert_int_equal(harness_start_smimed_full(harness, config, env, o), 0);
}

static int stop_smimed(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(immutable); i++) {
                if (!immutable[i])
                        continue;
                /* Never leave an immutable file behind: nothing could remove it. */
                {
                        int fd = open(immutable[i], O_RDONLY | O_CLOEXEC), flags = 0;

                        if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0) {
                                flags &= ~FS_IMMUTABLE_FL;
                                (void) ioctl(fd, FS_IOC_SETFLAGS, &flags);
                        }
                        if (fd >= 0)
                                close(fd);
                }
                immutable[i] = mfree(immutable[i]);
        }
        if (harness->smimed_pid > 0)
                assert_int_equal(harness_stop_smimed(harness), 0);
        return 0;
}

/* After a fault: smimed still runs, answers a property read and a method
 * call. */
static void assert_smimed_alive(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *version = NULL;
        int status;

        assert_true(harness->smimed_pid > 0);
        if (waitpid(harness->smimed_pid, &status, WNOHANG) != 0)
                fail_msg("smimed is gone (status 0x%x), see %s", (unsigned) status, harness->smimed_log);
        assert_int_equal(harness_get_manager_property(bus, "Version", &version), 0);
        assert_string_not_equal(version, "");
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GetCapabilities",
                               &e, &reply, "sasa{sv}", SIGNER, 0, 0) < 0)
                fail_msg("GetCapabilities failed: %s: %s", e.name, e.message);
}

static uint64_t certificate_count(void) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(harness_get_manager_property(bus, "CertificateCount", &s), 0);
        return strtoull(s, NULL, 10);
}

/* Every certificate object in the store, sorted, one per line. */
static char *store_listing(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(strv_freep_) char **paths = NULL;
        char *text = NULL;
        size_t size = 0;
        FILE *f;

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                               "LookupCertificates", &e, &reply, "sa{sv}", "", 0) < 0)
                fail_msg("LookupCertificates failed: %s: %s", e.name, e.message);
        assert_true(sd_bus_message_read_strv(reply, &paths) >= 0);
        qsort(paths, strv_len(paths), sizeof(char *), cmp_str);
        f = open_memstream(&text, &size);
        assert_non_null(f);
        for (char **p = paths; *p; p++)
                fprintf(f, "%s\n", *p);
        assert_int_equal(fclose(f), 0);
        return text;
}

static int import(const void *data, size_t size, bool trust, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;

        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', data, size) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "trust", "b", (int) trust) >= 0);
        return sd_bus_call(bus, m, CALL_TIMEOUT_USEC, e, &reply);
}

static void import_ok(const void *data, size_t size, bool trust) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (import(data, size, trust, &e) < 0)
                fail_msg("ImportCertificates failed: %s: %s", e.name, e.message);
}

/* n EC leaves under root, as one DER PKCS#7 bundle; each carries a comment
 * of padding bytes, so that a batch reaches a size with few certificates
 * (every certificate costs smimed many allocations, which are slow under
 * the asan setup's careful unwinding). */
static void make_batch(size_t n, size_t padding, const char *tag, unsigned char **ret, size_t *ret_size) {
        _cleanup_free_ char *comment = padding > 0 ? malloc(padding + 1) : NULL;
        EVP_PKEY *key = pki_key_ec();
        PkiCert **certs = calloc(n, sizeof(PkiCert *));

        assert_non_null(key);
        assert_non_null(certs);
        if (padding > 0) {
                assert_non_null(comment);
                memset(comment, 'x', padding);
                comment[padding] = 0;
        }
        for (size_t i = 0; i < n; i++) {
                char address[64];
                const char *sans[] = { address, NULL };
                PkiCertOptions o;

                snprintf(address, sizeof(address), "%s-%zu@example.com", tag, i);
                pki_cert_options_init(&o);
                o.common_name = address;
                o.san_emails = sans;
                o.key = key;
                o.comment = comment;
                certs[i] = pki_cert_new(&o, root);
                assert_non_null(certs[i]);
        }
        assert_int_equal(pki_pkcs7_der((const PkiCert *const *) certs, n, ret, ret_size), 0);
        for (size_t i = 0; i < n; i++)
                pki_cert_free(certs[i]);
        free(certs);
        EVP_PKEY_free(key);
}

/* Opens the store read-only beside (or after) smimed and runs the checks a
 * torn write would fail. Returns the number of certificates in it. */
static uint64_t check_store_file(const char *path) {
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        uint64_t count;

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        if (!streq((const char *) sqlite3_column_text(s, 0), "ok"))
                fail_msg("PRAGMA integrity_check on %s: %s", path, sqlite3_column_text(s, 0));
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);

        /* No address points at a certificate that is not there. */
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);

        assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM certificate", -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        count = (uint64_t) sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        return count;
}

static void set_immutable(const char *path, bool on) {
        int fd, flags = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
        if (on)
                flags |= FS_IMMUTABLE_FL;
        else
                flags &= ~FS_IMMUTABLE_FL;
        assert_int_equal(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
        close(fd);
        if (on)
                for (size_t i = 0; i < ELEMENTSOF(immutable); i++)
                        if (!immutable[i]) {
                                immutable[i] = strdup(path);
                                break;
                        }
}

/* ---- signing ---- */

#define MESSAGE "From: " SIGNER "\r\nTo: bob@example.com\r\nSubject: faults\r\n\r\nHello.\r\n"

static void import_anchors(void) {
        import_ok(anchors_pem, strlen(anchors_pem), true);
}

static sd_bus_message *new_sign_call(sd_bus *b, int input, int output) {
        sd_bus_message *m = NULL;

        assert_true(sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "Sign") >= 0);
        assert_true(sd_bus_message_append(m, "shha{sv}", SIGNER, input, output, 0) >= 0);
        return m;
}

/* Sign from input to output; returns the call's result. */
static int sign(int input, int output, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_sign_call(bus, input, output), *reply = NULL;

        return sd_bus_call(bus, m, CALL_TIMEOUT_USEC, e, &reply);
}

static void sign_ok(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(closep) int input = memfd_with(MESSAGE), output = memfd_create("out", MFD_CLOEXEC);
        _cleanup_free_ char *text = NULL;
        struct stat st;

        if (sign(input, output, &e) < 0)
                fail_msg("Sign failed: %s: %s", e.name, e.message);
        assert_int_equal(fstat(output, &st), 0);
        assert_true(st.st_size > 0);
        text = calloc(1, (size_t) st.st_size + 1);
        assert_int_equal(pread(output, text, (size_t) st.st_size, 0), st.st_size);
        assert_non_null(strstr(text, "application/pkcs7-signature"));
}

static void sign_fails_with(const char *error_name) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(closep) int input = memfd_with(MESSAGE), output = memfd_create("out", MFD_CLOEXEC);

        assert_true(sign(input, output, &e) < 0);
        if (!streq_ptr(e.name, error_name))
                fail_msg("Sign failed with %s (%s), expected %s", e.name, e.message, error_name);
        assert_non_null(e.message);
}

/* MESSAGE encrypted by smimed to SIGNER (the token key's certificate), in a memfd at offset 0. */
static int encrypted_for_signer(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(closep) int input = memfd_with(MESSAGE);
        int encrypted = memfd_create("encrypted", MFD_CLOEXEC);

        assert_true(input >= 0 && encrypted >= 0);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Encrypt", &e,
                               &reply, "ashha{sv}", 1, SIGNER, input, encrypted, 0) < 0)
                fail_msg("Encrypt failed: %s: %s", e.name, e.message);
        return encrypted;
}

/* Decrypt of encrypted (read from offset 0); the reply's "encryption" when it succeeds. */
static int decrypt(int encrypted, sd_bus_error *e, char **ret_encryption) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(closep) int input = dup(encrypted), output = memfd_create("out", MFD_CLOEXEC);
        int r;

        assert_true(input >= 0 && output >= 0);
        assert_int_equal(lseek(input, 0, SEEK_SET), 0);
        r = sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Decrypt", e,
                               &reply, "hha{sv}", input, output, 0);
        if (r < 0)
                return r;
        *ret_encryption = NULL;
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                const char *key, *value;

                assert_true(sd_bus_message_read(reply, "s", &key) >= 0);
                if (streq(key, "encryption")) {
                        assert_true(sd_bus_message_read(reply, "v", "s", &value) >= 0);
                        *ret_encryption = strdup(value);
                } else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_non_null(*ret_encryption);
        return r;
}

static void decrypt_ok(int encrypted) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *encryption = NULL;

        if (decrypt(encrypted, &e, &encryption) < 0)
                fail_msg("Decrypt failed: %s: %s", e.name, e.message);
        assert_string_equal(encryption, "encrypted");
}

/* Not "failed" or "no-private-key" in a reply: the message is fine and
 * the key may be in the token; it is the token that cannot answer. */
static void decrypt_fails_with_token_unavailable(int encrypted) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *encryption = NULL;

        if (decrypt(encrypted, &e, &encryption) >= 0)
                fail_msg("Decrypt succeeded with encryption \"%s\", expected TokenUnavailable", encryption);
        if (!streq_ptr(e.name, SMIMED_ERROR_TOKEN_UNAVAILABLE))
                fail_msg("Decrypt failed with %s (%s), expected TokenUnavailable", e.name, e.message);
        assert_non_null(e.message);
}

/* ---- 1. the token's storage taken away ---- */

/* What SoftHSM2 does (found with a PKCS#11 program against it, and shown
 * here): it keeps no token in memory once its directory is gone. The next
 * call that reads the token fails: C_GetTokenInfo with
 * CKR_GENERAL_ERROR, a key handle with CKR_OBJECT_HANDLE_INVALID,
 * C_FindObjects finds nothing. Putting the directory back does not help
 * that process: the module must be finalized and initialized again, and
 * C_Initialize itself fails while the directory is missing. So smimed
 * notices (a Sign fails, and the token is asked every RescanIntervalSec=),
 * reports TokenState "error", loads the module again every interval, and is
 * ready again once the directory is back. */
static void test_token_storage_taken_away(void **state) {
        _cleanup_(property_watch_freep) PropertyWatch *to_error = NULL, *to_ready = NULL;
        _cleanup_free_ char *tokens = path_in("tokens"), *away = path_in("tokens.away"), *reason = NULL,
                            *log = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        size_t log_start = harness_smimed_log_size(harness);
        _cleanup_(closep) int encrypted = -1;
        const char *reason_value = NULL;
        int possible = -1;

        (void) state;
        start_smimed("token-away", "[Token]\nRescanIntervalSec=1\n", NULL, NULL);
        import_anchors();
        encrypted = encrypted_for_signer();
        sign_ok();
        decrypt_ok(encrypted);

        assert_int_equal(harness_watch_manager_property(bus, "TokenState", &to_error), 0);
        assert_int_equal(rename(tokens, away), 0);

        /* The first call after it goes into the token (its key is loaded already) and fails there. */
        decrypt_fails_with_token_unavailable(encrypted);
        sign_fails_with(SMIMED_ERROR_TOKEN_UNAVAILABLE);
        assert_int_equal(harness_watch_wait(to_error, "error"), 0);
        assert_smimed_alive();
        /* Now smimed knows before it tries. */
        decrypt_fails_with_token_unavailable(encrypted);

        /* What a mail app sees meanwhile: signing is not possible, and why. */
        assert_int_equal(harness_get_manager_property(bus, "TokenStateReason", &reason), 0);
        assert_non_null(strstr(reason, SOFTHSM_MODULE));
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                       "GetCapabilities", &e, &reply, "sasa{sv}", SIGNER, 0, 0) >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                const char *key;

                assert_true(sd_bus_message_read(reply, "s", &key) >= 0);
                if (streq(key, "possible"))
                        assert_true(sd_bus_message_read(reply, "v", "b", &possible) >= 0);
                else if (streq(key, "reason"))
                        assert_true(sd_bus_message_read(reply, "v", "s", &reason_value) >= 0);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_int_equal(possible, 0);
        assert_string_equal(reason_value, "token-unavailable");
        sign_fails_with(SMIMED_ERROR_TOKEN_UNAVAILABLE);

        /* Back: found again by the next rescan. */
        assert_int_equal(harness_watch_manager_property(bus, "TokenState", &to_ready), 0);
        assert_int_equal(rename(away, tokens), 0);
        assert_int_equal(harness_watch_wait(to_ready, "ready"), 0);
        sign_ok();
        decrypt_ok(encrypted);
        assert_smimed_alive();

        log = smimed_log_from(log_start);
        assert_non_null(strstr(log, "stopped answering"));
}

/* ---- 2. a wrong PIN, reloaded ---- */

static void reload_ok(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Reload", &e, NULL,
                               "") < 0)
                fail_msg("Reload failed: %s: %s", e.name, e.message);
}

static void expect_token_state(const char *state, const char *reason_part) {
        _cleanup_free_ char *s = NULL, *reason = NULL;

        assert_int_equal(harness_get_manager_property(bus, "TokenState", &s), 0);
        assert_int_equal(harness_get_manager_property(bus, "TokenStateReason", &reason), 0);
        if (!streq(s, state) || (reason_part && !strstr(reason, reason_part)))
                fail_msg("TokenState %s (\"%s\"), expected %s (\"…%s…\")", s, reason, state, strempty(reason_part));
}

/* C_Login calls the token was asked, as OpenSC's pkcs11-spy (a pass-through
 * module between smimed and SoftHSM2) recorded them: an observer outside
 * smimed. SoftHSM2 has no lockout of its own to show it. */
static unsigned token_logins(const char *spy_log) {
        _cleanup_free_ char *text = harness_read_file(spy_log);

        return text ? count_lines_ending(text, ": C_Login") : 0;
}

static void test_wrong_pin_is_tried_once(void **state) {
        _cleanup_free_ char *pin_file = NULL, *spy_log = NULL, *spy_env = NULL, *spy_out_env = NULL,
                            *token = NULL, *right = NULL, *log = NULL;
        size_t log_start = harness_smimed_log_size(harness);
        char *env[4];

        (void) state;
        /* The spy writes it from inside smimed: in smimed's own directory. */
        assert_true(asprintf(&spy_log, "%s/spy.log", harness->state_dir) > 0);
        pin_file = harness_write_smimed_file(harness, "wrong-pin", "wrong-pin-1\n", 0600);
        assert_non_null(pin_file);
        assert_true(asprintf(&spy_env, "PKCS11SPY=%s", SOFTHSM_MODULE) > 0);
        assert_true(asprintf(&spy_out_env, "PKCS11SPY_OUTPUT=%s", spy_log) > 0);
        env[0] = spy_env;
        env[1] = spy_out_env;
        env[2] = (char *) "SMIMED_LOG_LEVEL=debug";
        env[3] = NULL;
        assert_true(asprintf(&token, "[Token]\nModule=" SPY_MODULE "\nPINFile=%s\n", pin_file) > 0);
        start_smimed("wrong-pin", token, env, NULL);

        expect_token_state("locked", "refused the PIN");
        assert_int_equal(token_logins(spy_log), 1);

        /* Reload after Reload with the same file: the refused PIN is never sent again. */
        for (int i = 0; i < 3; i++) {
                reload_ok();
                expect_token_state("locked", "does not try a refused PIN again");
                assert_smimed_alive();
        }
        assert_int_equal(token_logins(spy_log), 1);

        /* Another wrong PIN is one more try, once; and the first stays refused. */
        free(harness_write_smimed_file(harness, "wrong-pin", "wrong-pin-2\n", 0600));
        reload_ok();
        expect_token_state("locked", "refused the PIN");
        reload_ok();
        assert_int_equal(token_logins(spy_log), 2);
        free(harness_write_smimed_file(harness, "wrong-pin", "wrong-pin-1\n", 0600));
        reload_ok();
        expect_token_state("locked", "does not try a refused PIN again");
        assert_int_equal(token_logins(spy_log), 2);

        /* The right PIN: tried, and the token is ready. */
        assert_true(asprintf(&right, "%s\n", harness->pin) > 0);
        free(harness_write_smimed_file(harness, "wrong-pin", right, 0600));
        reload_ok();
        expect_token_state("ready", NULL);
        assert_int_equal(token_logins(spy_log), 3);
        assert_smimed_alive();

        /* smimed's own account agrees, and no PIN is in its log. */
        log = smimed_log_from(log_start);
        {
                unsigned attempts = 0;

                for (const char *p = log; (p = strstr(p, "Logging in to token")); p++)
                        attempts++;
                assert_int_equal(attempts, 3);
        }
        assert_null(strstr(log, "wrong-pin-1"));
        assert_null(strstr(log, "wrong-pin-2"));
        assert_null(strstr(log, harness->pin));
}

/* ---- 3. the store's files cannot be written during an import ---- */

static void expect_store_unchanged(uint64_t count, const char *listing, const char *db) {
        _cleanup_free_ char *now = store_listing();

        assert_int_equal(certificate_count(), count);
        assert_string_equal(now, listing);
        assert_int_equal(check_store_file(db), count);
}

/* smimed holds the store's files open, and a mode is checked only when a
 * file is opened, so the store is made immutable (chattr +i,
 * FS_IMMUTABLE_FL): the kernel refuses every write, through descriptors
 * smimed already holds too (and to root). The -shm file stays
 * writable: SQLite maps it, and a write fault on an immutable mapping is
 * SIGBUS, not an error code; it holds no data that outlives the process. */
static void test_store_read_only_during_import(void **state) {
        _cleanup_free_ char *db = store_path("read-only"), *wal = NULL, *listing = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ unsigned char *batch = NULL;
        size_t batch_size = 0;
        uint64_t count;

        (void) state;
        start_smimed("read-only", NULL, NULL, NULL);
        import_anchors();
        count = certificate_count();
        listing = store_listing();
        make_batch(50, 0, "read-only", &batch, &batch_size);

        assert_true(asprintf(&wal, "%s-wal", db) > 0);
        set_immutable(db, true);
        set_immutable(wal, true);

        assert_true(import(batch, batch_size, false, &e) < 0);
        if (!streq_ptr(e.name, SMIMED_ERROR_STORE_FAILED))
                fail_msg("ImportCertificates failed with %s (%s), expected StoreFailed", e.name, e.message);
        /* SQLite does not always keep the errno of a failed write (here: EPERM on the WAL at
         * COMMIT), so the message may only say "Input/output error". */
        if (!strstr(e.message, "The certificate store cannot be written: "))
                fail_msg("ImportCertificates: %s", e.message);
        assert_smimed_alive();
        expect_store_unchanged(count, listing, db);

        /* Writable again: the same batch goes in whole. */
        set_immutable(db, false);
        set_immutable(wal, false);
        import_ok(batch, batch_size, false);
        assert_int_equal(certificate_count(), count + 50);
        assert_int_equal(check_store_file(db), count + 50);
        assert_smimed_alive();
}

/* The disk is full for smimed: RLIMIT_FSIZE lets no file of it grow past a
 * size the import needs (write() fails with EFBIG, as on a file system at
 * its limit, and the kernel sends SIGXFSZ, which would kill a daemon that
 * did not ignore it). The batch is larger than SQLite's page cache: pages
 * spill into the write-ahead log in the middle of the transaction, and that
 * write fails. */
static void test_store_disk_full_during_import(void **state) {
        _cleanup_free_ char *db = store_path("disk-full"), *listing = NULL, *pid = NULL, *fsize = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ unsigned char *batch = NULL;
        HarnessSmimedOptions o = {};
        struct rlimit hard;
        size_t batch_size = 0;
        uint64_t count;

        (void) state;
        /* Room for the log (appended to by every smimed of this file) and the empty store. */
        o.rlimit_fsize = harness_smimed_log_size(harness) + 512 * 1024;
        start_smimed("disk-full", NULL, NULL, &o);
        import_anchors();
        count = certificate_count();
        listing = store_listing();
        make_batch(FULL_BATCH, FULL_BATCH_PADDING, "disk-full", &batch, &batch_size);

        assert_true(import(batch, batch_size, false, &e) < 0);
        if (!streq_ptr(e.name, SMIMED_ERROR_STORE_FAILED))
                fail_msg("ImportCertificates failed with %s (%s), expected StoreFailed", e.name, e.message);
        if (!strstr(e.message, "cannot be written: No space left on device"))
                fail_msg("ImportCertificates: %s", e.message);
        assert_smimed_alive();
        expect_store_unchanged(count, listing, db);

        /* Space again: the soft limit lifted to the hard one (the test's), by smimed's user:
         * prlimit(2) on another user's process takes CAP_SYS_RESOURCE, which root in a
         * container may lack. */
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &hard), 0);
        assert_true(asprintf(&pid, "%d", (int) harness->smimed_pid) > 0);
        if (hard.rlim_max == RLIM_INFINITY)
                assert_true(asprintf(&fsize, "--fsize=unlimited:") > 0);
        else
                assert_true(asprintf(&fsize, "--fsize=%ju:", (uintmax_t) hard.rlim_max) > 0);
        {
                char *const argv[] = { (char *) "prlimit", (char *) "--pid", pid, fsize, NULL };
                _cleanup_free_ char *err = NULL;
                int r = harness_run_as(harness, argv, HARNESS_USER_SMIMED, NULL, &err);

                if (r != 0)
                        fail_msg("prlimit exited with %d: %s", r, err);
        }
        import_ok(batch, batch_size, false);
        assert_int_equal(certificate_count(), count + FULL_BATCH);
        assert_int_equal(check_store_file(db), count + FULL_BATCH);
        assert_smimed_alive();
}

/* ---- 4. SIGKILL in the middle of an import ---- */

/* The import is one transaction. This batch fits SQLite's page cache, so
 * nothing reaches store.db-wal before the commit: its first write (inotify)
 * is the commit writing the transaction's pages, and SIGKILL tears it. (The
 * disk-full test above covers a write failing in the middle of a
 * transaction, where a larger batch spills pages early.) Whenever the kill
 * lands, the store must come back consistent, holding all of the batch or
 * none of it. */
static void test_sigkill_during_import(void **state) {
        _cleanup_free_ char *db = store_path("sigkill"), *wal = NULL, *config = NULL, *log = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ unsigned char *batch = NULL;
        _cleanup_(closep) int watch = -1;
        size_t batch_size = 0, log_start;
        uint64_t before, after;
        char buf[4096];
        int status;

        (void) state;
        make_batch(BIG_BATCH, BIG_BATCH_PADDING, "sigkill", &batch, &batch_size);
        start_smimed("sigkill", NULL, NULL, NULL);
        import_anchors();
        before = certificate_count();

        assert_true(asprintf(&wal, "%s-wal", db) > 0);
        watch = inotify_init1(IN_CLOEXEC);
        assert_true(watch >= 0);
        assert_true(inotify_add_watch(watch, wal, IN_MODIFY) >= 0);

        log_start = harness_smimed_log_size(harness);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "ImportCertificates") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', batch, batch_size) >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 0) >= 0);
        assert_true(sd_bus_send(bus, m, NULL) >= 0);
        assert_true(sd_bus_flush(bus) >= 0);

        assert_true(wait_fd(watch, POLLIN) & POLLIN);
        status = harness_kill_smimed(harness, SIGKILL);
        assert_int_equal(status, 128 + SIGKILL);
        while (read(watch, buf, sizeof(buf)) < 0 && errno == EINTR)
                ;

        log = smimed_log_from(log_start);
        config = write_config("sigkill", NULL);
        assert_int_equal(harness_start_smimed(harness, config, NULL), 0);

        after = certificate_count();
        if (after != before && after != before + BIG_BATCH)
                fail_msg("after SIGKILL the store holds %" PRIu64 " certificates: neither %" PRIu64
                         " (none of the batch) nor %" PRIu64 " (all of it)",
                         after, before, before + (uint64_t) BIG_BATCH);
        assert_int_equal(check_store_file(db), after);
        assert_smimed_alive();
        fprintf(stderr, "# SIGKILL landed %s: the store holds %s of the batch\n",
                strstr(log, "Imported ") ? "after the commit" : "before the commit was complete",
                after == before ? "none" : "all");

        /* The store takes the batch afterwards as if nothing had happened. */
        import_ok(batch, batch_size, false);
        assert_int_equal(certificate_count(), before + BIG_BATCH);
        assert_int_equal(check_store_file(db), before + BIG_BATCH);
}

/* ---- 5. a client that leaves in the middle of a call ---- */

static char *unique_name(sd_bus *b) {
        const char *name = NULL;

        assert_true(sd_bus_get_unique_name(b, &name) >= 0);
        return strdup(name);
}

/* The input pipe is never written to its end: smimed reads what there is
 * and waits. The client disconnects; smimed must drop the call at once (not
 * after IOTimeoutSec=, set to ten minutes here): every end of both pipes it
 * held is closed, and it holds as many fds as before. */
static void test_client_leaves_while_input_is_read(void **state) {
        _cleanup_(closep) int in_write = -1, out_read = -1;
        _cleanup_free_ char *name = NULL, *line = NULL;
        size_t log_start = harness_smimed_log_size(harness);
        char *env[] = { (char *) "SMIMED_LOG_LEVEL=debug", NULL };
        char page[4096];
        unsigned fds;
        int in[2], out[2];

        (void) state;
        start_smimed("client-leaves-input", "[Policy]\nIOTimeoutSec=600\n", env, NULL);
        import_anchors();
        sign_ok();
        fds = idle_fds();

        {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *client = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                assert_int_equal(harness_bus_open(&client), 0);
                name = unique_name(client);
                small_pipe(in);
                small_pipe(out);
                m = new_sign_call(client, in[0], out[1]);
                assert_true(sd_bus_send(client, m, NULL) >= 0);
                assert_true(sd_bus_flush(client) >= 0);
                m = sd_bus_message_unref(m);
                close(in[0]);
                close(out[1]);
                in_write = in[1];
                out_read = out[0];

                /* A page of headers that never end: once smimed has taken it, the job reads. */
                memset(page, 'x', sizeof(page));
                memcpy(page, "From: " SIGNER "\r\nX-Long: ", 30);
                assert_int_equal(write(in_write, page, sizeof(page)), (ssize_t) sizeof(page));
                assert_true(wait_fd(in_write, POLLOUT) & POLLOUT);
        }
        /* The client is gone (its connection closed, its pipe ends still open here). */

        wait_read_ends_closed(in_write);
        wait_write_ends_closed_empty(out_read);
        assert_true(asprintf(&line, "Client %s went away: dropped 1 of its calls.", name) > 0);
        assert_int_equal(harness_wait_smimed_log(harness, log_start, line), 0);
        assert_fds(fds);
        assert_smimed_alive();
}

/* fcntl write locks on the key objects of the SoftHSM2 token, taken here:
 * SoftHSM2 locks an object's file to read it, so a private-key operation
 * waits (C_SignInit, C_FindObjects) until they are released. The token
 * object itself stays free: smimed's loop asks C_GetTokenInfo. */
static bool is_key_object(const char *name) {
        size_t len = strlen(name);

        return len >= 7 && streq(name + len - 7, ".object") && !streq(name, "token.object");
}

/* SoftHSM2 write-locks its token's generation file when it has stored a new
 * object: a key generation waits there, inside the token, once the key pair
 * is made. */
static bool is_generation_file(const char *name) {
        return streq(name, "generation");
}

/* Write locks on the files of the SoftHSM2 token that pick() names. */
static unsigned lock_token_files(bool (*pick)(const char *name), int *fds, unsigned max) {
        _cleanup_free_ char *tokens = path_in("tokens");
        DIR *top = opendir(tokens);
        struct dirent *t;
        unsigned n = 0;

        assert_non_null(top);
        while ((t = readdir(top))) {
                _cleanup_free_ char *dir = NULL;
                struct dirent *o;
                DIR *d;

                if (t->d_name[0] == '.')
                        continue;
                assert_true(asprintf(&dir, "%s/%s", tokens, t->d_name) > 0);
                d = opendir(dir);
                assert_non_null(d);
                while ((o = readdir(d))) {
                        _cleanup_free_ char *p = NULL;
                        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

                        if (!pick(o->d_name))
                                continue;
                        assert_true(n < max);
                        assert_true(asprintf(&p, "%s/%s", dir, o->d_name) > 0);
                        fds[n] = open(p, O_RDWR | O_CLOEXEC);
                        assert_true(fds[n] >= 0);
                        assert_int_equal(fcntl(fds[n], F_SETLK, &fl), 0);
                        n++;
                }
                closedir(d);
        }
        closedir(top);
        assert_true(n > 0);
        return n;
}

/* A body larger than the output pipe: a writer could not finish. */
static char *big_message(void) {
        size_t size = 256 * 1024;
        char *text = malloc(size + 1), *p;

        assert_non_null(text);
        p = text + sprintf(text, "From: " SIGNER "\r\nTo: bob@example.com\r\nSubject: big\r\n\r\n");
        while ((size_t) (p - text) < size - 80)
                p += sprintf(p, "%.*s\r\n", 70, "The quick brown fox jumps over the lazy dog, again and again and again.");
        *p = '\0';
        return text;
}

/* Waits until a lock request of smimed's waits in /proc/locks ("->"): a
 * worker is inside the token, blocked on a file the test holds locked. The
 * kernel has no event for that, so the table is read until it shows it. */
static void wait_smimed_blocked_on_lock(void) {
        uint64_t deadline = now_usec() + HARNESS_TIMEOUT_USEC;
        char want[32];

        snprintf(want, sizeof(want), " %d ", (int) harness->smimed_pid);
        for (;;) {
                _cleanup_free_ char *locks = harness_read_file("/proc/locks");
                char *save = NULL;

                assert_non_null(locks);
                for (char *l = strtok_r(locks, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                        if (strstr(l, "->") && strstr(l, want))
                                return;
                if (now_usec() > deadline)
                        fail_msg("smimed never waited on the locked token files");
                (void) poll(NULL, 0, 5);
        }
}

/* The call reaches a worker, which waits inside the token; the client
 * disconnects; the token is let go. The worker's result must go nowhere:
 * nothing is written to the output, every fd of the call is closed, and the
 * use of the key is still on record. */
static void client_leaves_while_on_worker(const char *method, const char *worker_line, int input) {
        _cleanup_(closep) int out_read = -1;
        _cleanup_free_ char *name = NULL, *line = NULL;
        size_t log_start = harness_smimed_log_size(harness);
        int locks[16], out[2];
        unsigned fds, n_locks;

        fds = idle_fds();
        n_locks = lock_token_files(is_key_object, locks, ELEMENTSOF(locks));
        {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *client = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                assert_int_equal(harness_bus_open(&client), 0);
                name = unique_name(client);
                small_pipe(out);
                if (streq(method, "Sign"))
                        m = new_sign_call(client, input, out[1]);
                else {
                        assert_true(sd_bus_message_new_method_call(client, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                                   SMIMED_MANAGER_INTERFACE, method) >= 0);
                        assert_true(sd_bus_message_append(m, "hha{sv}", input, out[1], 0) >= 0);
                }
                assert_true(sd_bus_send(client, m, NULL) >= 0);
                assert_true(sd_bus_flush(client) >= 0);
                m = sd_bus_message_unref(m);
                close(out[1]);
                out_read = out[0];

                assert_true(asprintf(&line, "%s for %s: %s", method, name, worker_line) > 0);
                assert_int_equal(harness_wait_smimed_log(harness, log_start, line), 0);
                /* Handed to a worker is not yet begun: work cancelled before
                 * it began leaves no audit record. */
                wait_smimed_blocked_on_lock();
        }
        line = mfree(line);
        assert_true(asprintf(&line, "Client %s went away: dropped 1 of its calls.", name) > 0);
        assert_int_equal(harness_wait_smimed_log(harness, log_start, line), 0);

        for (unsigned i = 0; i < n_locks; i++)
                close(locks[i]);

        wait_write_ends_closed_empty(out_read);
        /* The key was used: the audit trail says so, and that nobody got the
         * result. The output may be closed before the worker is done (the
         * client left): wait for the record rather than read the log once. */
        assert_int_equal(harness_wait_smimed_log(harness, log_start,
                                                 streq(method, "Sign") ? "AUDIT sign outcome=failed"
                                                                       : "AUDIT decrypt outcome=success"),
                         0);
        assert_fds(fds);
        assert_smimed_alive();
}

static void test_client_leaves_while_signing(void **state) {
        _cleanup_free_ char *text = big_message();
        _cleanup_(closep) int input = -1;
        char *env[] = { (char *) "SMIMED_LOG_LEVEL=debug", NULL };

        (void) state;
        start_smimed("client-leaves-sign", "[Policy]\nIOTimeoutSec=600\n", env, NULL);
        import_anchors();
        sign_ok();
        input = memfd_with(text);
        client_leaves_while_on_worker("Sign", "", input);
}

static void test_client_leaves_while_decrypting(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *text = big_message();
        _cleanup_(closep) int input = -1, encrypted = memfd_create("encrypted", MFD_CLOEXEC);
        char *env[] = { (char *) "SMIMED_LOG_LEVEL=debug", NULL };

        (void) state;
        start_smimed("client-leaves-decrypt", "[Policy]\nIOTimeoutSec=600\n", env, NULL);
        import_anchors();
        input = memfd_with(text);
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Encrypt", &e,
                               &reply, "ashha{sv}", 1, SIGNER, input, encrypted, 0) < 0)
                fail_msg("Encrypt failed: %s: %s", e.name, e.message);
        assert_int_equal(lseek(encrypted, 0, SEEK_SET), 0);
        client_leaves_while_on_worker("Decrypt", "key " HARNESS_KEY_ID_HEX ", handing it to a worker.", encrypted);
}

/* Kills smimed's worker processes (the busy one and the idle ones). */
static unsigned kill_workers(void) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL, *stat = NULL;
                int pid, ppid;
                char comm[64];

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                assert_true(asprintf(&path, "/proc/%s/stat", de->d_name) > 0);
                stat = harness_read_file(path);
                if (!stat || sscanf(stat, "%d (%63[^)]) %*c %d", &pid, comm, &ppid) != 3)
                        continue;
                if (ppid == harness->smimed_pid && streq(comm, "smimed-worker") && kill(pid, SIGKILL) == 0)
                        n++;
        }
        closedir(d);
        return n;
}

typedef struct CallOutcome {
        bool done;
        char error_name[128], error_message[512];
} CallOutcome;

static int on_call_outcome(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        CallOutcome *o = userdata;

        (void) ret_error;
        o->done = true;
        snprintf(o->error_name, sizeof(o->error_name), "%s", e ? strempty(e->name) : "");
        snprintf(o->error_message, sizeof(o->error_message), "%s", e ? strempty(e->message) : "");
        return 0;
}

/* A Decrypt of encrypted on b whose worker process dies while the token
 * decrypts for it (held there by the locks on the key's object files),
 * once smimed logged line: the call fails with WorkerFailed, as in any
 * other step, rather than answer that the message could not be decrypted;
 * the use of the key is on record, and smimed goes on. */
static void decrypt_with_worker_killed(sd_bus *b, int encrypted, const char *line) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(closep) int output = memfd_create("decrypted", MFD_CLOEXEC);
        size_t log_start = harness_smimed_log_size(harness);
        CallOutcome outcome = {};
        int locks[16];
        unsigned n_locks;

        assert_int_equal(lseek(encrypted, 0, SEEK_SET), 0);
        n_locks = lock_token_files(is_key_object, locks, ELEMENTSOF(locks));
        assert_true(sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "Decrypt") >= 0);
        assert_true(sd_bus_message_append(m, "hha{sv}", encrypted, output, 0) >= 0);
        assert_true(sd_bus_call_async(b, &slot, m, on_call_outcome, &outcome, CALL_TIMEOUT_USEC) >= 0);
        assert_true(sd_bus_flush(b) >= 0);
        assert_int_equal(harness_wait_smimed_log(harness, log_start, line), 0);
        wait_smimed_blocked_on_lock();

        assert_true(kill_workers() >= 1);
        for (unsigned i = 0; i < n_locks; i++)
                close(locks[i]);
        while (!outcome.done) {
                int r = sd_bus_process(b, NULL);

                assert_true(r >= 0);
                if (r == 0)
                        assert_true(sd_bus_wait(b, CALL_TIMEOUT_USEC) >= 0);
        }
        if (!streq(outcome.error_name, SMIMED_ERROR_WORKER_FAILED))
                fail_msg("Decrypt answered \"%s\" (%s), expected WorkerFailed", outcome.error_name,
                         outcome.error_message);
        assert_non_null(strstr(outcome.error_message, "worker process"));
        assert_int_equal(harness_wait_smimed_log(harness, log_start, "AUDIT decrypt outcome=failed"), 0);
        assert_smimed_alive();
}

/* Both ways a Decrypt reaches the key: at once (polkit's yes remembered
 * for the connection) and after polkit was asked (a new connection). The
 * key is loaded once before, so that the token holds up the key operation
 * the worker waits for, not the loading of the key. */
static void test_worker_dies_while_decrypting(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *other = NULL;
        _cleanup_(closep) int input = memfd_with("From: " SIGNER "\r\nSubject: dies\r\n\r\nbody\r\n"),
                              encrypted = memfd_create("encrypted", MFD_CLOEXEC);
        char *env[] = {(char *) "SMIMED_LOG_LEVEL=debug", NULL};

        (void) state;
        start_smimed("worker-dies-decrypt", "[Policy]\nIOTimeoutSec=600\n", env, NULL);
        import_anchors();
        if (sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "Encrypt", &e,
                               &reply, "ashha{sv}", 1, SIGNER, input, encrypted, 0) < 0)
                fail_msg("Encrypt failed: %s: %s", e.name, e.message);
        decrypt_ok(encrypted);

        decrypt_with_worker_killed(bus, encrypted, "polkit's yes remembered: decrypting at once.");
        assert_int_equal(harness_bus_open(&other), 0);
        decrypt_with_worker_killed(other, encrypted, "key " HARNESS_KEY_ID_HEX ", handing it to a worker.");
        decrypt_ok(encrypted); /* by new workers */
}

static uint64_t key_count(void) {
        _cleanup_free_ char *s = NULL;

        assert_int_equal(harness_get_manager_property(bus, "KeyCount", &s), 0);
        return strtoull(s, NULL, 10);
}

/* The client of a GenerateKey leaves while the token makes the key (held
 * there by a lock on the token's generation file). Nobody could ever learn
 * of that key: smimed removes it again, and says so in the log and the
 * audit trail. A new smimed on the same token finds as many keys as before. */
static void test_client_leaves_while_generating_key(void **state) {
        _cleanup_free_ char *name = NULL, *line = NULL, *log = NULL, *config = NULL;
        size_t log_start = harness_smimed_log_size(harness);
        char *env[] = { (char *) "SMIMED_LOG_LEVEL=debug", NULL };
        int locks[2];
        unsigned fds, n_locks;
        uint64_t keys;

        (void) state;
        config = write_config("client-leaves-generate", NULL);
        assert_int_equal(harness_start_smimed_full(harness, config, env, NULL), 0);
        /* A first audited call: the audit trail's socket to the journal is opened once, on first use. */
        import_anchors();
        sign_ok();
        keys = key_count();
        fds = idle_fds();
        n_locks = lock_token_files(is_generation_file, locks, ELEMENTSOF(locks));
        assert_int_equal(n_locks, 1);
        {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *client = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                assert_int_equal(harness_bus_open(&client), 0);
                name = unique_name(client);
                assert_true(sd_bus_message_new_method_call(client, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                           SMIMED_MANAGER_INTERFACE, "GenerateKey") >= 0);
                assert_true(sd_bus_message_append(m, "sa{sv}", "gone@example.com", 1, "type", "s", "rsa-2048") >= 0);
                assert_true(sd_bus_send(client, m, NULL) >= 0);
                assert_true(sd_bus_flush(client) >= 0);
                assert_int_equal(harness_wait_smimed_log(harness, log_start,
                                                         "GenerateKey for gone@example.com (rsa-2048): handing it to a worker."),
                                 0);
        }
        assert_true(asprintf(&line, "Client %s went away: dropped 1 of its calls.", name) > 0);
        assert_int_equal(harness_wait_smimed_log(harness, log_start, line), 0);
        for (unsigned i = 0; i < n_locks; i++)
                close(locks[i]);
        assert_int_equal(harness_wait_smimed_log(harness, log_start, "was removed from the token again."), 0);

        log = smimed_log_from(log_start);
        /* Who asked, as smimed saw them when the call came (they cannot be asked now). */
        assert_non_null(strstr(log, "AUDIT generate-key outcome=failed uid=0 pid="));
        assert_null(strstr(log, "Generated key"));
        assert_int_equal(key_count(), keys);
        assert_fds(fds);
        assert_smimed_alive();

        /* What the token itself holds: a new smimed lists its keys afresh. */
        assert_int_equal(harness_stop_smimed(harness), 0);
        assert_int_equal(harness_start_smimed(harness, config, NULL), 0);
        assert_int_equal(key_count(), keys);
}

/* smimed is stopped while the token makes a key: it waits for the token
 * (a worker cannot be interrupted inside it), gives the caller its key, and
 * exits cleanly, holding nothing (under valgrind: no leak). */
static int on_generate_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        char **answer = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        (void) ret_error;
        assert_true(asprintf(answer, "%s: %s", e ? e->name : "success", e ? strempty(e->message) : "") > 0);
        return 0;
}

static void test_stop_while_generating_key(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *client = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *config = NULL, *answer = NULL;
        size_t log_start = harness_smimed_log_size(harness);
        char *env[] = { (char *) "SMIMED_LOG_LEVEL=debug", NULL };
        int locks[2];
        unsigned n_locks;

        (void) state;
        config = write_config("stop-generate", NULL);
        assert_int_equal(harness_start_smimed_full(harness, config, env, NULL), 0);
        n_locks = lock_token_files(is_generation_file, locks, ELEMENTSOF(locks));
        assert_int_equal(n_locks, 1);

        assert_int_equal(harness_bus_open(&client), 0);
        assert_true(sd_bus_message_new_method_call(client, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "GenerateKey") >= 0);
        assert_true(sd_bus_message_append(m, "sa{sv}", "stopped@example.com", 0) >= 0);
        assert_true(sd_bus_call_async(client, &slot, m, on_generate_reply, &answer, CALL_TIMEOUT_USEC) >= 0);
        assert_true(sd_bus_flush(client) >= 0);
        assert_int_equal(harness_wait_smimed_log(harness, log_start,
                                                 "GenerateKey for stopped@example.com (rsa-3072): handing it to a worker."),
                         0);

        assert_int_equal(kill(harness->smimed_pid, SIGTERM), 0);
        assert_int_equal(harness_wait_smimed_log(harness, log_start, "Stopping: waiting for the token"), 0);
        for (unsigned i = 0; i < n_locks; i++)
                close(locks[i]);
        /* Signal 0: no second SIGTERM (that one would not wait), only the wait for the exit. */
        assert_int_equal(harness_kill_smimed(harness, 0), 0);

        /* The caller got its key before smimed left the bus. */
        while (!answer) {
                int r = sd_bus_process(client, NULL);

                assert_true(r >= 0);
                if (r == 0)
                        assert_true(sd_bus_wait(client, UINT64_MAX) >= 0);
        }
        if (strncmp(answer, "success", 7) != 0)
                fail_msg("GenerateKey answered %s", answer);
}

/* Two Sign calls of one connection at once, before polkit answered for
 * either: smimed asks polkit twice, the first answer is remembered, and the
 * second call, dispatched again with its own answer, finds that yes in the
 * cache. Its polkit query must go all the same: it holds the call and the
 * call's fds, and the client stays connected (a mail server keeps its
 * connection for days). */
static int on_sign_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        int *outcome = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        (void) ret_error;
        if (e)
                fprintf(stderr, "Sign failed: %s: %s\n", e->name, e->message);
        *outcome = e ? -1 : 1;
        return 0;
}

static void test_one_client_two_signs_at_once(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *client = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot1 = NULL, *slot2 = NULL;
        int outcome1 = 0, outcome2 = 0;
        unsigned fds;

        (void) state;
        start_smimed("two-at-once", NULL, NULL, NULL);
        import_anchors();
        fds = idle_fds();

        /* A new connection: a new sender, so nothing of it is in the cache yet. */
        assert_int_equal(harness_bus_open(&client), 0);
        {
                _cleanup_(closep) int in1 = memfd_with(MESSAGE), in2 = memfd_with(MESSAGE),
                                  out1 = memfd_create("out1", MFD_CLOEXEC), out2 = memfd_create("out2", MFD_CLOEXEC);
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m1 = new_sign_call(client, in1, out1),
                                                                *m2 = new_sign_call(client, in2, out2);

                assert_true(sd_bus_call_async(client, &slot1, m1, on_sign_reply, &outcome1, CALL_TIMEOUT_USEC) >= 0);
                assert_true(sd_bus_call_async(client, &slot2, m2, on_sign_reply, &outcome2, CALL_TIMEOUT_USEC) >= 0);
        }
        while (outcome1 == 0 || outcome2 == 0) {
                int r = sd_bus_process(client, NULL);

                assert_true(r >= 0);
                if (r == 0)
                        assert_true(sd_bus_wait(client, UINT64_MAX) >= 0);
        }
        assert_int_equal(outcome1, 1);
        assert_int_equal(outcome2, 1);

        /* Still connected: nothing of either call is left in smimed. */
        assert_fds(fds);
        assert_smimed_alive();
}

/* ---- 6. an input that never reaches its end ---- */

static void call_times_out(const char *method) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(closep) int in_write = -1, out_read = -1;
        static const char start[] = "From: " SIGNER "\r\nSubject: never ends\r\n";
        unsigned fds = idle_fds();
        uint64_t t0;
        int in[2], out[2];

        small_pipe(in);
        small_pipe(out);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, method) >= 0);
        if (streq(method, "Sign"))
                assert_true(sd_bus_message_append(m, "shha{sv}", SIGNER, in[0], out[1], 0) >= 0);
        else if (streq(method, "ImportPKCS12"))
                assert_true(sd_bus_message_append(m, "hsa{sv}", in[0], "", 0) >= 0);
        else
                assert_true(sd_bus_message_append(m, "hha{sv}", in[0], out[1], 0) >= 0);
        close(in[0]);
        close(out[1]);
        in_write = in[1];
        out_read = out[0];
        assert_int_equal(write(in_write, start, strlen(start)), (ssize_t) strlen(start));

        t0 = now_usec();
        assert_true(sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply) < 0);
        m = sd_bus_message_unref(m); /* it holds copies of our pipe ends */
        if (!streq_ptr(e.name, SMIMED_ERROR_TIMEOUT))
                fail_msg("%s failed with %s (%s), expected Timeout", method, e.name, e.message);
        assert_non_null(strstr(e.message, "IOTimeoutSec="));
        /* It took the configured second, not the default minute. */
        assert_true(now_usec() - t0 >= 1000000ULL);
        assert_true(now_usec() - t0 < 60ULL * 1000000ULL);

        /* Everything of the call is let go: both pipes' far ends, and the fd count. */
        wait_read_ends_closed(in_write);
        wait_write_ends_closed_empty(out_read);
        assert_fds(fds);
        assert_smimed_alive();
}

static void test_input_never_ends(void **state) {
        _cleanup_free_ char *config = NULL;

        (void) state;
        /* Started with the default of a minute; the reload brings it down to a second. */
        start_smimed("never-ends", NULL, NULL, NULL);
        import_anchors();
        sign_ok();
        config = write_config("never-ends", "[Policy]\nIOTimeoutSec=1\n");
        reload_ok();

        call_times_out("Sign");
        call_times_out("Verify");
        call_times_out("Decrypt");
        call_times_out("ImportPKCS12");
        sign_ok();
}

/* SIGTERM while a Decrypt's input is still coming: smimed stops the work,
 * then lets go of the call, and only then of the bus side (polkit's
 * registry, which a job's end still reaches). Under valgrind and ASan a
 * use after free makes the exit status fail. */
static void test_stop_while_decrypt_input_comes(void **state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(closep) int in_write = -1, out_read = -1;
        static const char start[] = "From: " SIGNER "\r\nSubject: never ends\r\n";
        int in[2], out[2];

        (void) state;
        start_smimed("stop-decrypt", NULL, NULL, NULL);
        small_pipe(in);
        small_pipe(out);
        assert_true(sd_bus_message_new_method_call(bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                                   SMIMED_MANAGER_INTERFACE, "Decrypt") >= 0);
        assert_true(sd_bus_message_append(m, "hha{sv}", in[0], out[1], 0) >= 0);
        close(in[0]);
        close(out[1]);
        in_write = in[1];
        out_read = out[0];
        assert_int_equal(write(in_write, start, strlen(start)), (ssize_t) strlen(start));
        assert_true(sd_bus_call_async(bus, &slot, m, NULL, NULL, CALL_TIMEOUT_USEC) >= 0);
        m = sd_bus_message_unref(m);
        /* smimed answers a connection's calls in order: once this is answered, the Decrypt reads its input. */
        assert_true(sd_bus_call_method(bus, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping",
                                       NULL, &reply, "") >= 0);

        assert_int_equal(harness_stop_smimed(harness), 0);
}

/* ---- ---- */

static int setup(void **state) {
        _cleanup_free_ char *root_pem = NULL, *signer_pem = NULL;
        const char *sans[] = { SIGNER, NULL };
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
        o.common_name = "Faults Test Root";
        o.is_ca = true;
        o.key = pki_key_ec();
        root = pki_cert_new(&o, NULL);
        EVP_PKEY_free(o.key);

        token_key = pki_public_key_from_pem_file(harness->key_pem);
        pki_cert_options_init(&o);
        o.common_name = "Signer";
        o.san_emails = sans;
        o.key = token_key;
        signer = root && token_key ? pki_cert_new(&o, root) : NULL;
        EVP_PKEY_free(token_key);
        if (!signer)
                return -EIO;

        root_pem = pki_cert_pem(root);
        signer_pem = pki_cert_pem(signer);
        if (!root_pem || !signer_pem || asprintf(&anchors_pem, "%s%s", root_pem, signer_pem) < 0)
                return -ENOMEM;
        return 0;
}

static int teardown(void **state) {
        (void) state;
        bus = sd_bus_flush_close_unref(bus);
        harness = harness_free(harness);
        root = pki_cert_free(root);
        signer = pki_cert_free(signer);
        anchors_pem = mfree(anchors_pem);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_token_storage_taken_away, stop_smimed),
                cmocka_unit_test_teardown(test_wrong_pin_is_tried_once, stop_smimed),
                cmocka_unit_test_teardown(test_store_read_only_during_import, stop_smimed),
                cmocka_unit_test_teardown(test_store_disk_full_during_import, stop_smimed),
                cmocka_unit_test_teardown(test_sigkill_during_import, stop_smimed),
                cmocka_unit_test_teardown(test_client_leaves_while_input_is_read, stop_smimed),
                cmocka_unit_test_teardown(test_client_leaves_while_signing, stop_smimed),
                cmocka_unit_test_teardown(test_client_leaves_while_decrypting, stop_smimed),
                cmocka_unit_test_teardown(test_worker_dies_while_decrypting, stop_smimed),
                cmocka_unit_test_teardown(test_client_leaves_while_generating_key, stop_smimed),
                cmocka_unit_test_teardown(test_stop_while_generating_key, stop_smimed),
                cmocka_unit_test_teardown(test_one_client_two_signs_at_once, stop_smimed),
                cmocka_unit_test_teardown(test_input_never_ends, stop_smimed),
                cmocka_unit_test_teardown(test_stop_while_decrypt_input_comes, stop_smimed),
        };

        /* SMIMED_TEST_FILTER=test_sigkill* runs some of them. */
        if (getenv("SMIMED_TEST_FILTER"))
                cmocka_set_test_filter(getenv("SMIMED_TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
