/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

/* How smimectl writes for where its output goes, as systemd's tools do:
 * UTF-8 only when the locale's charset is UTF-8 (terminal_setup() must have
 * run setlocale()); emoji and colour only on a terminal, and colour not with
 * NO_COLOR= or TERM=dumb. SMIMECTL_EMOJI= and SMIMECTL_COLORS= (yes/no)
 * override the guess. */

void terminal_setup(void);

bool terminal_utf8(void);
bool terminal_is_tty(FILE *f);
bool terminal_emoji(FILE *f);
bool terminal_colors(FILE *f);

typedef enum Glyph {
        GLYPH_ELLIPSIS,  /* "…" or "..." */
        GLYPH_DASH,      /* " — " or " - " */
        GLYPH_YES,       /* "✅" or "yes" */
        GLYPH_NO,        /* "❌" or "no" */
        GLYPH_LOCKED,    /* "🔒" or "" */
        GLYPH_UNLOCKED,  /* "🔓" or "" */
        GLYPH_UNCHECKED, /* "➖" or "" */
} Glyph;

/* The glyph for f: the emoji ones need terminal_emoji(f), the others
 * terminal_utf8(). */
const char *glyph(FILE *f, Glyph g);
/* An emoji glyph and a space when f gets emoji, else nothing: for lines
 * whose words say it all. */
void print_emoji(FILE *f, Glyph g);

typedef enum Color {
        COLOR_GOOD,
        COLOR_BAD,
        COLOR_WARN,
} Color;

/* An ANSI colour on, and off again; "" when f gets no colours. */
const char *color_on(FILE *f, Color c);
const char *color_off(FILE *f);
/* The colour a certificate status word is shown in. */
Color status_color(const char *status);
