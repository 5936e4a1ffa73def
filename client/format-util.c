/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "format-util.h"
#include "macro.h"
#include "terminal-util.h"

#define USEC_PER_SEC 1000000ULL

static bool to_tm(uint64_t usec, struct tm *ret) {
        time_t t = (time_t) (usec / USEC_PER_SEC);

        return usec > 0 && (uint64_t) t == usec / USEC_PER_SEC && gmtime_r(&t, ret);
}

/* strftime() formats are literals here, so -Wformat-nonliteral can check them. */
#define FORMAT_TIME(buf, usec, format)                                                  \
        ({                                                                              \
                struct tm _tm;                                                          \
                to_tm(usec, &_tm) && strftime(buf, FORMAT_TIME_MAX, format, &_tm) > 0 \
                        ? (const char *) buf                                            \
                        : NULL;                                                         \
        })

const char *format_iso8601(char buf[static FORMAT_TIME_MAX], uint64_t usec) {
        return FORMAT_TIME(buf, usec, "%Y-%m-%dT%H:%M:%SZ");
}

const char *format_date(char buf[static FORMAT_TIME_MAX], uint64_t usec) {
        return FORMAT_TIME(buf, usec, "%Y-%m-%d");
}

const char *format_datetime(char buf[static FORMAT_TIME_MAX], uint64_t usec) {
        return FORMAT_TIME(buf, usec, "%Y-%m-%d %H:%M:%S UTC");
}

static int is_control(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

/* The daemon's punctuation, for a locale without UTF-8. */
static const struct {
        const char *utf8, *ascii;
} punctuation[] = {
        {"…", "..."},
        {"·", "-"},
        {"—", "--"},
        {"–", "-"},
};

/* Marks and overrides that reorder what follows on screen (Trojan Source). */
static bool is_bidi_control(wchar_t c) {
        return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
               (c >= 0x2066 && c <= 0x2069);
}

static size_t put_bytes(FILE *f, const char *p, size_t n) {
        if (f)
                fwrite(p, 1, n, f);
        return n;
}

/* What print_text() writes and text_width() counts: ASCII as it is,
 * control characters as \xNN, characters the locale cannot print and
 * bidirectional controls (a right-to-left override in a subject) as \uNNNN; in a UTF-8 locale
 * other characters as they are, counting their screen columns (wcwidth), in
 * another the daemon's punctuation in ASCII and other bytes as they are. */
static size_t put_text(FILE *f, const char *s) {
        bool utf8 = terminal_utf8();
        const char *p = s ? s : "";
        size_t left = strlen(p), columns = 0;
        mbstate_t state = {};

        while (left > 0) {
                unsigned char c = (unsigned char) *p;
                size_t n = 1;
                wchar_t wc;

                if (is_control(c)) {
                        if (f)
                                fprintf(f, "\\x%02x", c);
                        columns += 4;
                } else if (c < 0x80)
                        columns += put_bytes(f, p, 1);
                else if (!utf8) {
                        size_t i;

                        for (i = 0; i < ELEMENTSOF(punctuation); i++)
                                if (strncmp(p, punctuation[i].utf8, strlen(punctuation[i].utf8)) == 0)
                                        break;
                        if (i < ELEMENTSOF(punctuation)) {
                                n = strlen(punctuation[i].utf8);
                                columns += put_bytes(f, punctuation[i].ascii, strlen(punctuation[i].ascii));
                        } else
                                columns += put_bytes(f, p, 1);
                } else {
                        n = mbrtowc(&wc, p, left, &state);
                        if (n == (size_t) -1 || n == (size_t) -2 || n == 0) {
                                /* not UTF-8 after all: the byte */
                                state = (mbstate_t){};
                                n = 1;
                                columns += put_bytes(f, p, 1);
                        } else if (wcwidth(wc) < 0 || is_bidi_control(wc)) {
                                if (f)
                                        fprintf(f, "\\u%04x", (unsigned) wc);
                                columns += 6;
                        } else {
                                put_bytes(f, p, n);
                                columns += (size_t) wcwidth(wc);
                        }
                }
                p += n;
                left -= n;
        }
        return columns;
}

void print_text(FILE *f, const char *s) {
        (void) put_text(f, s);
}

size_t text_width(const char *s) {
        return put_text(NULL, s);
}

void print_padded(FILE *f, const char *s, size_t width) {
        for (size_t n = put_text(f, s); n < width; n++)
                fputc(' ', f);
}

static bool identifier_cut(FILE *f, const char *s, size_t digits) {
        return terminal_is_tty(f) && strlen(s) > digits;
}

size_t identifier_width(FILE *f, const char *s, size_t digits) {
        s = s ? s : "";
        if (identifier_cut(f, s, digits)) {
                char head[digits + 1];

                memcpy(head, s, digits);
                head[digits] = '\0';
                return text_width(head) + text_width(glyph(f, GLYPH_ELLIPSIS));
        }
        return text_width(s);
}

void print_identifier(FILE *f, const char *s, size_t digits, size_t width) {
        size_t n;

        s = s ? s : "";
        if (identifier_cut(f, s, digits)) {
                char head[digits + 1];

                memcpy(head, s, digits);
                head[digits] = '\0';
                n = put_text(f, head) + put_text(f, glyph(f, GLYPH_ELLIPSIS));
        } else
                n = put_text(f, s);
        for (; n < width; n++)
                fputc(' ', f);
}
