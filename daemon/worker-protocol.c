/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "worker-protocol.h"
#include "x509-cache.h"

#define WORKER_MESSAGE_MAGIC 0x31574d53U /* "SMW1" */

/* The frame header. Both ends are the same machine: native byte order. */
typedef struct FrameHeader {
        uint32_t magic;
        uint32_t type;
        uint32_t size;
        uint32_t n_fds;
} FrameHeader;

/* Each field starts with its kind. */
enum {
        FIELD_U32 = 'u',
        FIELD_I32 = 'i',
        FIELD_U64 = 'U',
        FIELD_BOOL = 'b',
        FIELD_STRING = 's',
        FIELD_BLOB = 'B',
        FIELD_STRV = 'v',
        FIELD_X509 = 'x',
        FIELD_X509_STACK = 'X',
};

/* The count of an x509 stack that is NULL rather than empty. */
#define STACK_NULL UINT32_MAX

uint64_t worker_now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

void worker_message_init(WorkerMessage *m, uint32_t type) {
        *m = (WorkerMessage) { .type = type };
        for (unsigned i = 0; i < WORKER_FDS_MAX; i++)
                m->fds[i] = -1;
}

void worker_message_close_fds(WorkerMessage *m) {
        for (unsigned i = 0; i < WORKER_FDS_MAX; i++) {
                if (i < m->n_fds)
                        closep(&m->fds[i]);
                m->fds[i] = -1;
        }
}

void worker_message_done(WorkerMessage *m) {
        free(m->data);
        worker_message_close_fds(m);
        worker_message_init(m, 0);
}

static void fail(WorkerMessage *m, int error) {
        if (m->error == 0)
                m->error = error;
}

/* ---- putting ---- */

/* Room for n more bytes at the end of the payload, or NULL (m->error set). */
static uint8_t *reserve(WorkerMessage *m, size_t n) {
        uint8_t *p;

        if (m->error < 0)
                return NULL;
        if (n > WORKER_MESSAGE_MAX || m->size > WORKER_MESSAGE_MAX - n) {
                fail(m, -EMSGSIZE);
                return NULL;
        }
        if (m->size + n > m->allocated) {
                /* A request with a signer and its chain fits at once. */
                size_t a = m->allocated ? m->allocated : 4096;

                while (a < m->size + n)
                        a *= 2;
                p = realloc(m->data, a);
                if (!p) {
                        fail(m, -ENOMEM);
                        return NULL;
                }
                m->data = p;
                m->allocated = a;
        }
        p = m->data + m->size;
        m->size += n;
        return p;
}

static void put_bytes(WorkerMessage *m, const void *p, size_t n) {
        uint8_t *d = reserve(m, n);

        if (d && n > 0)
                memcpy(d, p, n);
}

static void put_tag(WorkerMessage *m, uint8_t tag) {
        put_bytes(m, &tag, 1);
}

static void put_raw_u32(WorkerMessage *m, uint32_t v) {
        put_bytes(m, &v, sizeof(v));
}

/* A length-prefixed run of bytes. */
static void put_sized(WorkerMessage *m, const void *p, size_t n) {
        if (n > WORKER_MESSAGE_MAX) {
                fail(m, -EMSGSIZE);
                return;
        }
        put_raw_u32(m, (uint32_t) n);
        put_bytes(m, p, n);
}

void worker_message_put_u32(WorkerMessage *m, uint32_t v) {
        put_tag(m, FIELD_U32);
        put_raw_u32(m, v);
}

void worker_message_put_i32(WorkerMessage *m, int32_t v) {
        put_tag(m, FIELD_I32);
        put_bytes(m, &v, sizeof(v));
}

void worker_message_put_u64(WorkerMessage *m, uint64_t v) {
        put_tag(m, FIELD_U64);
        put_bytes(m, &v, sizeof(v));
}

void worker_message_put_bool(WorkerMessage *m, bool v) {
        uint8_t b = v;

        put_tag(m, FIELD_BOOL);
        put_bytes(m, &b, 1);
}

void worker_message_put_string(WorkerMessage *m, const char *s) {
        size_t n = s ? strlen(s) : 0;

        put_tag(m, FIELD_STRING);
        if (n >= WORKER_MESSAGE_MAX) {
                fail(m, -EMSGSIZE);
                return;
        }
        /* 0 is NULL; otherwise the length plus one, no NUL. */
        put_raw_u32(m, s ? (uint32_t) n + 1 : 0);
        put_bytes(m, s, n);
}

