/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* worker-process: smimed's side of a smimed-worker, with the built worker
 * and no daemon or bus. A PING round trip (several on one worker), a spool
 * file and a private-key operation served by callbacks (RSA PKCS#1 v1.5,
 * PSS, ECDSA, checked with the public key), refusals answered as errors
 * without harm to the worker, and a worker that dies or hangs: killed with
 * SIGKILL or SIGSEGV while it waits on a spool call, killed by its seccomp
 * filter, over its CPU time, silent past the timeout, talking nonsense —
 * each fails its call with an errno and a sentence naming what happened,
 * the WorkerProcess is dead afterwards and a new one works. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/rsa.h>

#include "key-op.h"
#include "pki.h"
#include "sandbox.h"
#include "smime-open.h"
#include "work-requests.h"
#include "worker-ops.h"
#include "worker-process.h"
#include "worker-selftest.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

static const WorkerLimits limits = {
        .memory_max = 1024ULL << 20,
        .cpu_seconds = 30,
        .timeout_usec = 30ULL * 1000 * 1000,
};

static int setup(void **state) {
        (void) state;
        /* The worker of this build, not one installed. */
        return worker_process_set_binary(SMIMED_WORKER_BINARY);
}

static WorkerProcess *new_worker(const WorkerLimits *l) {
        WorkerProcess *w = NULL;

        assert_int_equal(worker_process_new(l ? l : &limits, &w), 0);
        assert_non_null(w);
        assert_true(worker_process_pid(w) > 0);
        return w;
}

/* Sends request; the call's result, the reply's status and message. */
static int call(WorkerProcess *w, WorkerMessage *request, const WorkerCallbacks *cb, WorkerMessage *reply,
                int *ret_error, char **ret_message) {
        _cleanup_free_ char *call_message = NULL;
        int r;

        r = worker_process_call(w, request, cb, reply, &call_message);
        if (r < 0) {
                assert_non_null(call_message);
                if (ret_message)
                        *ret_message = TAKE_PTR(call_message);
                return r;
        }
        assert_null(call_message);
        assert_int_equal(worker_reply_read_status(reply, ret_error, NULL, ret_message), 0);
        return 0;
}

static void ping(WorkerProcess *w, const char *text) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        _cleanup_free_ char *echo = NULL;
        int error = -1;

        worker_message_init(&m, WORKER_PING);
        worker_message_put_string(&m, text);
        assert_int_equal(call(w, &m, NULL, &reply, &error, NULL), 0);
        assert_int_equal(error, 0);
        assert_int_equal(worker_message_get_string(&reply, &echo), 0);
        assert_string_equal(echo, text);
        assert_int_equal(worker_message_get_end(&reply), 0);
}

static void test_ping(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        pid_t pid;

        (void) state;
        ping(w, "hello");
        ping(w, "");
        ping(w, "a request stands alone: the same worker serves the next");
        assert_true(worker_process_alive(w));

        /* Freed: killed and reaped. */
        pid = worker_process_pid(w);
        w = worker_process_free(w);
        assert_int_equal(kill(pid, 0), -1);
        assert_int_equal(errno, ESRCH);
}

/* What smimed's side knows of the worker it started. */
static void test_spawned(void **state) {
        /* Open here without O_CLOEXEC: not for the worker. */
        int leaked = open("/dev/null", O_RDONLY), n = 0;
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        char path[64], target[256];
        ssize_t k;

        (void) state;
        assert_true(leaked >= 0);
        close(leaked);
        ping(w, "up");

        for (int fd = 0; fd < 64; fd++) {
                (void) snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) worker_process_pid(w), fd);
                k = readlink(path, target, sizeof(target) - 1);
                if (k < 0) {
                        if (errno == EACCES)
                                skip(); /* not dumpable: only with CAP_SYS_PTRACE */
                        continue;
                }
                target[k] = 0;
                n++;
                if (fd == 0 || fd == 1)
                        assert_string_equal(target, "/dev/null");
                else if (fd == 3)
                        assert_non_null(strstr(target, "socket:"));
                else
                        assert_int_equal(fd, 2);
        }
        assert_int_equal(n, 4);
}

