/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of common/strv.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "strv.h"

static void test_join(void **state) {
        char *empty[] = {NULL}, *one[] = {"a@example.com", NULL},
             *three[] = {"a@example.com", "", "c@example.com", NULL};
        _cleanup_free_ char *n = strv_join(NULL, ", "), *e = strv_join(empty, ", "), *o = strv_join(one, ", "),
                            *t = strv_join(three, ", "), *bare = strv_join(three, "");

        (void) state;
        assert_string_equal(n, "");
        assert_string_equal(e, "");
        assert_string_equal(o, "a@example.com");
        assert_string_equal(t, "a@example.com, , c@example.com");
        assert_string_equal(bare, "a@example.comc@example.com");
}

static void test_copy_extend_contains(void **state) {
        _cleanup_(strv_freep) char **l = NULL, **copy = NULL;

        (void) state;
        assert_int_equal(strv_extend(&l, "x"), 0);
        assert_int_equal(strv_extend(&l, "y"), 0);
        copy = strv_copy(l);
        assert_non_null(copy);
        assert_int_equal(strv_length(copy), 2);
        assert_true(strv_contains(copy, "y"));
        assert_false(strv_contains(copy, "z"));
        assert_ptr_not_equal(copy[0], l[0]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_join),
                cmocka_unit_test(test_copy_extend_contains),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
