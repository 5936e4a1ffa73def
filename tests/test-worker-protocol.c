/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* worker-protocol: the frames smimed and smimed-worker exchange. Every field
 * type round trips (NULLs too) across a real socketpair, fds arrive and read
 * what was written, a field read as another type, truncated or garbage
 * frames and unexpected fds are refused with -EBADMSG, a peer that closes
 * gives -ECONNRESET / -EPIPE, a deadline gives -ETIME. In this process. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "key-op.h"
#include "pki.h"
#include "strv.h"
#include "worker-protocol.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);

static void socket_pair(int s[2]) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
}

/* Sends m from one end and receives it at the other. */
static void pass(WorkerMessage *m, WorkerMessage *ret) {
        int s[2];

        socket_pair(s);
        assert_int_equal(worker_message_send(s[0], m), 0);
        assert_int_equal(worker_message_receive(s[1], ret), 0);
        close(s[0]);
        close(s[1]);
}

static void test_every_type(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, r = {};
        _cleanup_(pki_cert_freep) PkiCert *a = pki_root_ca("Protocol A"), *b = pki_root_ca("Protocol B");
        _cleanup_(X509_freep) X509 *x = NULL, *none = NULL;
        _cleanup_(strv_freep) char **l = NULL, **empty = NULL;
        _cleanup_free_ char *s = NULL, *null_s = NULL, *empty_s = NULL;
        _cleanup_free_ uint8_t *blob = NULL, *no_blob = NULL;
        STACK_OF(X509) *stack = sk_X509_new_null(), *got = NULL, *null_stack = (STACK_OF(X509) *) 1;
        char *list[] = { (char *) "alice@example.com", (char *) "", (char *) "bob@example.com", NULL };
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        size_t n = 99;
        bool yes, no;

        (void) state;
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(stack);
        assert_true(sk_X509_push(stack, a->x509) > 0);
        assert_true(sk_X509_push(stack, b->x509) > 0);

        worker_message_init(&m, 4242);
        worker_message_put_u32(&m, 0xdeadbeef);
        worker_message_put_i32(&m, -EPERM);
        worker_message_put_u64(&m, UINT64_MAX - 1);
        worker_message_put_bool(&m, true);
        worker_message_put_bool(&m, false);
        worker_message_put_string(&m, "héllo");
        worker_message_put_string(&m, NULL);
        worker_message_put_string(&m, "");
        worker_message_put_blob(&m, "\0\1\2", 3);
        worker_message_put_blob(&m, NULL, 0);
        worker_message_put_strv(&m, list);
        worker_message_put_strv(&m, NULL);
        worker_message_put_x509(&m, a->x509);
        worker_message_put_x509(&m, NULL);
        worker_message_put_x509_stack(&m, stack);
        worker_message_put_x509_stack(&m, NULL);
        assert_int_equal(m.error, 0);
        pass(&m, &r);

        assert_int_equal(r.type, 4242);
        assert_int_equal(worker_message_get_u32(&r, &u32), 0);
        assert_int_equal(u32, 0xdeadbeef);
        assert_int_equal(worker_message_get_i32(&r, &i32), 0);
        assert_int_equal(i32, -EPERM);
        assert_int_equal(worker_message_get_u64(&r, &u64), 0);
        assert_true(u64 == UINT64_MAX - 1);
        assert_int_equal(worker_message_get_bool(&r, &yes), 0);
        assert_int_equal(worker_message_get_bool(&r, &no), 0);
        assert_true(yes);
        assert_false(no);
        assert_int_equal(worker_message_get_string(&r, &s), 0);
        assert_string_equal(s, "héllo");
        assert_int_equal(worker_message_get_string(&r, &null_s), 0);
        assert_null(null_s);
        assert_int_equal(worker_message_get_string(&r, &empty_s), 0);
        assert_string_equal(empty_s, "");
        assert_int_equal(worker_message_get_blob(&r, &blob, &n), 0);
        assert_int_equal(n, 3);
        assert_memory_equal(blob, "\0\1\2", 3);
        assert_int_equal(worker_message_get_blob(&r, &no_blob, &n), 0);
        assert_int_equal(n, 0);
        assert_null(no_blob);
        assert_int_equal(worker_message_get_strv(&r, &l), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "alice@example.com");
        assert_string_equal(l[1], "");
        assert_string_equal(l[2], "bob@example.com");
        assert_int_equal(worker_message_get_strv(&r, &empty), 0);
        assert_non_null(empty);
        assert_int_equal(strv_length(empty), 0);
        assert_int_equal(worker_message_get_x509(&r, &x), 0);
        assert_int_equal(X509_cmp(x, a->x509), 0);
        assert_int_equal(worker_message_get_x509(&r, &none), 0);
        assert_null(none);
        assert_int_equal(worker_message_get_x509_stack(&r, &got), 0);
        assert_int_equal(sk_X509_num(got), 2);
        assert_int_equal(X509_cmp(sk_X509_value(got, 0), a->x509), 0);
        assert_int_equal(X509_cmp(sk_X509_value(got, 1), b->x509), 0);
        assert_int_equal(worker_message_get_x509_stack(&r, &null_stack), 0);
        assert_null(null_stack);
        assert_int_equal(worker_message_get_end(&r), 0);

        /* Past the end. */
        assert_int_equal(worker_message_get_u32(&r, &u32), -EBADMSG);

        sk_X509_pop_free(got, X509_free);
        sk_X509_free(stack);
}