/* ---- callbacks ---- */

typedef struct Served {
        int spool_fd;           /* kept here, the worker gets a copy */
        uint64_t size_hint;
        unsigned n_spool, n_key_ops;
        int refuse;             /* answer calls with it, when < 0 */
        int kill_signal;        /* send the worker this signal from the spool call */
        unsigned sleep_msec;    /* take this long in the spool call */
        WorkerProcess *worker;
        EVP_PKEY *key;
        KeyOpRequest last;
        int choose; /* WORKER_CALL_CHOOSE_KEY: the recipient index, or an errno when < 0 */
        unsigned n_choose;
        uint32_t chosen_layer; /* the layer the call said it read */
} Served;

static int serve_spool(uint64_t size_hint, void *userdata) {
        Served *s = userdata;

        s->n_spool++;
        s->size_hint = size_hint;
        if (s->kill_signal) {
                assert_int_equal(kill(worker_process_pid(s->worker), s->kill_signal), 0);
                /* Dead before it reads the answer. */
                (void) nanosleep(&(struct timespec) { .tv_nsec = 100 * 1000 * 1000 }, NULL);
        }
        if (s->sleep_msec)
                (void) nanosleep(&(struct timespec) { .tv_sec = s->sleep_msec / 1000,
                                                      .tv_nsec = (long) (s->sleep_msec % 1000) * 1000000 },
                                 NULL);
        if (s->refuse < 0)
                return s->refuse;
        if (s->spool_fd < 0)
                s->spool_fd = memfd_create("spool", MFD_CLOEXEC);
        return s->spool_fd;
}

static int serve_key_op(const KeyOpRequest *request, uint8_t **ret, size_t *ret_size, void *userdata) {
        Served *s = userdata;

        s->n_key_ops++;
        s->last.kind = request->kind;
        s->last.padding = request->padding;
        s->last.saltlen = request->saltlen;
        if (s->refuse < 0)
                return s->refuse;
        return key_op_perform(s->key, request, ret, ret_size);
}

static int serve_choose_key(WorkerMessage *call, uint32_t *ret_index, uint64_t *ret_size_hint, void *userdata) {
        Served *s = userdata;

        s->n_choose++;
        assert_int_equal(worker_message_get_u32(call, &s->chosen_layer), 0);
        if (s->choose < 0)
                return s->choose;
        *ret_index = (uint32_t) s->choose;
        *ret_size_hint = 4096;
        return 0;
}

static WorkerCallbacks callbacks(Served *s) {
        return (WorkerCallbacks){
                .key_op = serve_key_op,
                .spool = serve_spool,
                .choose_key = serve_choose_key,
                .userdata = s,
        };
}

static void spool_request(WorkerMessage *m, const char *text) {
        worker_message_init(m, WORKER_SELFTEST_SPOOL);
        worker_message_put_u64(m, 4096);
        worker_message_put_string(m, text);
}

static void test_spool(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        Served s = { .spool_fd = -1 };
        WorkerCallbacks cb = callbacks(&s);
        char buf[64] = {};
        uint64_t written;
        int error = -1;

        (void) state;
        spool_request(&m, "spooled by the worker");
        assert_int_equal(call(w, &m, &cb, &reply, &error, NULL), 0);
        assert_int_equal(error, 0);
        assert_int_equal(worker_message_get_u64(&reply, &written), 0);
        assert_int_equal(written, 21);
        assert_int_equal(s.n_spool, 1);
        assert_int_equal(s.size_hint, 4096);
        assert_int_equal(pread(s.spool_fd, buf, sizeof(buf), 0), 21);
        assert_string_equal(buf, "spooled by the worker");
        close(s.spool_fd);
        assert_true(worker_process_alive(w));
}

