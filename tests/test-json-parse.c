/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON reader the tests use to check smimectl --json: json-c in its
 * strict mode, with one value and nothing after it, and no NUL in strings.
 * (json-c takes a lone surrogate escape, \ud800, as U+FFFD, and a raw tab
 * in a string; json-c's writer, which smimectl uses, writes neither.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "json-parse.h"

static void test_values(void **state) {
        _cleanup_(json_value_freep) JsonValue *v =
                json_parse(" {\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\","
                           " \"o\": {}, \"e\": []}\n",
                           NULL);
        const JsonValue *a;
        bool b;

        (void) state;
        assert_non_null(v);
        assert_int_equal(v->type, JSON_OBJECT);
        assert_int_equal(v->n, 4);
        a = json_get(v, "a");
        assert_non_null(a);
        assert_int_equal(a->type, JSON_ARRAY);
        assert_int_equal(a->n, 5);
        assert_string_equal(a->items[0]->text, "1");
        assert_string_equal(a->items[1]->text, "-2.5e3");
        assert_int_equal(a->items[2]->type, JSON_BOOLEAN);
        assert_true(a->items[2]->boolean);
        assert_false(a->items[3]->boolean);
        assert_int_equal(a->items[4]->type, JSON_NULL);
        assert_string_equal(json_get_string(v, "s"), "x\xc3\xa9\xf0\x9f\x98\x80\n\"");
        assert_int_equal(json_get(v, "o")->type, JSON_OBJECT);
        assert_int_equal(json_get(v, "e")->n, 0);
        assert_null(json_get(v, "missing"));
        assert_null(json_get_string(v, "a"));
        assert_false(json_get_bool(v, "s", &b));
}

static void test_errors(void **state) {
        const char *bad[] = {"",    "{",     "[1,]",       "{\"a\" 1}",   "01", "\"\\x\"", "\"a",
                             "tru", "[1] 2", "{\"a\":1,}", "\"\\u0000\"", "-",  "1."};

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                JsonValue *v = json_parse(bad[i], NULL);
                if (v)
                        fail_msg("parsed bad JSON: %s", bad[i]);
        }
        {
                size_t where = 0;
                assert_null(json_parse("[1, 2, x]", &where));
                assert_int_equal(where, 7);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_errors),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