void worker_message_put_blob(WorkerMessage *m, const void *p, size_t n) {
        put_tag(m, FIELD_BLOB);
        if (!p && n > 0) {
                fail(m, -EINVAL);
                return;
        }
        put_sized(m, p, n);
}

void worker_message_put_strv(WorkerMessage *m, char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        put_tag(m, FIELD_STRV);
        if (n > WORKER_MESSAGE_MAX) {
                fail(m, -EMSGSIZE);
                return;
        }
        put_raw_u32(m, (uint32_t) n);
        for (size_t i = 0; i < n; i++)
                put_sized(m, l[i], strlen(l[i]));
}

/* DER of x, length-prefixed; length 0 for NULL. */
static void put_der(WorkerMessage *m, X509 *x) {
        uint8_t *d;
        int n;

        if (!x) {
                put_raw_u32(m, 0);
                return;
        }
        n = i2d_X509(x, NULL);
        if (n <= 0) {
                fail(m, -EINVAL);
                return;
        }
        put_raw_u32(m, (uint32_t) n);
        d = reserve(m, (size_t) n);
        if (d && i2d_X509(x, &d) != n)
                fail(m, -EINVAL);
}

void worker_message_put_x509(WorkerMessage *m, X509 *x) {
        put_tag(m, FIELD_X509);
        put_der(m, x);
}

void worker_message_put_x509_stack(WorkerMessage *m, STACK_OF(X509) *s) {
        put_tag(m, FIELD_X509_STACK);
        if (!s) {
                put_raw_u32(m, STACK_NULL);
                return;
        }
        put_raw_u32(m, (uint32_t) sk_X509_num(s));
        for (int i = 0; i < sk_X509_num(s); i++) {
                X509 *x = sk_X509_value(s, i);

                if (!x) {
                        fail(m, -EINVAL);
                        return;
                }
                put_der(m, x);
        }
}

int worker_message_put_fd_take(WorkerMessage *m, int fd) {
        if (m->error < 0 || fd < 0 || m->n_fds >= WORKER_FDS_MAX) {
                int r = m->error < 0 ? m->error : fd < 0 ? fd : -E2BIG;

                if (fd >= 0)
                        (void) close(fd);
                fail(m, r);
                return r;
        }
        m->fds[m->n_fds] = fd;
        return (int) m->n_fds++;
}

int worker_message_put_fd(WorkerMessage *m, int fd) {
        int copy;

        if (m->error < 0)
                return m->error;
        if (fd < 0) {
                fail(m, -EBADF);
                return -EBADF;
        }
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return worker_message_put_fd_take(m, copy < 0 ? -errno : copy);
}

/* ---- getting ---- */

/* The next n bytes of the payload, or NULL (m->error set). */
static const uint8_t *take(WorkerMessage *m, size_t n) {
        const uint8_t *p;

        if (m->error < 0)
                return NULL;
        if (n > m->size - m->offset) {
                fail(m, -EBADMSG);
                return NULL;
        }
        p = m->data + m->offset;
        m->offset += n;
        return p;
}

static int get_tag(WorkerMessage *m, uint8_t tag) {
        const uint8_t *p = take(m, 1);

        if (!p)
                return m->error;
        if (*p != tag) {
                fail(m, -EBADMSG);
                return m->error;
        }
        return 0;
}

static int get_raw_u32(WorkerMessage *m, uint32_t *ret) {
        const uint8_t *p = take(m, sizeof(uint32_t));

        if (!p)
                return m->error;
        memcpy(ret, p, sizeof(uint32_t));
        return 0;
}

int worker_message_get_u32(WorkerMessage *m, uint32_t *ret) {
        int r = get_tag(m, FIELD_U32);

        return r < 0 ? r : get_raw_u32(m, ret);
}

int worker_message_get_i32(WorkerMessage *m, int32_t *ret) {
        const uint8_t *p;
        int r = get_tag(m, FIELD_I32);

        if (r < 0)
                return r;
        p = take(m, sizeof(int32_t));
        if (!p)
                return m->error;
        memcpy(ret, p, sizeof(int32_t));
        return 0;
}

int worker_message_get_u64(WorkerMessage *m, uint64_t *ret) {
        const uint8_t *p;
        int r = get_tag(m, FIELD_U64);

        if (r < 0)
                return r;
        p = take(m, sizeof(uint64_t));
        if (!p)
                return m->error;
        memcpy(ret, p, sizeof(uint64_t));
        return 0;
}