/* No spool file: the worker's request fails, the worker lives on. */
static void test_spool_refused(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        _cleanup_free_ char *message = NULL;
        Served s = { .spool_fd = -1, .refuse = -ENOSPC };
        WorkerCallbacks cb = callbacks(&s), none = {};
        int error = 0;

        (void) state;
        spool_request(&m, "x");
        assert_int_equal(call(w, &m, &cb, &reply, &error, &message), 0);
        assert_int_equal(error, -ENOSPC);
        assert_non_null(message);
        assert_true(worker_process_alive(w));

        /* No callback at all: refused too. */
        worker_message_done(&reply);
        message = mfree(message);
        assert_int_equal(call(w, &m, &none, &reply, &error, &message), 0);
        assert_int_equal(error, -EPERM);
        ping(w, "still here");
}

/* A digest signed by the worker's remote key, the private operation made
 * by the callback; checked with the certificate's public key. */
static void sign_through_worker(WorkerProcess *w, PkiCert *cert, int padding, const EVP_MD *md) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *signature = NULL;
        Served s = { .spool_fd = -1, .key = cert->key };
        WorkerCallbacks cb = callbacks(&s);
        uint8_t digest[64];
        size_t n, size = (size_t) EVP_MD_get_size(md);
        int error = -1;

        for (size_t i = 0; i < size; i++)
                digest[i] = (uint8_t) (i * 3 + 1);
        worker_message_init(&m, WORKER_SELFTEST_SIGN);
        worker_message_put_x509(&m, cert->x509);
        worker_message_put_string(&m, EVP_MD_get0_name(md));
        worker_message_put_i32(&m, padding);
        worker_message_put_blob(&m, digest, size);
        assert_int_equal(call(w, &m, &cb, &reply, &error, NULL), 0);
        assert_int_equal(error, 0);
        assert_int_equal(worker_message_get_blob(&reply, &signature, &n), 0);
        assert_int_equal(s.n_key_ops, 1);
        assert_int_equal(s.last.kind, KEY_OP_SIGN);
        assert_int_equal(s.last.padding, padding);

        ctx = EVP_PKEY_CTX_new(X509_get0_pubkey(cert->x509), NULL);
        assert_non_null(ctx);
        assert_true(EVP_PKEY_verify_init(ctx) > 0);
        assert_true(EVP_PKEY_CTX_set_signature_md(ctx, md) > 0);
        if (padding) {
                assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, padding) > 0);
                if (padding == RSA_PKCS1_PSS_PADDING)
                        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0);
        }
        assert_int_equal(EVP_PKEY_verify(ctx, signature, n, digest, size), 1);
        digest[0] ^= 1;
        assert_int_equal(EVP_PKEY_verify(ctx, signature, n, digest, size), 0);
}

static PkiCert *leaf(PkiCert *ca, EVP_PKEY *key) {
        PkiCertOptions o;
        PkiCert *c;

        pki_cert_options_init(&o);
        o.email = "worker@example.com";
        o.key = key;
        c = pki_cert_new(&o, ca);
        assert_non_null(c);
        return c;
}

static void test_key_op(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(pki_cert_freep) PkiCert *ca = pki_root_ca("Worker Test CA"), *rsa = NULL, *ec = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa_key = pki_key_rsa(2048), *ec_key = pki_key_ec();

        (void) state;
        assert_non_null(ca);
        rsa = leaf(ca, rsa_key);
        ec = leaf(ca, ec_key);
        sign_through_worker(w, rsa, RSA_PKCS1_PADDING, EVP_sha256());
        sign_through_worker(w, rsa, RSA_PKCS1_PSS_PADDING, EVP_sha384());
        sign_through_worker(w, ec, 0, EVP_sha256());
        assert_true(worker_process_alive(w));
}