static void test_empty_message(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, r = {};
        uint32_t u;

        (void) state;
        worker_message_init(&m, 7);
        pass(&m, &r);
        assert_int_equal(r.type, 7);
        assert_int_equal(r.size, 0);
        assert_int_equal(r.n_fds, 0);
        assert_int_equal(worker_message_get_end(&r), 0);
        assert_int_equal(worker_message_get_u32(&r, &u), -EBADMSG);
}

/* A field read as another type fails, and every read after it. */
static void test_wrong_type_sticky(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, r = {};
        _cleanup_free_ char *s = NULL;
        uint64_t u64;
        uint32_t u32;

        (void) state;
        worker_message_init(&m, 1);
        worker_message_put_u32(&m, 1);
        worker_message_put_string(&m, "x");
        pass(&m, &r);
        assert_int_equal(worker_message_get_u64(&r, &u64), -EBADMSG);
        assert_int_equal(r.error, -EBADMSG);
        assert_int_equal(worker_message_get_u32(&r, &u32), -EBADMSG);
        assert_int_equal(worker_message_get_string(&r, &s), -EBADMSG);
        assert_null(s);
}

/* Payloads that lie about their contents. */
static void test_bad_payloads(void **state) {
        static const struct {
                const uint8_t *bytes;
                size_t size;
        } cases[] = {
                { (const uint8_t *) "s\x05\0\0\0ab", 7 },        /* string longer than the payload */
                { (const uint8_t *) "s\x03\0\0\0a\0", 7 },       /* a NUL inside */
                { (const uint8_t *) "b\x02", 2 },                /* a bool of 2 */
                { (const uint8_t *) "v\xff\xff\xff\x0f", 5 },    /* 268 million strings in 0 bytes */
                { (const uint8_t *) "x\x03\0\0\0abc", 8 },       /* not DER */
                { (const uint8_t *) "u\1\2", 3 },                /* a u32 of 2 bytes */
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                WorkerMessage m = {};
                char *s = NULL, **l = NULL;
                X509 *x = NULL;
                bool b;
                uint32_t u;
                int r;

                worker_message_init(&m, 1);
                m.data = malloc(cases[i].size);
                assert_non_null(m.data);
                memcpy(m.data, cases[i].bytes, cases[i].size);
                m.size = m.allocated = cases[i].size;
                switch (cases[i].bytes[0]) {
                case 's':
                        r = worker_message_get_string(&m, &s);
                        break;
                case 'b':
                        r = worker_message_get_bool(&m, &b);
                        break;
                case 'v':
                        r = worker_message_get_strv(&m, &l);
                        break;
                case 'x':
                        r = worker_message_get_x509(&m, &x);
                        break;
                default:
                        r = worker_message_get_u32(&m, &u);
                }
                assert_int_equal(r, -EBADMSG);
                assert_null(s);
                assert_null(l);
                assert_null(x);
                worker_message_done(&m);
        }
}