int worker_message_get_bool(WorkerMessage *m, bool *ret) {
        const uint8_t *p;
        int r = get_tag(m, FIELD_BOOL);

        if (r < 0)
                return r;
        p = take(m, 1);
        if (!p)
                return m->error;
        if (*p > 1) {
                fail(m, -EBADMSG);
                return m->error;
        }
        *ret = *p;
        return 0;
}

/* A string of n bytes from the payload; -EBADMSG when it holds a NUL. */
static int get_chars(WorkerMessage *m, size_t n, char **ret) {
        const uint8_t *p = take(m, n);
        char *s;

        if (!p)
                return m->error;
        if (memchr(p, 0, n)) {
                fail(m, -EBADMSG);
                return m->error;
        }
        s = malloc(n + 1);
        if (!s) {
                fail(m, -ENOMEM);
                return m->error;
        }
        memcpy(s, p, n);
        s[n] = 0;
        *ret = s;
        return 0;
}

int worker_message_get_string(WorkerMessage *m, char **ret) {
        uint32_t n = 0;
        int r;

        r = get_tag(m, FIELD_STRING);
        if (r < 0)
                return r;
        r = get_raw_u32(m, &n);
        if (r < 0)
                return r;
        if (n == 0) {
                *ret = NULL;
                return 0;
        }
        return get_chars(m, n - 1, ret);
}

int worker_message_get_blob(WorkerMessage *m, uint8_t **ret, size_t *ret_size) {
        const uint8_t *p;
        uint8_t *copy = NULL;
        uint32_t n = 0;
        int r;

        r = get_tag(m, FIELD_BLOB);
        if (r < 0)
                return r;
        r = get_raw_u32(m, &n);
        if (r < 0)
                return r;
        p = take(m, n);
        if (!p)
                return m->error;
        if (n > 0) {
                copy = malloc(n);
                if (!copy) {
                        fail(m, -ENOMEM);
                        return m->error;
                }
                memcpy(copy, p, n);
        }
        *ret = copy;
        *ret_size = n;
        return 0;
}

int worker_message_get_strv(WorkerMessage *m, char ***ret) {
        char **l;
        uint32_t n = 0;
        int r;

        r = get_tag(m, FIELD_STRV);
        if (r < 0)
                return r;
        r = get_raw_u32(m, &n);
        if (r < 0)
                return r;
        /* Each entry takes at least its length: no allocation past what was sent. */
        if (n > (m->size - m->offset) / sizeof(uint32_t)) {
                fail(m, -EBADMSG);
                return m->error;
        }
        l = calloc((size_t) n + 1, sizeof(char *));
        if (!l) {
                fail(m, -ENOMEM);
                return m->error;
        }
        for (uint32_t i = 0; i < n; i++) {
                uint32_t len = 0;

                r = get_raw_u32(m, &len);
                if (r >= 0)
                        r = get_chars(m, len, &l[i]);
                if (r < 0) {
                        for (uint32_t j = 0; j < i; j++)
                                free(l[j]);
                        free(l);
                        return r;
                }
        }
        *ret = l;
        return 0;
}

/* A length-prefixed DER certificate; NULL for length 0 when allowed. */
static int get_der(WorkerMessage *m, bool null_allowed, X509 **ret) {
        const uint8_t *p;
        uint32_t n = 0;
        X509 *x;
        int r;

        r = get_raw_u32(m, &n);
        if (r < 0)
                return r;
        if (n == 0) {
                if (!null_allowed) {
                        fail(m, -EBADMSG);
                        return m->error;
                }
                *ret = NULL;
                return 0;
        }
        p = take(m, n);
        if (!p)
                return m->error;
        x = x509_cache_parse(p, n);
        if (!x) {
                fail(m, -EBADMSG);
                return m->error;
        }
        *ret = x;
        return 0;
}

int worker_message_get_x509(WorkerMessage *m, X509 **ret) {
        int r = get_tag(m, FIELD_X509);

        return r < 0 ? r : get_der(m, true, ret);
}

int worker_message_get_x509_stack(WorkerMessage *m, STACK_OF(X509) **ret) {
        STACK_OF(X509) *s;
        uint32_t n = 0;
        int r;

        r = get_tag(m, FIELD_X509_STACK);
        if (r < 0)
                return r;
        r = get_raw_u32(m, &n);
        if (r < 0)
                return r;
        if (n == STACK_NULL) {
                *ret = NULL;
                return 0;
        }
        if (n > (m->size - m->offset) / sizeof(uint32_t) || n > INT_MAX) {
                fail(m, -EBADMSG);
                return m->error;
        }
        s = sk_X509_new_reserve(NULL, (int) n);
        if (!s) {
                fail(m, -ENOMEM);
                return m->error;
        }
        for (uint32_t i = 0; i < n; i++) {
                X509 *x;

                r = get_der(m, false, &x);
                if (r < 0) {
                        sk_X509_pop_free(s, X509_free);
                        return r;
                }
                (void) sk_X509_push(s, x); /* reserved */
        }
        *ret = s;
        return 0;
}