/* A refused key operation is an answer, not a crash. */
static void test_key_op_refused(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(pki_cert_freep) PkiCert *ca = pki_root_ca("Worker Test CA"), *rsa = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa_key = pki_key_rsa(2048);
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        _cleanup_free_ char *message = NULL;
        Served s = { .spool_fd = -1, .refuse = -EPERM };
        WorkerCallbacks cb = callbacks(&s);
        uint8_t digest[32] = {};
        int error = 0;

        (void) state;
        rsa = leaf(ca, rsa_key);
        worker_message_init(&m, WORKER_SELFTEST_SIGN);
        worker_message_put_x509(&m, rsa->x509);
        worker_message_put_string(&m, "SHA256");
        worker_message_put_i32(&m, RSA_PKCS1_PADDING);
        worker_message_put_blob(&m, digest, sizeof(digest));
        assert_int_equal(call(w, &m, &cb, &reply, &error, &message), 0);
        assert_true(error < 0);
        assert_non_null(message);
        assert_int_equal(s.n_key_ops, 1);
        assert_true(worker_process_alive(w));
        ping(w, "after a refusal");
}

/* ---- deaths ---- */

/* Runs request on w and expects it to fail with error and a message
 * containing each of the words; w is dead afterwards and its process gone. */
static void expect_failure(WorkerProcess *w, WorkerMessage *request, Served *s, int error, const char *word1,
                           const char *word2) {
        _cleanup_(worker_message_done) WorkerMessage reply = {};
        _cleanup_free_ char *message = NULL;
        WorkerCallbacks cb = callbacks(s);
        pid_t pid = worker_process_pid(w);
        int status = 0, r;

        r = call(w, request, &cb, &reply, &status, &message);
        if (r != error || (word1 && !strstr(message, word1)) || (word2 && !strstr(message, word2)))
                print_error("expected %d with \"%s\", \"%s\"; got %d: %s\n", error, strempty(word1), strempty(word2),
                            r, strempty(message));
        assert_int_equal(r, error);
        assert_false(worker_process_alive(w));
        assert_int_equal(kill(pid, 0), -1); /* reaped */

        /* The next call fails at once. */
        message = mfree(message);
        assert_int_equal(worker_process_call(w, request, &cb, &reply, &message), -ECHILD);
        assert_non_null(message);
}

static void misbehave_request(WorkerMessage *m, SelftestMisbehaviour what) {
        worker_message_init(m, WORKER_SELFTEST_MISBEHAVE);
        worker_message_put_u32(m, what);
}

static void test_killed_while_waiting_on_spool(void **state) {
        static const struct {
                int signal;
                const char *name;
        } signals[] = { { SIGKILL, "SIGKILL" }, { SIGSEGV, "SIGSEGV" } };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL), *next = NULL;
                _cleanup_(worker_message_done) WorkerMessage m = {};
                Served s = { .spool_fd = -1, .kill_signal = signals[i].signal, .worker = w };

                spool_request(&m, "never written");
                /* AddressSanitizer catches SIGSEGV and exits with 1 instead. */
                if (signals[i].signal == SIGSEGV && sandbox_under_asan())
                        expect_failure(w, &m, &s, -ECHILD, "worker process", NULL);
                else
                        expect_failure(w, &m, &s, -ECHILD, "was killed by signal", signals[i].name);
                assert_int_equal(s.n_spool, 1);
                if (s.spool_fd >= 0)
                        close(s.spool_fd);

                /* Its replacement works. */
                next = new_worker(NULL);
                ping(next, "the next one");
        }
}

static void test_seccomp_kill(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(worker_message_done) WorkerMessage m = {};
        Served s = { .spool_fd = -1 };

        (void) state;
        misbehave_request(&m, SELFTEST_EXECVE);
        expect_failure(w, &m, &s, -ECHILD, "killed by signal SIGSYS", "sandbox forbids");
}

static void test_crash(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(worker_message_done) WorkerMessage m = {};
        Served s = { .spool_fd = -1 };

        (void) state;
        misbehave_request(&m, SELFTEST_CRASH);
        expect_failure(w, &m, &s, -ECHILD, sandbox_under_asan() ? "worker process" : "killed by signal SIGSEGV",
                       NULL);
}