static void test_put_errors(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {};
        int s[2];

        (void) state;
        worker_message_init(&m, 1);
        worker_message_put_blob(&m, NULL, 5);
        assert_int_equal(m.error, -EINVAL);
        worker_message_put_u32(&m, 1); /* ignored */
        assert_int_equal(m.error, -EINVAL);

        socket_pair(s);
        assert_int_equal(worker_message_send(s[0], &m), -EINVAL);
        close(s[0]);
        close(s[1]);

        worker_message_done(&m);
        worker_message_init(&m, 1);
        assert_int_equal(worker_message_put_fd(&m, -1), -EBADF);
        assert_int_equal(m.error, -EBADF);

        worker_message_done(&m);
        worker_message_init(&m, 1);
        for (unsigned i = 0; i < WORKER_FDS_MAX; i++)
                assert_int_equal(worker_message_put_fd(&m, STDIN_FILENO), (int) i);
        assert_int_equal(worker_message_put_fd(&m, STDIN_FILENO), -E2BIG);
}

static int memfd_with(const char *text) {
        int fd = memfd_create("test", MFD_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        return fd;
}

static void test_fds(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, r = {};
        _cleanup_(closep) int a = memfd_with("first"), b = memfd_with("second"), ra = -1, rb = -1;
        char buf[16] = {};
        uint32_t u;

        (void) state;
        worker_message_init(&m, 3);
        assert_int_equal(worker_message_put_fd(&m, a), 0);
        worker_message_put_u32(&m, 77);
        assert_int_equal(worker_message_put_fd(&m, b), 1);
        /* m holds duplicates: closing ours changes nothing. */
        assert_int_equal(close(TAKE_FD(a)), 0);
        pass(&m, &r);
        /* The sender keeps its fds until done. */
        assert_true(fcntl(m.fds[0], F_GETFD) >= 0);

        assert_int_equal(r.n_fds, 2);
        assert_int_equal(worker_message_get_u32(&r, &u), 0);
        assert_int_equal(u, 77);
        ra = worker_message_take_fd(&r, 0);
        rb = worker_message_take_fd(&r, 1);
        assert_true(ra >= 0 && rb >= 0);
        assert_int_equal(worker_message_take_fd(&r, 0), -EBADF);
        assert_int_equal(worker_message_take_fd(&r, 2), -EBADF);
        assert_true(fcntl(ra, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(pread(ra, buf, sizeof(buf), 0), 5);
        assert_string_equal(buf, "first");
        memset(buf, 0, sizeof(buf));
        assert_int_equal(pread(rb, buf, sizeof(buf), 0), 6);
        assert_string_equal(buf, "second");
        /* The same open file: what the receiver writes, the sender reads. */
        assert_int_equal(pwrite(rb, "SECOND", 6, 0), 6);
        assert_int_equal(pread(b, buf, 6, 0), 6);
        assert_memory_equal(buf, "SECOND", 6);
}

/* Fds the receiver did not take are closed with the message. */
static void test_untaken_fds_closed(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {};
        WorkerMessage r = {};
        int p[2], fd;
        char c;

        (void) state;
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        worker_message_init(&m, 3);
        assert_int_equal(worker_message_put_fd(&m, p[1]), 0);
        close(p[1]);
        pass(&m, &r);
        fd = r.fds[0];
        assert_true(fd >= 0);
        worker_message_done(&m);
        worker_message_done(&r);
        /* Every write end is closed now: EOF. */
        assert_int_equal(read(p[0], &c, 1), 0);
        close(p[0]);
}

static void test_reply_status(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, r = {};
        _cleanup_free_ char *message = NULL, *extra = NULL;
        SmimedError code;
        int error;

        (void) state;
        worker_message_init(&m, 55);
        worker_message_put_u32(&m, 1);
        /* Re-initialization discards what was there. */
        worker_reply_init(&m, -EBADMSG, SMIMED_ERR_INVALID_MESSAGE, "Broken.");
        worker_message_put_string(&m, "extra");
        pass(&m, &r);
        assert_int_equal(r.type, WORKER_REPLY);
        assert_int_equal(worker_reply_read_status(&r, &error, &code, &message), 0);
        assert_int_equal(error, -EBADMSG);
        assert_int_equal(code, SMIMED_ERR_INVALID_MESSAGE);
        assert_string_equal(message, "Broken.");
        assert_int_equal(worker_message_get_string(&r, &extra), 0);
        assert_string_equal(extra, "extra");

        worker_message_done(&m);
        worker_message_done(&r);
        worker_reply_init(&m, 0, 0, NULL);
        pass(&m, &r);
        code = SMIMED_ERR_TIMEOUT;
        assert_int_equal(worker_reply_read_status(&r, &error, &code, NULL), 0);
        assert_int_equal(error, 0);
        assert_int_equal(code, 0);

        /* The last of the codes comes through; one the daemon does not know (a
         * worker is not trusted) is no code at all, and the message still reads. */
        worker_message_done(&m);
        worker_message_done(&r);
        worker_reply_init(&m, -ECHILD, _SMIMED_ERROR_MAX - 1, NULL);
        pass(&m, &r);
        assert_int_equal(worker_reply_read_status(&r, &error, &code, NULL), 0);
        assert_int_equal(code, _SMIMED_ERROR_MAX - 1);
        static const int32_t unknown[] = {_SMIMED_ERROR_MAX, -1, INT32_MIN, INT32_MAX};
        for (size_t i = 0; i < ELEMENTSOF(unknown); i++) {
                worker_message_done(&m);
                worker_message_done(&r);
                worker_message_init(&m, WORKER_REPLY);
                worker_message_put_i32(&m, -EIO);
                worker_message_put_i32(&m, unknown[i]);
                worker_message_put_string(&m, "Odd.");
                pass(&m, &r);
                code = SMIMED_ERR_TIMEOUT;
                message = mfree(message);
                assert_int_equal(worker_reply_read_status(&r, &error, &code, &message), 0);
                assert_int_equal(error, -EIO);
                assert_int_equal(code, 0);
                assert_string_equal(message, "Odd.");
        }

        /* The name string the status used to carry is not an error code. */
        worker_message_done(&m);
        worker_message_done(&r);
        worker_message_init(&m, WORKER_REPLY);
        worker_message_put_i32(&m, -EBADMSG);
        worker_message_put_string(&m, "org.smimed1.Error.InvalidMessage");
        worker_message_put_string(&m, "Broken.");
        pass(&m, &r);
        assert_int_equal(worker_reply_read_status(&r, &error, &code, NULL), -EBADMSG);

        /* Not a reply. */
        worker_message_done(&m);
        worker_message_done(&r);
        worker_message_init(&m, WORKER_CALL_RESULT);
        worker_message_put_i32(&m, 0);
        pass(&m, &r);
        assert_int_equal(worker_reply_read_status(&r, &error, NULL, NULL), -EBADMSG);
}

static void test_key_op_request(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, r = {};
        _cleanup_(key_op_request_done) KeyOpRequest got = {};
        uint8_t digest[32] = { 1, 2, 3 }, label[] = "label";
        KeyOpRequest req = {
                .kind = KEY_OP_DECRYPT,
                .padding = 4, /* RSA_PKCS1_OAEP_PADDING */
                .md = (char *) "SHA256",
                .mgf1_md = (char *) "SHA384",
                .label = label,
                .label_size = 5,
                .data = digest,
                .size = sizeof(digest),
        };

        (void) state;
        worker_message_init(&m, WORKER_CALL_KEY_OP);
        key_op_request_put(&m, &req);
        pass(&m, &r);
        assert_int_equal(key_op_request_get(&r, &got), 0);
        assert_int_equal(got.kind, KEY_OP_DECRYPT);
        assert_int_equal(got.padding, 4);
        assert_string_equal(got.md, "SHA256");
        assert_string_equal(got.mgf1_md, "SHA384");
        assert_int_equal(got.label_size, 5);
        assert_memory_equal(got.label, "label", 5);
        assert_int_equal(got.size, 32);
        assert_memory_equal(got.data, digest, 32);

        /* Shapes no request has. */
        static const KeyOpRequest bad[] = {
                { .kind = 7, .data = (uint8_t *) "x", .size = 1 },
                { .kind = KEY_OP_DECRYPT, .padding = 3 /* RSA_NO_PADDING */, .data = (uint8_t *) "x", .size = 1 },
                { .kind = KEY_OP_SIGN, .padding = 1, .md = (char *) "no-such-digest", .data = (uint8_t *) "x", .size = 1 },
                { .kind = KEY_OP_SIGN, .padding = 1, .saltlen = 20, .data = (uint8_t *) "x", .size = 1 },
                { .kind = KEY_OP_SIGN, .padding = 6, .saltlen = -1, .data = (uint8_t *) "x", .size = 1 },
                { .kind = KEY_OP_DECRYPT, .padding = 1, .label = (uint8_t *) "l", .label_size = 1, .data = (uint8_t *) "x", .size = 1 },
                { .kind = KEY_OP_SIGN, .padding = 1, .md = (char *) "SHA256" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(worker_message_done) WorkerMessage bm = {}, br = {};
                KeyOpRequest g = {};

                worker_message_init(&bm, WORKER_CALL_KEY_OP);
                key_op_request_put(&bm, &bad[i]);
                pass(&bm, &br);
                assert_int_equal(key_op_request_get(&br, &g), -EBADMSG);
                assert_null(g.data);
        }
}

/* ---- frames ---- */

typedef struct FrameHeader {
        uint32_t magic, type, size, n_fds;
} FrameHeader;

#define MAGIC 0x31574d53U

static int receive_after(const void *bytes, size_t n, bool close_writer) {
        _cleanup_(worker_message_done) WorkerMessage r = {};
        int s[2], e;

        socket_pair(s);
        assert_int_equal(write(s[0], bytes, n), (ssize_t) n);
        if (close_writer)
                close(s[0]);
        e = worker_message_receive(s[1], &r);
        if (!close_writer)
                close(s[0]);
        close(s[1]);
        return e;
}

static void test_garbage_and_truncated(void **state) {
        FrameHeader good = { MAGIC, 1, 10, 0 };
        struct {
                FrameHeader h;
                char payload[4];
        } short_payload = { { MAGIC, 1, 10, 0 }, "abc" };
        FrameHeader bad_magic = { 0x12345678, 1, 0, 0 };
        FrameHeader too_long = { MAGIC, 1, WORKER_MESSAGE_MAX + 1, 0 };
        FrameHeader too_many_fds = { MAGIC, 1, 0, WORKER_FDS_MAX + 1 };
        FrameHeader missing_fds = { MAGIC, 1, 0, 2 };

        (void) state;
        /* Nothing at all: the peer is gone. */
        assert_int_equal(receive_after("", 0, true), -ECONNRESET);
        /* Half a header, then EOF. */
        assert_int_equal(receive_after(&good, 7, true), -EBADMSG);
        /* A header, part of the payload, EOF. */
        assert_int_equal(receive_after(&short_payload, sizeof(short_payload), true), -EBADMSG);
        assert_int_equal(receive_after(&bad_magic, sizeof(bad_magic), false), -EBADMSG);
        assert_int_equal(receive_after("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, false), -EBADMSG);
        assert_int_equal(receive_after(&too_long, sizeof(too_long), false), -EBADMSG);
        assert_int_equal(receive_after(&too_many_fds, sizeof(too_many_fds), false), -EBADMSG);
        /* The header promises fds that do not come. */
        assert_int_equal(receive_after(&missing_fds, sizeof(missing_fds), true), -EBADMSG);
}

/* fds the header does not announce are refused (and closed). */
static void test_unannounced_fds(void **state) {
        _cleanup_(worker_message_done) WorkerMessage r = {};
        FrameHeader h = { MAGIC, 1, 0, 0 };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        int s[2], p[2];
        char ch;

        (void) state;
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &p[1], sizeof(int));
        socket_pair(s);
        assert_int_equal(sendmsg(s[0], &mh, 0), (ssize_t) sizeof(h));
        close(p[1]);
        assert_int_equal(worker_message_receive(s[1], &r), -EBADMSG);
        close(s[0]);
        close(s[1]);
        /* The received copy was closed: EOF on the pipe. */
        assert_int_equal(read(p[0], &ch, 1), 0);
        close(p[0]);
}

static void test_peer_gone(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, r = {};
        int s[2];

        (void) state;
        socket_pair(s);
        close(s[1]);
        worker_message_init(&m, 1);
        worker_message_put_string(&m, "nobody listens");
        assert_int_equal(worker_message_send(s[0], &m), -EPIPE); /* and no SIGPIPE */
        close(s[0]);

        socket_pair(s);
        close(s[0]);
        assert_int_equal(worker_message_receive(s[1], &r), -ECONNRESET);
        close(s[1]);
}

static void test_deadline(void **state) {
        _cleanup_(worker_message_done) WorkerMessage r = {};
        uint64_t start = worker_now_usec();
        FrameHeader h = { MAGIC, 1, 100, 0 };
        int s[2];

        (void) state;
        socket_pair(s);
        assert_int_equal(worker_message_receive_until(s[1], &r, start + 100 * 1000), -ETIME);
        assert_true(worker_now_usec() - start >= 100 * 1000);

        /* Stalled inside a frame. */
        assert_int_equal(write(s[0], &h, sizeof(h)), (ssize_t) sizeof(h));
        assert_int_equal(worker_message_receive_until(s[1], &r, worker_now_usec() + 50 * 1000), -ETIME);
        close(s[0]);
        close(s[1]);
}

/* A message larger than the socket buffers, sent and received at once by
 * two threads; and one past WORKER_MESSAGE_MAX refused when put. */
typedef struct Sender {
        int sock;
        WorkerMessage *m;
        int result;
} Sender;

static void *send_thread(void *userdata) {
        Sender *s = userdata;

        s->result = worker_message_send_until(s->sock, s->m, worker_now_usec() + 10 * 1000 * 1000);
        return NULL;
}

static void test_large(void **state) {
        _cleanup_(worker_message_done) WorkerMessage m = {}, r = {};
        _cleanup_free_ uint8_t *big = malloc(8 << 20), *got = NULL;
        size_t n;
        pthread_t t;
        Sender sender;
        int s[2];

        (void) state;
        assert_non_null(big);
        for (size_t i = 0; i < (8 << 20); i++)
                big[i] = (uint8_t) (i * 7);
        worker_message_init(&m, 9);
        worker_message_put_blob(&m, big, 8 << 20);
        socket_pair(s);
        sender = (Sender) { .sock = s[0], .m = &m };
        assert_int_equal(pthread_create(&t, NULL, send_thread, &sender), 0);
        assert_int_equal(worker_message_receive_until(s[1], &r, worker_now_usec() + 10 * 1000 * 1000), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(sender.result, 0);
        assert_int_equal(worker_message_get_blob(&r, &got, &n), 0);
        assert_int_equal(n, 8 << 20);
        assert_memory_equal(got, big, n);
        close(s[0]);
        close(s[1]);

        worker_message_done(&m);
        worker_message_init(&m, 9);
        worker_message_put_blob(&m, big, 8 << 20);
        for (unsigned i = 0; i < 8 && m.error == 0; i++)
                worker_message_put_blob(&m, big, 8 << 20);
        assert_int_equal(m.error, -EMSGSIZE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_type),
                cmocka_unit_test(test_empty_message),
                cmocka_unit_test(test_wrong_type_sticky),
                cmocka_unit_test(test_bad_payloads),
                cmocka_unit_test(test_put_errors),
                cmocka_unit_test(test_fds),
                cmocka_unit_test(test_untaken_fds_closed),
                cmocka_unit_test(test_reply_status),
                cmocka_unit_test(test_key_op_request),
                cmocka_unit_test(test_garbage_and_truncated),
                cmocka_unit_test(test_unannounced_fds),
                cmocka_unit_test(test_peer_gone),
                cmocka_unit_test(test_deadline),
                cmocka_unit_test(test_large),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
