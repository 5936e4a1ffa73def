/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bug 3: smimed uses a caller's file descriptors as the caller opened them
 * and never opens anything on a caller's behalf with its own rights. Each
 * call here is made as the unprivileged HARNESS_TEST_USER, against the real
 * smimed, polkitd and dbus-daemon of the harness: O_PATH descriptors of
 * files and FIFOs the caller may not read or write are refused and nothing
 * of them comes back; a caller's pipes keep their flags, and a caller that
 * keeps its pipe blocking while it trickles data (or does not drain its
 * output) never stops smimed from answering others; terminals are refused;
 * /dev/null still takes an output; files on a FUSE file system whose server
 * holds smimed's requests are refused without one, and smimectl still
 * reads and writes the user's own there; smimectl still writes to a
 * terminal.
 * The protected files belong to the user smimed runs as (root, or an
 * unprivileged user), so each attack asks for something only smimed's own
 * rights could open. Every wait is on an event: a reply, a pipe's state, a
 * process exit. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/rand.h>

#include "harness.h"
#include "smimed-bus-names.h"
#include "smimed-errors.h"

#define CALL_TIMEOUT_USEC HARNESS_TIMEOUT_USEC
/* The pipes of the trickle tests: one page, so that a write of a page
 * returns only once the reader took the whole page before it. */
#define PAGE 4096
#define TRICKLE_PAGES 4

static Harness *harness;
static sd_bus *bus;

/* ---- small helpers (no cmocka in what the test user's child runs) ---- */

static char *path_in(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", harness->dir, name) > 0);
        return p;
}

static void random_hex(char *buf, size_t bytes) {
        unsigned char raw[32];

        assert_true(bytes <= sizeof(raw));
        assert_int_equal(RAND_bytes(raw, (int) bytes), 1);
        for (size_t i = 0; i < bytes; i++)
                sprintf(buf + 2 * i, "%02x", raw[i]);
}

/* A message that is not S/MIME: Verify gives it back as it is. */
static char *plain_message(const char *subject, const char *token) {
        char *m;

        assert_true(asprintf(&m, "From: someone@example.org\r\nSubject: %s\r\n\r\nThe word is %s.\r\n", subject,
                             token) > 0);
        return m;
}

/* A plain message of exactly size bytes. */
static char *plain_message_sized(const char *subject, size_t size) {
        static const char head[] = "From: someone@example.org\r\nSubject: ";
        char *m = malloc(size + 1);
        size_t n;

        assert_non_null(m);
        n = (size_t) snprintf(m, size + 1, "%s%s\r\n\r\n", head, subject);
        assert_true(n < size);
        for (size_t i = n; i < size; i++)
                m[i] = (i - n) % 64 == 63 ? '\n' : (char) ('a' + (i % 26));
        m[size] = '\0';
        return m;
}