static void test_cpu_limit(void **state) {
        WorkerLimits one_second = limits;
        _cleanup_(worker_process_freep) WorkerProcess *w = NULL;
        _cleanup_(worker_message_done) WorkerMessage m = {};
        Served s = { .spool_fd = -1 };

        (void) state;
        one_second.cpu_seconds = 1;
        w = new_worker(&one_second);
        ping(w, "a short job is fine");
        misbehave_request(&m, SELFTEST_SPIN);
        expect_failure(w, &m, &s, -ECHILD, "killed by signal SIGXCPU", "CPU time");
}

static void test_timeout(void **state) {
        WorkerLimits short_timeout = limits;
        _cleanup_(worker_process_freep) WorkerProcess *w = NULL;
        _cleanup_(worker_message_done) WorkerMessage m = {};
        Served s = { .spool_fd = -1 };
        uint64_t start;
        int p[2];

        (void) state;
        short_timeout.timeout_usec = 300 * 1000;
        w = new_worker(&short_timeout);
        /* It reads a pipe that never gets data. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        misbehave_request(&m, SELFTEST_HANG);
        assert_int_equal(worker_message_put_fd(&m, p[0]), 0);
        start = worker_now_usec();
        expect_failure(w, &m, &s, -ETIME, "did not finish within 0.3 s", "stopped");
        /* The request's copy of the fd was closed once it was sent. */
        assert_int_equal(m.fds[0], -1);
        assert_true(worker_now_usec() - start >= 300 * 1000);
        assert_true(worker_now_usec() - start < 5 * 1000 * 1000);
        close(p[0]);
        close(p[1]);
}

/* The time smimed's callbacks take (a slow token) does not count. */
static void test_timeout_excludes_callbacks(void **state) {
        WorkerLimits short_timeout = limits;
        _cleanup_(worker_process_freep) WorkerProcess *w = NULL;
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {};
        Served s = { .spool_fd = -1, .sleep_msec = 800 };
        WorkerCallbacks cb = callbacks(&s);
        int error = -1;

        (void) state;
        short_timeout.timeout_usec = 500 * 1000;
        w = new_worker(&short_timeout);
        spool_request(&m, "slowly");
        assert_int_equal(call(w, &m, &cb, &reply, &error, NULL), 0);
        assert_int_equal(error, 0);
        assert_true(worker_process_alive(w));
        close(s.spool_fd);
}

static void test_protocol_violation(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(worker_message_done) WorkerMessage m = {};
        Served s = { .spool_fd = -1 };

        (void) state;
        misbehave_request(&m, SELFTEST_GARBAGE);
        expect_failure(w, &m, &s, -EPROTO, "does not expect", "stopped");
}

static void test_unknown_request(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(worker_message_done) WorkerMessage m = {}, reply = {}, bad = {};
        _cleanup_free_ char *message = NULL;
        int error = 0;

        (void) state;
        worker_message_init(&m, 4711);
        assert_int_equal(call(w, &m, NULL, &reply, &error, &message), 0);
        assert_int_equal(error, -EOPNOTSUPP);
        assert_non_null(strstr(message, "4711"));

        /* A request whose put failed is not sent; the worker is fine. */
        worker_message_init(&bad, WORKER_PING);
        worker_message_put_blob(&bad, NULL, 1);
        assert_int_equal(worker_process_call(w, &bad, NULL, &reply, NULL), -EINVAL);
        assert_true(worker_process_alive(w));
        ping(w, "fine");
}

/* ---- WORK_OPEN_LAYER of an enveloped message: the key chosen at once ---- */

#define SECRET "Content-Type: text/plain\r\n\r\nOnly for the recipient.\r\n"

