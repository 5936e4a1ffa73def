/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "terminal-util.h"

/* Whether stdout and stderr were terminals before a pager took stdout over. */
static int stdout_tty = -1, stderr_tty = -1;

void terminal_setup(void) {
        (void) setlocale(LC_ALL, "");
        stdout_tty = isatty(STDOUT_FILENO) > 0;
        stderr_tty = isatty(STDERR_FILENO) > 0;
}

bool terminal_utf8(void) {
        const char *set = nl_langinfo(CODESET);

        return set && (streq(set, "UTF-8") || streq(set, "utf8"));
}

bool terminal_is_tty(FILE *f) {
        if (f == stdout && stdout_tty >= 0)
                return stdout_tty;
        if (f == stderr && stderr_tty >= 0)
                return stderr_tty;
        return isatty(fileno(f)) > 0;
}

/* yes/no from the environment; -1 when unset or neither. */
static int env_boolean(const char *name) {
        const char *v = getenv(name);

        if (!v)
                return -1;
        if (streq(v, "1") || streq(v, "yes") || streq(v, "true") || streq(v, "on"))
                return 1;
        if (streq(v, "0") || streq(v, "no") || streq(v, "false") || streq(v, "off"))
                return 0;
        return -1;
}

bool terminal_emoji(FILE *f) {
        int forced = env_boolean("SMIMECTL_EMOJI");

        if (forced >= 0)
                return forced;
        return terminal_utf8() && terminal_is_tty(f);
}

bool terminal_colors(FILE *f) {
        int forced = env_boolean("SMIMECTL_COLORS");
        const char *term = getenv("TERM");

        if (forced >= 0)
                return forced;
        if (getenv("NO_COLOR"))
                return false;
        return terminal_is_tty(f) && !(term && streq(term, "dumb"));
}

const char *glyph(FILE *f, Glyph g) {
        static const char *const utf8[] = {
                [GLYPH_ELLIPSIS] = "…", [GLYPH_DASH] = " — ",   [GLYPH_YES] = "✅",       [GLYPH_NO] = "❌",
                [GLYPH_LOCKED] = "🔒",   [GLYPH_UNLOCKED] = "🔓", [GLYPH_UNCHECKED] = "➖",
        };
        static const char *const ascii[] = {
                [GLYPH_ELLIPSIS] = "...", [GLYPH_DASH] = " - ",  [GLYPH_YES] = "yes",    [GLYPH_NO] = "no",
                [GLYPH_LOCKED] = "",      [GLYPH_UNLOCKED] = "", [GLYPH_UNCHECKED] = "",
        };

        if (g >= GLYPH_YES)
                return terminal_emoji(f) ? utf8[g] : ascii[g];
        return terminal_utf8() ? utf8[g] : ascii[g];
}

void print_emoji(FILE *f, Glyph g) {
        if (terminal_emoji(f)) {
                fputs(glyph(f, g), f);
                fputc(' ', f);
        }
}

const char *color_on(FILE *f, Color c) {
        static const char *const codes[] = {
                [COLOR_GOOD] = "\x1b[0;32m",
                [COLOR_BAD] = "\x1b[0;1;31m",
                [COLOR_WARN] = "\x1b[0;33m",
        };

        return terminal_colors(f) ? codes[c] : "";
}

const char *color_off(FILE *f) {
        return terminal_colors(f) ? "\x1b[0m" : "";
}

Color status_color(const char *status) {
        if (!status || streq(status, "valid"))
                return COLOR_GOOD;
        if (streq(status, "revoked") || streq(status, "expired") || streq(status, "invalid") ||
            streq(status, "bad-signature"))
                return COLOR_BAD;
        return COLOR_WARN;
}