static int write_all(int fd, const void *data, size_t size) {
        for (const char *p = data; size > 0;) {
                ssize_t n = write(fd, p, size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

/* Reads size bytes (blocking); the bytes read, or < 0. */
static ssize_t read_exactly(int fd, void *buf, size_t size) {
        size_t done = 0;

        while (done < size) {
                ssize_t n = read(fd, (char *) buf + done, size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

static int memfd_with(const char *text) {
        int fd = memfd_create("test-input", MFD_CLOEXEC);

        if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || lseek(fd, 0, SEEK_SET) != 0)
                return -1;
        return fd;
}

/* A memfd's whole content, NUL-terminated; NULL when it cannot be read. */
static char *memfd_text(int fd) {
        struct stat st;
        char *t;

        if (fstat(fd, &st) < 0 || !(t = malloc((size_t) st.st_size + 1)))
                return NULL;
        if (pread(fd, t, (size_t) st.st_size, 0) != st.st_size) {
                free(t);
                return NULL;
        }
        t[st.st_size] = '\0';
        return t;
}

/* Verify(input, output) on b: 0 and the status's size, or the error. */
typedef struct Call {
        int r;
        char *error_name, *error_message;
        uint64_t size;
} Call;

static void call_done(Call *c) {
        free(c->error_name);
        free(c->error_message);
        *c = (Call) {};
}

static int read_size(sd_bus_message *reply, uint64_t *ret) {
        const char *k;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &k);
                if (r > 0 && streq(k, "size"))
                        r = sd_bus_message_read(reply, "v", "t", ret);
                else if (r > 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = 1;
        }
        return r;
}

static sd_bus_message *new_verify(sd_bus *b, int input, int output) {
        sd_bus_message *m = NULL;

        if (sd_bus_message_new_method_call(b, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           "Verify") < 0 ||
            sd_bus_message_append(m, "hha{sv}", input, output, 0) < 0)
                return sd_bus_message_unref(m);
        return m;
}

static void call_from_reply(Call *c, int r, const sd_bus_error *e, sd_bus_message *reply) {
        *c = (Call) { .r = r };
        if (r < 0) {
                c->error_name = strdup(strempty(e->name));
                c->error_message = strdup(strempty(e->message));
        } else if (read_size(reply, &c->size) < 0)
                c->r = -EBADMSG;
}

static int verify_call(sd_bus *b, int input, int output, Call *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_verify(b, input, output), *reply = NULL;

        int r;

        if (!m)
                return -ENOMEM;
        r = sd_bus_call(b, m, CALL_TIMEOUT_USEC, &e, &reply);
        call_from_reply(c, r, &e, reply);
        return 0;
}

static int get_capabilities(sd_bus *b) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        return sd_bus_call_method(b, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE, "GetCapabilities",
                                  &e, &reply, "sasa{sv}", "someone@example.org", 0, 0);
}

/* What the test user's child reports: "<error name>\n<error message>\n<output>". */
static void report(char *out, size_t size, const Call *c, const char *output) {
        snprintf(out, size, "%s\n%s\n%s", c->r < 0 ? strempty(c->error_name) : "",
                 c->r < 0 ? strempty(c->error_message) : "", strempty(output));
}

typedef struct Report {
        char *error_name, *error_message, *output; /* point into the buffer */
        char *buffer;
} Report;

static void report_done(Report *r) {
        free(r->buffer);
        *r = (Report) {};
}

static Report parse_report(char *buffer) {
        Report r = { .buffer = buffer };
        char *nl;

        assert_non_null(buffer);
        r.error_name = buffer;
        nl = strchr(r.error_name, '\n');
        assert_non_null(nl);
        *nl = '\0';
        r.error_message = nl + 1;
        nl = strchr(r.error_message, '\n');
        assert_non_null(nl);
        *nl = '\0';
        r.output = nl + 1;
        return r;
}

/* The call was refused as an unusable fd, with the reason in the message
 * (smimed's sentence for the refusals, errno's text for the rest), and
 * nothing of secret came back. */
static const char *refusal_text(int error) {
        switch (error) {
        case EBADF:
                return "is not open for that (or is an O_PATH descriptor)";
        case EOPNOTSUPP:
                return "a terminal or device cannot be passed";
        case EISDIR:
                return "a directory cannot be passed";
        case EREMOTE:
                return "a file on a FUSE file system cannot be passed";
        default:
                return strerror(error);
        }
}

static void expect_refused(const Report *r, const char *what, int error, const char *secret) {
        if (!streq(r->error_name, SMIMED_ERROR_INVALID_ARGUMENT))
                fail_msg("%s: got \"%s\" (%s), expected %s", what, r->error_name, r->error_message,
                         SMIMED_ERROR_INVALID_ARGUMENT);
        if (!strstr(r->error_message, refusal_text(error)))
                fail_msg("%s: the message \"%s\" does not say \"%s\"", what, r->error_message, refusal_text(error));
        if (secret && (strstr(r->output, secret) || strstr(r->error_message, secret)))
                fail_msg("%s: the protected content came back", what);
        assert_string_equal(r->output, "");
}

/* The user smimed runs as: its effective uid (/proc/PID itself would say
 * root for a process that is not dumpable). */
static uid_t smimed_uid(void) {
        _cleanup_free_ char *p = NULL, *status = NULL;
        unsigned long real, effective;
        const char *line;

        assert_true(asprintf(&p, "/proc/%d/status", (int) harness->smimed_pid) > 0);
        status = harness_read_file(p);
        assert_non_null(status);
        line = strstr(status, "\nUid:");
        assert_non_null(line);
        assert_int_equal(sscanf(line, "\nUid: %lu %lu", &real, &effective), 2);
        return (uid_t) effective;
}

/* Something only smimed's user may open: mode 0600, owned by that user. */
static void protect(const char *p) {
        assert_int_equal(chown(p, smimed_uid(), (gid_t) -1), 0);
        assert_int_equal(chmod(p, 0600), 0);
}

static void assert_smimed_alive(void) {
        int status;

        assert_true(harness->smimed_pid > 0);
        if (waitpid(harness->smimed_pid, &status, WNOHANG) != 0)
                fail_msg("smimed is gone (status 0x%x), see %s", (unsigned) status, harness->smimed_log);
        assert_true(get_capabilities(bus) >= 0);
}

/* A child as root that opens a FIFO (blocking until the other side is
 * opened too) and then writes data into it, or reads what comes. */
static pid_t fifo_peer(const char *p, const char *data) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                char buf[PAGE];
                int fd;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                fd = open(p, (data ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
                if (fd < 0)
                        _exit(2);
                if (data)
                        _exit(write_all(fd, data, strlen(data)) < 0 ? 3 : 0);
                /* The exit status says whether anything came: 0 nothing, 1 something. */
                _exit(read(fd, buf, sizeof(buf)) > 0 ? 1 : 0);
        }
        return pid;
}

static int wait_exit(pid_t pid) {
        int status;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* ---- (a) (b) (c): O_PATH ---- */

typedef struct OpathArgs {
        const char *input_path;  /* opened O_PATH as the input, else a memfd with message */
        const char *output_path; /* opened O_PATH as the output, else a memfd */
        const char *message;
} OpathArgs;

static int opath_child(char *out, size_t size, void *userdata) {
        const OpathArgs *a = userdata;
        _cleanup_(call_done) Call c = {};
        _cleanup_free_ char *output = NULL;
        sd_bus *b = NULL;
        int input, output_fd;

        if (harness_bus_open(&b) < 0)
                return 2;
        input = a->input_path ? open(a->input_path, O_PATH | O_CLOEXEC) : memfd_with(a->message);
        output_fd = a->output_path ? open(a->output_path, O_PATH | O_CLOEXEC) : memfd_create("out", MFD_CLOEXEC);
        if (input < 0 || output_fd < 0)
                return 3;
        /* The point of the attack: this user may not open it for real. */
        if (a->input_path && open(a->input_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) >= 0)
                return 4;
        if (a->output_path && open(a->output_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) >= 0)
                return 4;
        if (verify_call(b, input, output_fd, &c) < 0)
                return 5;
        if (!a->output_path) {
                output = memfd_text(output_fd);
                if (!output)
                        return 6;
        }
        report(out, size, &c, output);
        sd_bus_flush_close_unref(b);
        return 0;
}

static Report run_opath(const OpathArgs *a) {
        char *out = NULL;

        assert_int_equal(harness_run_as_test_user(harness, opath_child, (void *) a, &out), 0);
        return parse_report(out);
}

static void test_opath_regular_file_as_input(void **state) {
        _cleanup_free_ char *secret_path = NULL, *message = NULL;
        _cleanup_(report_done) Report r = {};
        char token[33];

        (void) state;
        random_hex(token, 16);
        message = plain_message("secret", token);
        secret_path = harness_write_file(harness, "secret.eml", message, 0600);
        assert_non_null(secret_path);
        protect(secret_path);

        r = run_opath(&(OpathArgs) { .input_path = secret_path });
        expect_refused(&r, "Verify from an O_PATH fd of a protected file", EBADF, token);
        assert_smimed_alive();
}

static void test_opath_fifo_as_input(void **state) {
        _cleanup_free_ char *fifo = path_in("secret.fifo"), *message = NULL;
        _cleanup_(report_done) Report r = {};
        _cleanup_(closep) int reader = -1;
        char token[33], buf[PAGE];
        ssize_t n;
        pid_t writer;

        (void) state;
        random_hex(token, 16);
        message = plain_message("secret from a FIFO", token);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        protect(fifo);
        /* root waits to write the secret to whoever opens the FIFO for reading. */
        writer = fifo_peer(fifo, message);

        r = run_opath(&(OpathArgs) { .input_path = fifo });
        expect_refused(&r, "Verify from an O_PATH fd of a protected FIFO", EBADF, token);

        /* Nobody opened the FIFO: the secret is still for its first reader, here. */
        reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(reader >= 0);
        assert_int_equal(wait_exit(writer), 0);
        n = read(reader, buf, sizeof(buf) - 1);
        assert_int_equal(n, (ssize_t) strlen(message));
        buf[n] = '\0';
        assert_string_equal(buf, message);
        assert_smimed_alive();
}

static void test_opath_as_output(void **state) {
        _cleanup_free_ char *file = NULL, *fifo = path_in("protected-output.fifo"),
                            *message = NULL, *after = NULL;
        _cleanup_(report_done) Report r = {}, q = {};
        _cleanup_(closep) int writer = -1;
        char token[33];
        pid_t reader;

        (void) state;
        random_hex(token, 16);
        message = plain_message("to an O_PATH output", token);
        file = harness_write_file(harness, "protected-output", "untouched\n", 0600);
        assert_non_null(file);
        protect(file);

        r = run_opath(&(OpathArgs) { .output_path = file, .message = message });
        /* The output is the last thing smimed touches: its word, not the input's. */
        expect_refused(&r, "Verify to an O_PATH fd of a protected file", EBADF, NULL);
        after = harness_read_file(file);
        assert_non_null(after);
        assert_string_equal(after, "untouched\n");

        /* A protected FIFO with root waiting to read: nothing may come to it. */
        assert_int_equal(mkfifo(fifo, 0600), 0);
        protect(fifo);
        reader = fifo_peer(fifo, NULL);
        q = run_opath(&(OpathArgs) { .output_path = fifo, .message = message });
        expect_refused(&q, "Verify to an O_PATH fd of a protected FIFO", EBADF, NULL);
        /* Let the reader in and out: it saw nothing. */
        writer = open(fifo, O_WRONLY | O_CLOEXEC);
        assert_true(writer >= 0);
        writer = (close(writer), -1);
        assert_int_equal(wait_exit(reader), 0);
        assert_smimed_alive();
}

/* ---- (d): the caller's pipes stay as they are; a blocking one blocks nobody ---- */

typedef struct TrickleArgs {
        const char *fifo; /* a FIFO the test user owns; NULL: an anonymous pipe */
        bool output;      /* the pipe is the output (else the input) */
} TrickleArgs;

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        (void) ret_error;
        call_from_reply(c, e ? -EIO : 1, e, reply); /* 1: the reply came */
        return 0;
}

/* Processes b until nothing is left to do without waiting. */
static int drain(sd_bus *b) {
        int r;

        while ((r = sd_bus_process(b, NULL)) > 0)
                ;
        return r;
}

static int wait_reply(sd_bus *b, const Call *c) {
        while (c->r == 0) {
                int r = sd_bus_process(b, NULL);

                if (r < 0)
                        return r;
                if (r == 0 && sd_bus_wait(b, CALL_TIMEOUT_USEC) <= 0)
                        return -ETIMEDOUT;
        }
        return 0;
}

/* A pipe end of the caller's: blocking, the pipe one page. */
static int open_pipe(const char *fifo, int p[2]) {
        if (!fifo) {
                if (pipe2(p, O_CLOEXEC) < 0)
                        return -errno;
        } else {
                p[0] = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                p[1] = p[0] >= 0 ? open(fifo, O_WRONLY | O_CLOEXEC) : -1;
                if (p[1] < 0 || fcntl(p[0], F_SETFL, O_RDONLY) < 0)
                        return -errno;
        }
        return fcntl(p[1], F_SETPIPE_SZ, PAGE) >= PAGE ? 0 : -errno;
}

/* Whether preadv2(RWF_NOWAIT) works on fd (pipes since Linux 6.x; never on
 * FIFOs): a property of the open file that must stay as it was. */
static bool nowait_works(int fd) {
        char c;
        struct iovec iov = { &c, 1 };

        return preadv2(fd, &iov, 1, -1, RWF_NOWAIT) >= 0 || errno != EOPNOTSUPP;
}

/* The same for a write end: a byte in, and out again at read_end. */
static bool nowait_works_for_write(int fd, int read_end) {
        char c = 'x';
        struct iovec iov = { &c, 1 };

        if (pwritev2(fd, &iov, 1, -1, RWF_NOWAIT) < 0)
                return errno != EOPNOTSUPP;
        return read(read_end, &c, 1) == 1;
}

/* As the test user: Verify from (or to) a pipe that stays blocking while it
 * fills page by page; GetCapabilities on another connection is answered
 * while the pipe is still open and Verify unanswered. Writes "ok" or why not. */
static int trickle_child(char *out, size_t size, void *userdata) {
        const TrickleArgs *a = userdata;
        _cleanup_(call_done) Call c = {};
        _cleanup_free_ char *message = NULL, *got = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        sd_bus_message *m = NULL;
        sd_bus *b = NULL, *other = NULL;
        int p[2] = { -1, -1 }, mem = -1, mine, flags, r;
        bool nowait;
        size_t total = TRICKLE_PAGES * PAGE;

        /* The trickle: whole pages, one at a time. */
        message = plain_message_sized(a->output ? "slow reader" : "trickle", total);
        if (harness_bus_open(&b) < 0 || harness_bus_open(&other) < 0)
                return 2;
        if (open_pipe(a->fifo, p) < 0)
                return 3;
        mine = a->output ? p[1] : p[0]; /* the end smimed gets */
        mem = a->output ? memfd_with(message) : memfd_create("out", MFD_CLOEXEC);
        if (mem < 0)
                return 3;
        flags = fcntl(mine, F_GETFL);
        nowait = a->output ? nowait_works_for_write(mine, p[0]) : nowait_works(mine);
        if (flags < 0 || (flags & O_NONBLOCK))
                return 4;

        m = a->output ? new_verify(b, mem, mine) : new_verify(b, mine, mem);
        if (!m || sd_bus_call_async(b, &slot, m, on_reply, &c, CALL_TIMEOUT_USEC) < 0 || sd_bus_flush(b) < 0)
                return 5;
        m = sd_bus_message_unref(m); /* it held copies of the fds */

        if (!a->output) {
                /* Each page after the first is taken by the pipe only once
                 * smimed took the whole page before: smimed keeps reading. */
                for (size_t i = 0; i < TRICKLE_PAGES; i++)
                        if (write_all(p[1], message + i * PAGE, PAGE) < 0)
                                return 6;
        } else {
                /* smimed has begun to write; it cannot write all into a page. */
                struct pollfd pfd = { .fd = p[0], .events = POLLIN };

                if (poll(&pfd, 1, (int) (CALL_TIMEOUT_USEC / 1000)) != 1)
                        return 6;
        }

        /* The pipe is open, smimed waits for it; it answers others meanwhile. */
        r = get_capabilities(other);
        if (r < 0) {
                snprintf(out, size, "GetCapabilities while the pipe is open: %s", strerror(-r));
                return 0;
        }
        if (drain(b) < 0)
                return 7;
        if (c.r != 0) {
                snprintf(out, size, "Verify was answered before the pipe was at its end: %s %s", strempty(c.error_name),
                         strempty(c.error_message));
                return 0;
        }

        if (!a->output)
                p[1] = (close(p[1]), -1); /* the end of the input */
        else {
                got = malloc(total + 1);
                if (!got || read_exactly(p[0], got, total) != (ssize_t) total)
                        return 8;
                got[total] = '\0';
        }
        if (wait_reply(b, &c) < 0)
                return 9;
        if (c.r < 0) {
                snprintf(out, size, "Verify failed: %s: %s", strempty(c.error_name), strempty(c.error_message));
                return 0;
        }
        if (!a->output && !(got = memfd_text(mem)))
                return 10;
        if (!streq(got, message) || c.size != total) {
                snprintf(out, size, "the output differs from the message (%zu bytes, size %" PRIu64 ")", strlen(got),
                         c.size);
                return 0;
        }
        /* The caller's open file is as it was. */
        if (fcntl(mine, F_GETFL) != flags) {
                snprintf(out, size, "the flags of the caller's pipe changed: 0%o, before 0%o", fcntl(mine, F_GETFL),
                         flags);
                return 0;
        }
        if (nowait && !(a->output ? nowait_works_for_write(mine, p[0]) : nowait_works(mine))) {
                snprintf(out, size, "RWF_NOWAIT no longer works on the caller's pipe");
                return 0;
        }
        snprintf(out, size, "ok");
        sd_bus_flush_close_unref(b);
        sd_bus_flush_close_unref(other);
        return 0;
}

static void run_trickle(const TrickleArgs *a, const char *what) {
        _cleanup_free_ char *out = NULL;
        int r;

        r = harness_run_as_test_user(harness, trickle_child, (void *) a, &out);
        if (r != 0 || !streq_ptr(out, "ok"))
                fail_msg("%s: status %d: %s", what, r, strempty(out));
}

static char *test_user_fifo(const char *name) {
        char *p = path_in(name);

        assert_int_equal(mkfifo(p, 0600), 0);
        assert_int_equal(chown(p, harness->test_uid, harness->test_gid), 0);
        return p;
}

static void test_blocking_pipes_block_nobody(void **state) {
        _cleanup_free_ char *fifo_in = test_user_fifo("trickle-in.fifo"), *fifo_out = test_user_fifo("trickle-out.fifo");

        (void) state;
        run_trickle(&(TrickleArgs) { .fifo = NULL, .output = false }, "input from a blocking pipe");
        run_trickle(&(TrickleArgs) { .fifo = fifo_in, .output = false }, "input from a blocking FIFO");
        run_trickle(&(TrickleArgs) { .fifo = NULL, .output = true }, "output to a blocking pipe");
        run_trickle(&(TrickleArgs) { .fifo = fifo_out, .output = true }, "output to a blocking FIFO");
        assert_smimed_alive();
}

/* The caller clears O_NONBLOCK on its end while smimed reads it (and sets
 * it on the other pipe): smimed must depend on neither. */
static int toggle_child(char *out, size_t size, void *userdata) {
        _cleanup_(call_done) Call c = {};
        _cleanup_free_ char *message = plain_message_sized("toggled", TRICKLE_PAGES * PAGE), *got = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        sd_bus_message *m = NULL;
        sd_bus *b = NULL, *other = NULL;
        int p[2], mem;

        (void) userdata;
        if (harness_bus_open(&b) < 0 || harness_bus_open(&other) < 0 || open_pipe(NULL, p) < 0 ||
            (mem = memfd_create("out", MFD_CLOEXEC)) < 0)
                return 2;
        /* Non-blocking when smimed gets it... */
        if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0)
                return 3;
        m = new_verify(b, p[0], mem);
        if (!m || sd_bus_call_async(b, &slot, m, on_reply, &c, CALL_TIMEOUT_USEC) < 0 || sd_bus_flush(b) < 0)
                return 4;
        m = sd_bus_message_unref(m);
        if (write_all(p[1], message, PAGE) < 0)
                return 5;
        /* ...and blocking from now on. */
        if (fcntl(p[0], F_SETFL, 0) < 0)
                return 5;
        for (size_t i = 1; i < TRICKLE_PAGES; i++)
                if (write_all(p[1], message + i * PAGE, PAGE) < 0)
                        return 5;
        if (get_capabilities(other) < 0 || drain(b) < 0 || c.r != 0) {
                snprintf(out, size, "GetCapabilities not answered while the input is open, or Verify answered early");
                return 0;
        }
        close(p[1]);
        if (wait_reply(b, &c) < 0)
                return 6;
        got = memfd_text(mem);
        if (c.r < 0 || !got || !streq(got, message)) {
                snprintf(out, size, "Verify: %s %s", strempty(c.error_name), strempty(c.error_message));
                return 0;
        }
        if (fcntl(p[0], F_GETFL) & O_NONBLOCK) {
                snprintf(out, size, "O_NONBLOCK is set again on the caller's pipe");
                return 0;
        }
        snprintf(out, size, "ok");
        sd_bus_flush_close_unref(b);
        sd_bus_flush_close_unref(other);
        return 0;
}

static void test_caller_clears_nonblock_meanwhile(void **state) {
        _cleanup_free_ char *out = NULL;
        int r;

        (void) state;
        r = harness_run_as_test_user(harness, toggle_child, NULL, &out);
        if (r != 0 || !streq_ptr(out, "ok"))
                fail_msg("status %d: %s", r, strempty(out));
        assert_smimed_alive();
}

/* ---- (e): terminals ---- */

typedef enum TtyCase {
        TTY_INPUT,        /* the terminal as the input */
        TTY_MASTER_INPUT, /* its master side as the input */
        TTY_OUTPUT,       /* the terminal as the output */
} TtyCase;

static int tty_child(char *out, size_t size, void *userdata) {
        TtyCase t = *(const TtyCase *) userdata;
        _cleanup_(call_done) Call c = {};
        _cleanup_free_ char *message = plain_message("to a terminal", "tty"), *output = NULL;
        sd_bus *b = NULL;
        int master, slave, mem;
        char buf[64];

        if (harness_bus_open(&b) < 0 || openpty(&master, &slave, NULL, NULL, NULL) < 0)
                return 2;
        mem = t == TTY_OUTPUT ? memfd_with(message) : memfd_create("out", MFD_CLOEXEC);
        if (mem < 0)
                return 3;
        /* Something to read, so that a daemon that reads the terminal would get it. */
        if (t == TTY_INPUT && write_all(master, message, strlen(message)) < 0)
                return 4;
        if (verify_call(b, t == TTY_OUTPUT ? mem : t == TTY_INPUT ? slave : master, t == TTY_OUTPUT ? slave : mem,
                        &c) < 0)
                return 5;
        if (t != TTY_OUTPUT && !(output = memfd_text(mem)))
                return 6;
        if (t == TTY_OUTPUT) {
                /* Nothing came to the terminal. */
                if (fcntl(master, F_SETFL, O_NONBLOCK) < 0)
                        return 7;
                if (read(master, buf, sizeof(buf)) >= 0 || errno != EAGAIN)
                        output = strdup("(something was written to the terminal)");
        }
        report(out, size, &c, output);
        sd_bus_flush_close_unref(b);
        return 0;
}

static void run_tty(TtyCase t, const char *what) {
        _cleanup_(report_done) Report r = {};
        char *out = NULL;

        assert_int_equal(harness_run_as_test_user(harness, tty_child, &t, &out), 0);
        r = parse_report(out);
        expect_refused(&r, what, EOPNOTSUPP, NULL);
}

static void test_terminal_is_refused(void **state) {
        (void) state;
        run_tty(TTY_INPUT, "Verify from a terminal");
        run_tty(TTY_MASTER_INPUT, "Verify from a pseudo-terminal master");
        run_tty(TTY_OUTPUT, "Verify to a terminal");
        assert_smimed_alive();
}

/* ---- (f): /dev/null ---- */

static int dev_null_child(char *out, size_t size, void *userdata) {
        _cleanup_(call_done) Call c = {}, d = {};
        _cleanup_free_ char *message = plain_message("to /dev/null", "null");
        sd_bus *b = NULL;
        int null_out, null_in, in, mem;

        (void) userdata;
        null_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
        null_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        in = memfd_with(message);
        mem = memfd_create("out", MFD_CLOEXEC);
        if (harness_bus_open(&b) < 0 || null_out < 0 || null_in < 0 || in < 0 || mem < 0)
                return 2;
        if (verify_call(b, in, null_out, &c) < 0 || verify_call(b, null_in, mem, &d) < 0)
                return 3;
        snprintf(out, size, "%s %" PRIu64 "|%s", c.r < 0 ? strempty(c.error_message) : "ok", c.size,
                 d.r < 0 ? strempty(d.error_name) : "ok");
        sd_bus_flush_close_unref(b);
        return 0;
}

static void test_dev_null(void **state) {
        _cleanup_free_ char *out = NULL, *want = NULL, *message = plain_message("to /dev/null", "null");

        (void) state;
        assert_int_equal(harness_run_as_test_user(harness, dev_null_child, NULL, &out), 0);
        /* To /dev/null: all of it; from /dev/null: an empty message. */
        assert_true(asprintf(&want, "ok %zu|%s", strlen(message), SMIMED_ERROR_INVALID_MESSAGE) > 0);
        assert_string_equal(out, want);
        assert_smimed_alive();
}

/* ---- (g): files on FUSE ---- */

/* A FUSE file system of the test user's own making, as FUSE's allow_other
 * lets a user make one that others may use (user_allow_other in
 * /etc/fuse.conf): its server answers the test user and holds smimed's
 * requests for as long as it likes. A daemon that stats, reads or writes
 * such a file on its event loop waits with it, and so does every client. */
typedef struct FuseMount {
        char *dir;
        pid_t pid;
} FuseMount;

/* Killing the server fails what it holds (ENOTCONN): nothing waits on it
 * any more, and the mount can go. */
static void fuse_mount_stop(FuseMount *m) {
        int status;

        if (m->pid > 0) {
                (void) kill(m->pid, SIGKILL);
                (void) waitpid(m->pid, &status, 0);
                m->pid = 0;
        }
        if (m->dir) {
                (void) umount2(m->dir, MNT_DETACH);
                (void) rmdir(m->dir);
                m->dir = mfree(m->dir);
        }
}

static FuseMount fuse_mount_start(const char *text) {
        FuseMount m = {.dir = path_in("fuse")};
        char uid[32], ready[16] = {};
        int p[2];

        assert_int_equal(mkdir(m.dir, 0755), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        snprintf(uid, sizeof(uid), "%u", (unsigned) harness->test_uid);
        m.pid = fork();
        assert_true(m.pid >= 0);
        if (m.pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (dup2(p[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execl(FUSE_STALL_BINARY, FUSE_STALL_BINARY, m.dir, uid, text, (char *) NULL);
                _exit(127);
        }
        close(p[1]);
        /* "ready" once the mount is in place; nothing (EOF) if it failed. */
        if (read_exactly(p[0], ready, 6) != 6 || !streq(ready, "ready\n")) {
                fuse_mount_stop(&m);
                fail_msg("fuse-stall could not mount a FUSE file system (is there a /dev/fuse?)");
        }
        close(p[0]);
        return m;
}

typedef struct FuseArgs {
        const char *dir;
        const char *message;
        bool output; /* the FUSE file is the output, else the input */
} FuseArgs;

static int fuse_child(char *out, size_t size, void *userdata) {
        const FuseArgs *a = userdata;
        _cleanup_(call_done) Call c = {};
        _cleanup_free_ char *p = NULL, *output = NULL;
        sd_bus *b = NULL;
        int file, mem;

        if (harness_bus_open(&b) < 0 || asprintf(&p, "%s/%s", a->dir, a->output ? "output" : "message") < 0)
                return 2;
        /* The server answers this user: the open works. */
        file = open(p, (a->output ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
        mem = a->output ? memfd_with(a->message) : memfd_create("out", MFD_CLOEXEC);
        if (file < 0 || mem < 0)
                return 3;
        if (verify_call(b, a->output ? mem : file, a->output ? file : mem, &c) < 0)
                return 4;
        if (!a->output && !(output = memfd_text(mem)))
                return 5;
        /* And smimed answers at once, as ever. */
        if (get_capabilities(b) < 0)
                return 6;
        report(out, size, &c, output);
        sd_bus_flush_close_unref(b);
        return 0;
}

static void run_fuse(bool output, const char *what) {
        _cleanup_free_ char *message = plain_message("on FUSE", "fuse");
        _cleanup_(report_done) Report r = {};
        FuseMount m = fuse_mount_start(message);
        char *out = NULL;
        int status;

        status = harness_run_as_test_user(harness, fuse_child,
                                          &(FuseArgs){.dir = m.dir, .message = message, .output = output}, &out);
        /* Before any assertion: what smimed may still wait for fails now. */
        fuse_mount_stop(&m);
        assert_int_equal(status, 0);
        r = parse_report(out);
        expect_refused(&r, what, EREMOTE, NULL);
}

/* smimectl, as the user whose file system it is: libsmimed reads a file on
 * FUSE itself into a memfd, and writes the output to one through a memfd,
 * so that one's own files there still work. "<exit status>\n<output>". */
static int fuse_smimectl_child(char *out, size_t size, void *userdata) {
        const char *dir = userdata;
        _cleanup_free_ char *input = NULL, *output = NULL;
        char got[PAGE] = {};
        int fd, status;
        pid_t pid;

        if (asprintf(&input, "%s/message", dir) < 0 || asprintf(&output, "%s/output", dir) < 0)
                return 2;
        fd = open(output, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0)
                return 3;
        pid = fork();
        if (pid < 0)
                return 4;
        if (pid == 0) {
                if (dup2(fd, STDOUT_FILENO) < 0)
                        _exit(127);
                execl(SMIMECTL_BINARY, SMIMECTL_BINARY, "--no-ask-password", "verify", input, (char *) NULL);
                _exit(127);
        }
        close(fd);
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
                return 5;
        fd = open(output, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read_exactly(fd, got, sizeof(got) - 1) < 0)
                return 6;
        close(fd);
        snprintf(out, size, "%d\n%s", WEXITSTATUS(status), got);
        return 0;
}

static void test_fuse_file_is_refused(void **state) {
        _cleanup_free_ char *message = plain_message("on FUSE", "fuse"), *out = NULL, *want = NULL;
        _cleanup_free_ char *local = harness_write_file(harness, "local.eml", message, 0644);
        _cleanup_(call_done) Call c = {};
        FuseMount m;
        int status, fd, mem;

        (void) state;
        /* smimed has read the mounts before the FUSE one is made: it sees
         * that they changed. */
        assert_non_null(local);
        fd = open(local, O_RDONLY | O_CLOEXEC);
        mem = memfd_create("out", MFD_CLOEXEC);
        assert_true(fd >= 0 && mem >= 0);
        assert_int_equal(verify_call(bus, fd, mem, &c), 0);
        if (c.r < 0)
                fail_msg("Verify of a local file: %s: %s", c.error_name, c.error_message);
        close(fd);
        close(mem);

        run_fuse(false, "Verify from a file on FUSE");
        run_fuse(true, "Verify to a file on FUSE");

        m = fuse_mount_start(message);
        status = harness_run_as_test_user(harness, fuse_smimectl_child, m.dir, &out);
        fuse_mount_stop(&m);
        assert_int_equal(status, 0);
        /* Not signed: verify says so (1) and gives the message as it is. */
        assert_true(asprintf(&want, "1\n%s", message) > 0);
        assert_string_equal(out, want);
        assert_smimed_alive();
}

/* ---- smimectl with a terminal as standard output ---- */

/* smimectl verb file, as the test user, stdout a pseudo-terminal; returns
 * its exit status and what came to the terminal. */
static int smimectl_on_terminal(const char *verb, const char *file, char **ret_output) {
        _cleanup_(closep) int master = -1, slave = -1, err = -1;
        struct termios raw;
        char *output = NULL;
        size_t size = 0;
        pid_t pid;

        assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
        /* Raw, so that what smimectl writes comes through byte for byte. */
        assert_int_equal(tcgetattr(slave, &raw), 0);
        cfmakeraw(&raw);
        assert_int_equal(tcsetattr(slave, TCSANOW, &raw), 0);
        err = open(harness->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        assert_true(err >= 0);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (dup2(slave, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
                        _exit(127);
                if (setgroups(0, NULL) < 0 || setresgid(harness->test_gid, harness->test_gid, harness->test_gid) < 0 ||
                    setresuid(harness->test_uid, harness->test_uid, harness->test_uid) < 0)
                        _exit(127);
                execl(SMIMECTL_BINARY, SMIMECTL_BINARY, "--no-ask-password", verb, file, (char *) NULL);
                _exit(127);
        }
        slave = (close(slave), -1);

        /* Until the last holder of the terminal is gone: EIO. */
        for (;;) {
                char buf[PAGE];
                ssize_t n = read(master, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EIO)
                        break;
                assert_true(n >= 0);
                if (n == 0)
                        break;
                output = realloc(output, size + (size_t) n + 1);
                assert_non_null(output);
                memcpy(output + size, buf, (size_t) n);
                size += (size_t) n;
                output[size] = '\0';
        }
        *ret_output = output ? output : strdup("");
        {
                int status = wait_exit(pid);

                if (status != 0 && status != 1) {
                        _cleanup_free_ char *text = NULL;
                        struct stat st;

                        assert_int_equal(fstat(err, &st), 0);
                        text = calloc(1, (size_t) st.st_size + 1);
                        assert_non_null(text);
                        assert_int_equal(pread(err, text, (size_t) st.st_size, 0), st.st_size);
                        fail_msg("smimectl %s to a terminal: status %d: %s", verb, status, text);
                }
                return status;
        }
}

static void test_smimectl_to_terminal(void **state) {
        _cleanup_free_ char *message = NULL, *file = NULL, *v = NULL, *d = NULL;
        char token[33];

        (void) state;
        random_hex(token, 16);
        message = plain_message("to smimectl's terminal", token);
        file = harness_write_file(harness, "for-the-terminal.eml", message, 0644);
        assert_non_null(file);

        /* Not signed: verify says so (1), decrypt opens it (0); both show it. */
        assert_int_equal(smimectl_on_terminal("verify", file, &v), 1);
        assert_string_equal(v, message);
        assert_int_equal(smimectl_on_terminal("decrypt", file, &d), 0);
        assert_string_equal(d, message);
        assert_smimed_alive();
}

/* ---- ---- */

static int setup(void **state) {
        _cleanup_free_ char *text = NULL;
        char *config;
        int r;

        (void) state;
        r = harness_new(&harness);
        if (r >= 0)
                r = harness_start_bus(harness);
        if (r >= 0)
                r = harness_bus_open(&bus);
        if (r < 0)
                return r;
        text = harness_config_text(harness, NULL);
        config = text ? harness_write_file(harness, "smimed.conf", text, 0644) : NULL;
        if (!config)
                return -ENOMEM;
        r = harness_start_smimed(harness, config, NULL);
        free(config);
        return r;
}

static int teardown(void **state) {
        int r = 0;

        (void) state;
        if (harness && harness->smimed_pid > 0)
                r = harness_stop_smimed(harness);
        bus = sd_bus_flush_close_unref(bus);
        harness = harness_free(harness);
        return r == 0 ? 0 : -1;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_opath_regular_file_as_input),
                cmocka_unit_test(test_opath_fifo_as_input),
                cmocka_unit_test(test_opath_as_output),
                cmocka_unit_test(test_blocking_pipes_block_nobody),
                cmocka_unit_test(test_caller_clears_nonblock_meanwhile),
                cmocka_unit_test(test_terminal_is_refused),
                cmocka_unit_test(test_dev_null),
                cmocka_unit_test(test_fuse_file_is_refused),
                cmocka_unit_test(test_smimectl_to_terminal),
        };

        if (getenv("SMIMED_TEST_FILTER"))
                cmocka_set_test_filter(getenv("SMIMED_TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