/* An S/MIME message encrypted to to, in a memfd. */
static int enveloped_message(X509 *to) {
        _cleanup_(BIO_freep) BIO *in = BIO_new_mem_buf(SECRET, -1), *out = BIO_new(BIO_s_mem());
        STACK_OF(X509) *recipients = sk_X509_new_null();
        CMS_ContentInfo *cms;
        const char *header = "From: sender@example.com\r\nSubject: at once\r\n";
        char *data;
        long n;
        int fd = memfd_create("enveloped", MFD_CLOEXEC);

        assert_true(fd >= 0 && in && out && recipients && sk_X509_push(recipients, to) > 0);
        cms = CMS_encrypt(recipients, in, EVP_aes_256_cbc(), CMS_BINARY);
        assert_non_null(cms);
        assert_int_equal(SMIME_write_CMS(out, cms, NULL, CMS_BINARY), 1);
        n = BIO_get_mem_data(out, &data);
        assert_int_equal(write(fd, header, strlen(header)), (ssize_t) strlen(header));
        assert_int_equal(write(fd, data, (size_t) n), (ssize_t) n);
        CMS_ContentInfo_free(cms);
        sk_X509_free(recipients);
        return fd;
}

/* WORK_OPEN_LAYER of message with recipients (the second is the one the
 * message is for), as smimed's worker thread sends it. */
static int open_layer(WorkerProcess *w, int message, STACK_OF(X509) * recipients, Served *s, WorkerMessage *reply,
                      int *ret_error) {
        _cleanup_(worker_message_done) WorkerMessage m = {};
        WorkerCallbacks cb = callbacks(s);

        worker_message_init(&m, WORK_OPEN_LAYER);
        worker_message_put_bool(&m, true); /* verify */
        worker_message_put_bool(&m, true); /* decrypt */
        worker_message_put_u32(&m, 0);     /* depth */
        worker_message_put_x509(&m, NULL); /* stored signer */
        worker_message_put_x509_stack(&m, recipients);
        assert_int_equal(worker_message_put_fd(&m, message), 0);
        return call(w, &m, &cb, reply, ret_error, NULL);
}

