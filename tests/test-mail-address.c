/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the address lists of From: and Sender:, and of the check
 * that a message names only its signer's addresses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail-address.h"
#include "strv.h"

static char *joined(const char *value, int *ret) {
        _cleanup_(strv_freep) char **l = NULL;
        char *s = NULL;
        size_t size = 0;
        FILE *f;

        *ret = mail_address_list(value, &l);
        if (*ret < 0)
                return NULL;
        f = open_memstream(&s, &size);
        assert_non_null(f);
        for (char **a = l; *a; a++)
                fprintf(f, "%s%s", a == l ? "" : " ", *a);
        fclose(f);
        return s;
}

static void expect_list(const char *value, const char *expected) {
        _cleanup_free_ char *s = NULL;
        int r;

        s = joined(value, &r);
        if (r < 0)
                fail_msg("\"%s\": %s", value, strerror(-r));
        assert_string_equal(s, expected);
}

static void expect_bad(const char *value) {
        _cleanup_free_ char *s = NULL;
        int r;

        s = joined(value, &r);
        if (r != -EBADMSG)
                fail_msg("\"%s\" should be unreadable, got \"%s\" (%d)", value, strempty(s), r);
}

static void test_address_lists(void **state) {
        (void) state;
        expect_list("alice@example.com", "alice@example.com");
        expect_list("Alice <ALICE@Example.com>", "alice@example.com");
        expect_list("\"Doe, Bob\" <bob@example.com>, carol@example.com (Carol, at work)",
                    "bob@example.com carol@example.com");
        expect_list("Team: dave@example.com, erin@example.com;, frank@example.com",
                    "dave@example.com erin@example.com frank@example.com");
        expect_list("\"<mallory@example.com>\" <boss@example.com>", "boss@example.com");
        expect_list("(comment <evil@example.com>) support@example.com", "support@example.com");
        expect_list("undisclosed-recipients:;", "");
        expect_list("", "");
        expect_list("a@example.com, , b@example.com", "a@example.com b@example.com");
}

static void test_unreadable(void **state) {
        (void) state;
        expect_bad("not an address");
        expect_bad("Alice <alice@example.com> <bob@example.com>");
        expect_bad("Alice <alice@example.com> trailing@example.com");
        expect_bad("\"unterminated <alice@example.com>");
        expect_bad("Alice <alice@example.com");
        expect_bad("(unterminated comment alice@example.com");
        expect_bad("alice@example.com, bob");
}

static void test_too_many(void **state) {
        _cleanup_free_ char *value = NULL;
        _cleanup_(strv_freep) char **l = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&value, &size);

        (void) state;
        assert_non_null(f);
        for (unsigned i = 0; i <= MAIL_ADDRESS_LIST_MAX; i++)
                fprintf(f, "%su%u@example.com", i ? ", " : "", i);
        fclose(f);
        assert_int_equal(mail_address_list(value, &l), -E2BIG);
}

static MimeHeaders headers(const char *const *fields) {
        MimeHeaders h = {};

        for (; fields[0]; fields += 2) {
                h.items = realloc(h.items, (h.n + 1) * sizeof(MimeHeader));
                assert_non_null(h.items);
                h.items[h.n].name = strdup(fields[0]);
                assert_true(asprintf(&h.items[h.n].raw, "%s: %s", fields[0], fields[1]) > 0);
                h.n++;
        }
        return h;
}

static int check(const char *const *fields, char **ret_message) {
        _cleanup_(mime_headers_done) MimeHeaders h = headers(fields);
        char *allowed[] = { (char *) "mallory@example.com", (char *) "m@example.com", NULL };

        *ret_message = NULL;
        return mail_check_senders(&h, allowed, ret_message);
}

static void test_check_senders(void **state) {
        _cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL, *m5 = NULL, *m6 = NULL;

        (void) state;
        assert_int_equal(check((const char *const[]) { "Subject", "hi", NULL }, &m1), 0);
        assert_int_equal(check((const char *const[]) { "From", "Mallory <MALLORY@example.com>", "Sender",
                                                       "m@example.com", NULL },
                               &m2),
                         0);

        assert_int_equal(check((const char *const[]) { "From", "Boss <boss@example.com>", NULL }, &m3), -EPERM);
        assert_non_null(strstr(m3, "From:"));
        assert_non_null(strstr(m3, "boss@example.com"));
        assert_non_null(strstr(m3, "mallory@example.com"));

        assert_int_equal(check((const char *const[]) { "From", "mallory@example.com", "Sender", "boss@example.com",
                                                       NULL },
                               &m4),
                         -EPERM);
        assert_non_null(strstr(m4, "Sender:"));

        /* A second From: field is read too, and any letter case of the name. */
        assert_int_equal(check((const char *const[]) { "From", "mallory@example.com", "FROM", "boss@example.com",
                                                       NULL },
                               &m5),
                         -EPERM);
        assert_non_null(strstr(m5, "boss@example.com"));

        assert_int_equal(check((const char *const[]) { "From", "mallory at example", NULL }, &m6), -EBADMSG);
        assert_non_null(strstr(m6, "From:"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_address_lists),
                cmocka_unit_test(test_unreadable),
                cmocka_unit_test(test_too_many),
                cmocka_unit_test(test_check_senders),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
