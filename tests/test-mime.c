/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the header split and the canonical 7-bit entity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "mime.h"

static int memfd(void *userdata) {
        (void) userdata;
        return memfd_create("test", MFD_CLOEXEC);
}

static int fd_with(const char *text, size_t len) {
        int fd = memfd(NULL);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static char *fd_text(int fd) {
        off_t size = lseek(fd, 0, SEEK_END);
        char *s = calloc(1, (size_t) size + 1);

        assert_int_equal(pread(fd, s, (size_t) size, 0), size);
        return s;
}

typedef struct Result {
        int r;
        char *outer;
        char *entity;
        char *message;
} Result;

static void result_done(Result *res) {
        free(res->outer);
        free(res->entity);
        free(res->message);
}

/* Splits a message and writes its canonical entity, as Sign will. */
static Result canonicalize_len(const char *input, size_t len) {
        LineReader *in = malloc(sizeof(LineReader));
        Writer *out = malloc(sizeof(Writer));
        MimeHeaders all = {}, outer = {}, content = {};
        int in_fd = fd_with(input, len), outer_fd = memfd(NULL), out_fd = memfd(NULL);
        Result res = {};

        line_reader_init(in, in_fd);
        res.r = mime_headers_read(in, &all, &res.message);
        if (res.r >= 0) {
                assert_int_equal(mime_headers_split(&all, &outer, &content), 0);
                writer_init(out, outer_fd);
                mime_headers_write(out, &outer);
                assert_int_equal(writer_flush(out), 0);
                writer_init(out, out_fd);
                res.r = mime_write_canonical_entity(in, &content, out, memfd, NULL, &res.message);
        }
        res.outer = fd_text(outer_fd);
        res.entity = fd_text(out_fd);
        mime_headers_done(&all);
        mime_headers_done(&outer);
        mime_headers_done(&content);
        close(in_fd);
        close(outer_fd);
        close(out_fd);
        free(in);
        free(out);
        return res;
}

static Result canonicalize(const char *input) {
        return canonicalize_len(input, strlen(input));
}

/* A message saved from an mbox starts with its envelope line: dropped. Only
 * the first line: later, "From " is not a header field. */
static void test_mbox_envelope_line_dropped(void **state) {
        Result r = canonicalize("From alice@example.com Sat Nov 28 10:00:00 2026\n"
                                "From: Alice <alice@example.com>\n"
                                "Subject: Hello\n"
                                "\n"
                                "Hi.\n");
        Result later = canonicalize("Subject: Hello\nFrom alice@example.com Sat Nov 28 10:00:00 2026\n\nHi.\n");

        (void) state;
        assert_int_equal(r.r, 0);
        assert_string_equal(r.outer, "From: Alice <alice@example.com>\r\nSubject: Hello\r\n");
        assert_int_equal(later.r, -EBADMSG);
        assert_non_null(strstr(later.message, "line 2 is not a header field"));
        result_done(&r);
        result_done(&later);
}

static void test_split_keeps_outer_headers_in_order(void **state) {
        Result r = canonicalize("From: Alice <alice@example.com>\n"
                                "To: bob@example.com,\n"
                                "  carol@example.com\n"
                                "Subject: Hello\n"
                                "MIME-Version: 1.0\n"
                                "Content-Type: text/plain; charset=us-ascii\n"
                                "Date: Sat, 28 Nov 2026 10:00:00 +0000\n"
                                "\n"
                                "Hi Bob,\n"
                                "see you.\n");

        (void) state;
        assert_int_equal(r.r, 0);
        assert_string_equal(r.outer, "From: Alice <alice@example.com>\r\n"
                                     "To: bob@example.com,\r\n"
                                     "  carol@example.com\r\n"
                                     "Subject: Hello\r\n"
                                     "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n");
        assert_string_equal(r.entity, "Content-Type: text/plain; charset=us-ascii\r\n"
                                      "\r\n"
                                      "Hi Bob,\r\n"
                                      "see you.\r\n");
        result_done(&r);
}

static void test_8bit_text_becomes_base64(void **state) {
        Result r = canonicalize("Subject: x\n"
                                "Content-Type: text/plain; charset=utf-8\n"
                                "Content-Transfer-Encoding: 8bit\n"
                                "\n"
                                "Gr\xc3\xbc\xc3\x9f" "e\n");

        (void) state;
        assert_int_equal(r.r, 0);
        /* "Grüße\r\n" */
        assert_string_equal(r.entity, "Content-Type: text/plain; charset=utf-8\r\n"
                                      "Content-Transfer-Encoding: base64\r\n"
                                      "\r\n"
                                      "R3LDvMOfZQ0K\r\n");
        result_done(&r);
}

static void test_no_content_type(void **state) {
        Result plain = canonicalize("Subject: x\n\nhello\n");
        Result utf8 = canonicalize("Subject: x\n\nh\xc3\xa9llo");

        (void) state;
        assert_string_equal(plain.entity, "Content-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\n");
        assert_string_equal(utf8.entity, "Content-Type: text/plain; charset=utf-8\r\n"
                                         "Content-Transfer-Encoding: base64\r\n\r\n"
                                         "aMOpbGxv\r\n");
        result_done(&plain);
        result_done(&utf8);
}

static void test_multipart_with_8bit_part_and_binary_attachment(void **state) {
        static const char input[] =
                "From: a@example.com\r\n"
                "Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
                "\r\n"
                "preamble\r\n"
                "--XYZ\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n"
                "\r\n"
                "\xc3\xa4\r\n"
                "--XYZ\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Content-Transfer-Encoding: binary\r\n"
                "\r\n"
                "\x00\x01\n\x02\r\n"
                "--XYZ\r\n"
                "Content-Type: image/png\r\n"
                "Content-Transfer-Encoding: base64\r\n"
                "\r\n"
                "iVBORw0KGgo=\r\n"
                "--XYZ--\r\n"
                "epilogue\r\n";
        Result r = canonicalize_len(input, sizeof(input) - 1);

        (void) state;
        assert_int_equal(r.r, 0);
        assert_string_equal(r.outer, "From: a@example.com\r\n");
        assert_string_equal(r.entity,
                            "Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
                            "\r\n"
                            "preamble\r\n"
                            "--XYZ\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Transfer-Encoding: base64\r\n"
                            "\r\n"
                            "w6Q=\r\n" /* "ä": the line end before the delimiter belongs to the delimiter */
                            "--XYZ\r\n"
                            "Content-Type: application/octet-stream\r\n"
                            "Content-Transfer-Encoding: base64\r\n"
                            "\r\n"
                            "AAEKAg==\r\n" /* the bytes 00 01 0a 02, untouched */
                            "--XYZ\r\n"
                            "Content-Type: image/png\r\n"
                            "Content-Transfer-Encoding: base64\r\n"
                            "\r\n"
                            "iVBORw0KGgo=\r\n"
                            "--XYZ--\r\n"
                            "epilogue\r\n");
        result_done(&r);
}

static void test_nested_multipart_and_missing_close(void **state) {
        Result r = canonicalize("Content-Type: multipart/mixed; boundary=outer\n"
                                "\n"
                                "--outer\n"
                                "Content-Type: multipart/alternative; boundary=\"inner\"\n"
                                "\n"
                                "--inner\n"
                                "Content-Type: text/plain\n"
                                "\n"
                                "plain\n"
                                "--outer--\n");

        (void) state;
        assert_int_equal(r.r, 0);
        assert_string_equal(r.entity, "Content-Type: multipart/mixed; boundary=outer\r\n"
                                      "\r\n"
                                      "--outer\r\n"
                                      "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
                                      "\r\n"
                                      "--inner\r\n"
                                      "Content-Type: text/plain\r\n"
                                      "\r\n"
                                      "plain\r\n"
                                      "--inner--\r\n"
                                      "--outer--\r\n");
        result_done(&r);
}

static void test_long_line_becomes_base64(void **state) {
        char *input = malloc(3000);
        Result r;

        (void) state;
        strcpy(input, "Content-Type: text/plain\n\n");
        memset(input + strlen(input), 'a', 1500);
        input[26 + 1500] = '\0';
        r = canonicalize(input);
        assert_int_equal(r.r, 0);
        assert_non_null(strstr(r.entity, "Content-Transfer-Encoding: base64\r\n"));
        result_done(&r);
        free(input);
}

static void test_not_a_message(void **state) {
        Result a = canonicalize("this is not a header\n\nbody\n");
        Result b = canonicalize(" continuation first\n\n");

        (void) state;
        assert_int_equal(a.r, -EBADMSG);
        assert_non_null(strstr(a.message, "line 1 is not a header field"));
        assert_int_equal(b.r, -EBADMSG);
        result_done(&a);
        result_done(&b);
}

static void test_deep_nesting_refused(void **state) {
        char *input = calloc(1, 100000), *p = input;
        Result r;

        (void) state;
        for (int i = 0; i < MIME_MAX_DEPTH + 2; i++)
                p += sprintf(p, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
        strcpy(p, "Content-Type: text/plain\n\nx\n");
        r = canonicalize(input);
        assert_int_equal(r.r, -EBADMSG);
        assert_non_null(strstr(r.message, "nested deeper"));
        result_done(&r);
        free(input);
}

static void test_parameters(void **state) {
        char *a = mime_parameter("multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; "
                                 "boundary=\"a;b\\\"c\"",
                                 "boundary");
        char *b = mime_parameter("text/plain; Charset = UTF-8", "charset");
        char *c = mime_parameter("text/plain", "charset");
        char *t = mime_content_type("Multipart/Mixed ; boundary=x");

        (void) state;
        assert_string_equal(a, "a;b\"c");
        assert_string_equal(b, "UTF-8");
        assert_null(c);
        assert_string_equal(t, "multipart/mixed");
        free(a);
        free(b);
        free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_split_keeps_outer_headers_in_order),
                cmocka_unit_test(test_mbox_envelope_line_dropped),
                cmocka_unit_test(test_8bit_text_becomes_base64),
                cmocka_unit_test(test_no_content_type),
                cmocka_unit_test(test_multipart_with_8bit_part_and_binary_attachment),
                cmocka_unit_test(test_nested_multipart_and_missing_close),
                cmocka_unit_test(test_long_line_becomes_base64),
                cmocka_unit_test(test_not_a_message),
                cmocka_unit_test(test_deep_nesting_refused),
                cmocka_unit_test(test_parameters),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