static void test_open_layer_chooses_key(void **state) {
        _cleanup_(worker_process_freep) WorkerProcess *w = new_worker(NULL);
        _cleanup_(pki_cert_freep) PkiCert *ca = pki_root_ca("Worker Test CA"), *other = NULL, *mine = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other_key = pki_key_rsa(2048), *my_key = pki_key_rsa(2048);
        _cleanup_(closep) int message = -1;
        STACK_OF(X509) *recipients = sk_X509_new_null();
        char text[256] = {};
        int error = -1;

        (void) state;
        other = leaf(ca, other_key);
        mine = leaf(ca, my_key);
        assert_true(recipients && sk_X509_push(recipients, other->x509) > 0 &&
                    sk_X509_push(recipients, mine->x509) > 0);
        message = enveloped_message(mine->x509);

        /* smimed decides later: the answer went with the call, no key was used. */
        {
                _cleanup_(worker_message_done) WorkerMessage reply = {};
                Served s = {.spool_fd = -1, .key = my_key, .choose = -ENOKEY};
                uint32_t answer = UINT32_MAX;

                assert_int_equal(open_layer(w, message, recipients, &s, &reply, &error), 0);
                assert_int_equal(error, 0);
                assert_int_equal(s.n_choose, 1);
                assert_int_equal(s.chosen_layer, SMIME_LAYER_ENVELOPED);
                assert_int_equal(s.n_key_ops, 0);
                assert_int_equal(worker_message_get_u32(&reply, &answer), 0);
                assert_int_equal(answer, WORK_OPEN_ANSWERED_IN_CALL);
                assert_int_equal(worker_message_get_end(&reply), 0);
        }

        /* smimed picks the second recipient: the worker decrypts in the same request. */
        {
                _cleanup_(worker_message_done) WorkerMessage reply = {};
                _cleanup_free_ char *sha256 = NULL;
                _cleanup_(closep) int content = -1;
                Served s = {.spool_fd = -1, .key = my_key, .choose = 1};
                uint32_t answer = UINT32_MAX;
                int32_t layer_error = -1;

                assert_int_equal(open_layer(w, message, recipients, &s, &reply, &error), 0);
                assert_int_equal(error, 0);
                assert_int_equal(s.n_choose, 1);
                assert_int_equal(s.n_key_ops, 1);
                assert_int_equal(s.last.kind, KEY_OP_DECRYPT);
                assert_int_equal(worker_message_get_u32(&reply, &answer), 0);
                assert_int_equal(answer, WORK_OPEN_DECRYPTED);
                assert_int_equal(worker_message_get_string(&reply, &sha256), 0);
                assert_int_equal(strlen(sha256), 64);
                content = worker_message_take_fd(&reply, 0);
                assert_true(content >= 0);
                assert_true(pread(content, text, sizeof(text) - 1, 0) > 0);
                assert_non_null(strstr(text, "Only for the recipient."));
                assert_int_equal(worker_message_get_i32(&reply, &layer_error), 0);
                assert_int_equal(layer_error, 0);
        }

        /* The key of the first recipient, which the message is not for: decryption fails as such. */
        {
                _cleanup_(worker_message_done) WorkerMessage reply = {};
                Served s = {.spool_fd = -1, .key = other_key, .choose = 0};

                assert_int_equal(open_layer(w, message, recipients, &s, &reply, &error), 0);
                assert_true(error < 0);
                assert_int_equal(s.n_choose, 1);
                assert_true(worker_process_alive(w));
        }

        /* A call smimed cannot make sense of stops the worker; so does an index out of range. */
        {
                _cleanup_(worker_message_done) WorkerMessage reply = {};
                _cleanup_free_ char *message_text = NULL;
                Served s = {.spool_fd = -1, .key = my_key, .choose = -EPROTO};
                WorkerCallbacks cb = callbacks(&s);
                _cleanup_(worker_message_done) WorkerMessage m = {};

                worker_message_init(&m, WORK_OPEN_LAYER);
                worker_message_put_bool(&m, true);
                worker_message_put_bool(&m, true);
                worker_message_put_u32(&m, 0);
                worker_message_put_x509(&m, NULL);
                worker_message_put_x509_stack(&m, recipients);
                assert_int_equal(worker_message_put_fd(&m, message), 0);
                assert_int_equal(call(w, &m, &cb, &reply, &error, &message_text), -EPROTO);
                assert_non_null(strstr(message_text, "does not expect"));
                assert_false(worker_process_alive(w));
        }
        {
                _cleanup_(worker_process_freep) WorkerProcess *again = new_worker(NULL);
                _cleanup_(worker_message_done) WorkerMessage reply = {};
                Served s = {.spool_fd = -1, .key = my_key, .choose = 2};

                assert_int_equal(open_layer(again, message, recipients, &s, &reply, &error), 0);
                /* The worker refuses an index beyond the recipients: its request fails, it lives on. */
                assert_true(error < 0);
                assert_int_equal(s.n_key_ops, 0);
                assert_true(worker_process_alive(again));
        }
        sk_X509_free(recipients);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ping),
                cmocka_unit_test(test_spawned),
                cmocka_unit_test(test_spool),
                cmocka_unit_test(test_spool_refused),
                cmocka_unit_test(test_key_op),
                cmocka_unit_test(test_key_op_refused),
                cmocka_unit_test(test_killed_while_waiting_on_spool),
                cmocka_unit_test(test_seccomp_kill),
                cmocka_unit_test(test_crash),
                cmocka_unit_test(test_cpu_limit),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_timeout_excludes_callbacks),
                cmocka_unit_test(test_protocol_violation),
                cmocka_unit_test(test_unknown_request),
                cmocka_unit_test(test_open_layer_chooses_key),
        };

        return cmocka_run_group_tests(tests, setup, NULL);
}