int worker_message_get_end(WorkerMessage *m) {
        if (m->error < 0)
                return m->error;
        if (m->offset != m->size) {
                fail(m, -EBADMSG);
                return m->error;
        }
        return 0;
}

int worker_message_take_fd(WorkerMessage *m, unsigned index) {
        int fd;

        if (index >= m->n_fds || index >= WORKER_FDS_MAX || m->fds[index] < 0)
                return -EBADF;
        fd = m->fds[index];
        m->fds[index] = -1;
        return fd;
}

/* ---- the socket ---- */

/* Waits until sock is ready for events or the deadline passes (-ETIME). */
static int wait_for(int sock, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = sock, .events = events };
                int timeout = -1, r;

                if (deadline != WORKER_NO_DEADLINE) {
                        uint64_t now = worker_now_usec(), left;

                        if (now >= deadline)
                                return -ETIME;
                        left = (deadline - now + 999) / 1000;
                        timeout = left > INT_MAX ? INT_MAX : (int) left;
                }
                r = poll(&p, 1, timeout);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 0; /* ready, or hung up: the next call says which */
        }
}

int worker_message_send_until(int sock, WorkerMessage *m, uint64_t deadline) {
        FrameHeader header = {
                .magic = WORKER_MESSAGE_MAGIC,
                .type = m->type,
                .size = (uint32_t) m->size,
                .n_fds = m->n_fds,
        };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * WORKER_FDS_MAX)];
        } control = {};
        struct iovec iov[2] = {
                { .iov_base = &header, .iov_len = sizeof(header) },
                { .iov_base = m->data, .iov_len = m->size },
        };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = m->size > 0 ? 2 : 1 };
        int flags = MSG_NOSIGNAL | (deadline != WORKER_NO_DEADLINE ? MSG_DONTWAIT : 0);

        if (m->error < 0)
                return m->error;
        if (m->size > WORKER_MESSAGE_MAX || m->n_fds > WORKER_FDS_MAX)
                return -EMSGSIZE;
        for (unsigned i = 0; i < m->n_fds; i++)
                if (m->fds[i] < 0)
                        return -EBADF; /* taken: there is nothing to send */

        if (m->n_fds > 0) {
                struct cmsghdr *c;

                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * m->n_fds);
                memcpy(CMSG_DATA(c), m->fds, sizeof(int) * m->n_fds);
        }

        while (mh.msg_iovlen > 0) {
                ssize_t n = sendmsg(sock, &mh, flags);

                if (n < 0) {
                        int r = -errno;

                        if (r == -EINTR)
                                continue;
                        if (r == -EAGAIN) {
                                r = wait_for(sock, POLLOUT, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return r;
                }
                /* The fds went with the first byte. */
                mh.msg_control = NULL;
                mh.msg_controllen = 0;
                while (n > 0 && mh.msg_iovlen > 0) {
                        size_t k = (size_t) n < mh.msg_iov->iov_len ? (size_t) n : mh.msg_iov->iov_len;

                        mh.msg_iov->iov_base = (uint8_t *) mh.msg_iov->iov_base + k;
                        mh.msg_iov->iov_len -= k;
                        n -= (ssize_t) k;
                        if (mh.msg_iov->iov_len == 0) {
                                mh.msg_iov++;
                                mh.msg_iovlen--;
                        }
                }
        }
        return 0;
}

int worker_message_send(int sock, WorkerMessage *m) {
        return worker_message_send_until(sock, m, WORKER_NO_DEADLINE);
}

/* One recvmsg() of at most size bytes into buf; fds that come with them
 * are added to m. The bytes read, 0 at EOF, or a negative errno. */
static ssize_t receive_some(int sock, void *buf, size_t size, WorkerMessage *m, uint64_t deadline) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * WORKER_FDS_MAX)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        int flags = MSG_CMSG_CLOEXEC | (deadline != WORKER_NO_DEADLINE ? MSG_DONTWAIT : 0);
        bool bad = false;

        for (;;) {
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf),
                };
                ssize_t n = recvmsg(sock, &mh, flags);
                int r;

                if (n < 0) {
                        r = -errno;
                        if (r == -EINTR)
                                continue;
                        if (r == -EAGAIN) {
                                r = wait_for(sock, POLLIN, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return r;
                }

                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        const int *fds = (const int *) CMSG_DATA(c);
                        size_t k;

                        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
                                bad = true;
                                continue;
                        }
                        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int fd;

                                memcpy(&fd, fds + i, sizeof(int));
                                if (m->n_fds < WORKER_FDS_MAX)
                                        m->fds[m->n_fds++] = fd;
                                else {
                                        close(fd);
                                        bad = true;
                                }
                        }
                }
                if (bad || (mh.msg_flags & MSG_CTRUNC))
                        return -EBADMSG;
                return n;
        }
}

