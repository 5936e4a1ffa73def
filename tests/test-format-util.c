/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimectl's text output: screen widths, escapes and the ASCII fallbacks,
 * in a UTF-8 locale and in C. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "format-util.h"
#include "macro.h"
#include "terminal-util.h"

/* What print_text() writes for s. */
static char *printed(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        print_text(f, s);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void expect_printed(const char *s, const char *want) {
        _cleanup_free_ char *got = printed(s);

        if (!streq(got, want))
                fail_msg("print_text(\"%s\"): \"%s\", expected \"%s\"", s, got, want);
        /* The width is what was written, for ASCII output. */
        if (strspn(want, " !\"#$%&'()*+,-./"
                         "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~") ==
            strlen(want))
                assert_int_equal(text_width(s), strlen(want));
}

static void use_locale(const char *name) {
        assert_non_null(setlocale(LC_ALL, name));
}

static void test_utf8_widths(void **state) {
        (void) state;
        use_locale("C.UTF-8");
        assert_true(terminal_utf8());
        assert_int_equal(text_width("alice@example.com"), 17);
        assert_int_equal(text_width("Jürgen"), 6); /* one column, two bytes */
        assert_int_equal(text_width("日本語"), 6); /* two columns each */
        assert_int_equal(text_width("✅ sign"), 7); /* an emoji is two columns */
        assert_int_equal(text_width("a · b …"), 7);
        assert_int_equal(text_width(NULL), 0);
        /* UTF-8 as it is */
        expect_printed("Jürgen · 日本 …", "Jürgen · 日本 …");
}

static void test_escapes(void **state) {
        (void) state;
        use_locale("C.UTF-8");
        /* control characters cannot move the cursor or forge a line */
        expect_printed("evil\x1b[2Jname\nFAKE", "evil\\x1b[2Jname\\x0aFAKE");
        assert_int_equal(text_width("a\nb"), 6);
        /* a right-to-left override cannot turn the text around */
        expect_printed("abc\u202Efdp.exe", "abc\\u202efdp.exe");
        assert_int_equal(text_width("\u202E"), 6);
        /* bytes that are not UTF-8 are passed, one column each */
        assert_int_equal(text_width("a\xff"), 2);
}

static void test_c_locale_ascii(void **state) {
        (void) state;
        use_locale("C");
        assert_false(terminal_utf8());
        expect_printed("Alice <alice@example.com> · issued by CA · SHA-256 01:02:…",
                       "Alice <alice@example.com> - issued by CA - SHA-256 01:02:...");
        expect_printed("failed — no key", "failed -- no key");
        /* the glyphs smimectl writes itself */
        assert_string_equal(glyph(stdout, GLYPH_ELLIPSIS), "...");
        assert_string_equal(glyph(stdout, GLYPH_DASH), " - ");
}

/* Emoji only when asked for or on a terminal in a UTF-8 locale; stdout
 * here is not a terminal under meson. */
static void test_emoji_choice(void **state) {
        (void) state;
        unsetenv("SMIMECTL_EMOJI");
        setenv("LC_ALL", "C.UTF-8", 1);
        terminal_setup(); /* setlocale(LC_ALL, ""): C.UTF-8 */
        assert_true(terminal_utf8());
        if (!terminal_is_tty(stdout)) {
                assert_false(terminal_emoji(stdout));
                assert_string_equal(glyph(stdout, GLYPH_YES), "yes");
                assert_string_equal(glyph(stdout, GLYPH_NO), "no");
        }
        setenv("SMIMECTL_EMOJI", "yes", 1);
        assert_true(terminal_emoji(stdout));
        assert_string_equal(glyph(stdout, GLYPH_YES), "✅");
        setenv("SMIMECTL_EMOJI", "no", 1);
        assert_false(terminal_emoji(stdout));
        unsetenv("SMIMECTL_EMOJI");

        setenv("SMIMECTL_COLORS", "yes", 1);
        assert_string_equal(color_on(stdout, COLOR_BAD), "\x1b[0;1;31m");
        assert_string_equal(color_off(stdout), "\x1b[0m");
        unsetenv("SMIMECTL_COLORS");
        setenv("NO_COLOR", "1", 1);
        assert_string_equal(color_on(stdout, COLOR_BAD), "");
        unsetenv("NO_COLOR");
        assert_int_equal(status_color("valid"), COLOR_GOOD);
        assert_int_equal(status_color("revoked"), COLOR_BAD);
        assert_int_equal(status_color("untrusted"), COLOR_WARN);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_utf8_widths),
                cmocka_unit_test(test_escapes),
                cmocka_unit_test(test_c_locale_ascii),
                cmocka_unit_test(test_emoji_choice),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