/* Reads exactly size bytes. -ECONNRESET at EOF before the first when
 * at_start, -EBADMSG at EOF after. */
static int receive_exactly(int sock, void *buf, size_t size, bool at_start, WorkerMessage *m, uint64_t deadline) {
        size_t done = 0;

        while (done < size) {
                ssize_t n = receive_some(sock, (uint8_t *) buf + done, size - done, m, deadline);

                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return at_start && done == 0 ? -ECONNRESET : -EBADMSG;
                done += (size_t) n;
        }
        return 0;
}

static int receive_frame(int sock, WorkerMessage *m, uint64_t deadline) {
        FrameHeader header;
        size_t done = 0;
        int r;

        r = receive_exactly(sock, &header, sizeof(header), true, m, deadline);
        if (r < 0)
                return r;
        if (header.magic != WORKER_MESSAGE_MAGIC || header.size > WORKER_MESSAGE_MAX ||
            header.n_fds > WORKER_FDS_MAX)
                return -EBADMSG;
        m->type = header.type;

        /* The buffer grows with what arrives, so that a header that merely
         * claims a large size costs nothing. */
        while (done < header.size) {
                size_t chunk = header.size - done, a;

                if (done == m->allocated) {
                        uint8_t *p;

                        a = m->allocated ? m->allocated * 2 : 65536;
                        if (a > header.size)
                                a = header.size;
                        p = realloc(m->data, a);
                        if (!p)
                                return -ENOMEM;
                        m->data = p;
                        m->allocated = a;
                }
                if (chunk > m->allocated - done)
                        chunk = m->allocated - done;
                r = receive_exactly(sock, m->data + done, chunk, false, m, deadline);
                if (r < 0)
                        return r;
                done += chunk;
        }
        m->size = header.size;
        if (m->n_fds != header.n_fds)
                return -EBADMSG;
        return 0;
}

int worker_message_receive_until(int sock, WorkerMessage *ret, uint64_t deadline) {
        int r;

        worker_message_init(ret, 0);
        r = receive_frame(sock, ret, deadline);
        if (r < 0) {
                worker_message_done(ret);
                if (r == -EPIPE)
                        r = -ECONNRESET;
        }
        return r;
}

int worker_message_receive(int sock, WorkerMessage *ret) {
        return worker_message_receive_until(sock, ret, WORKER_NO_DEADLINE);
}

/* ---- WORKER_REPLY ---- */

void worker_reply_init(WorkerMessage *m, int error, SmimedError error_code, const char *message) {
        worker_message_done(m);
        worker_message_init(m, WORKER_REPLY);
        worker_message_put_i32(m, error > 0 ? -error : error);
        worker_message_put_i32(m, error_code);
        worker_message_put_string(m, message);
}

int worker_reply_read_status(WorkerMessage *reply, int *ret_error, SmimedError *ret_error_code, char **ret_message) {
        _cleanup_free_ char *message = NULL;
        int32_t error, code = 0;
        int r;

        if (reply->type != WORKER_REPLY)
                return -EBADMSG;
        reply->offset = 0;
        reply->error = 0;
        r = worker_message_get_i32(reply, &error);
        if (r >= 0)
                r = worker_message_get_i32(reply, &code);
        if (r >= 0)
                r = worker_message_get_string(reply, &message);
        if (r < 0)
                return r;
        if (error > 0 || error == INT32_MIN)
                return -EBADMSG;

        *ret_error = error;
        if (ret_error_code)
                /* Only one of ours; anything else is no error code at all. */
                *ret_error_code = smimed_error_to_name(code) ? (SmimedError) code : 0;
        if (ret_message)
                *ret_message = TAKE_PTR(message);
        return 0;
}
