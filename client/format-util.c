/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <time.h>

#include "format-util.h"

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

void print_text(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
                if (is_control(*p))
                        fprintf(f, "\\x%02x", *p);
                else
                        fputc(*p, f);
        }
}

size_t text_width(const char *s) {
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
                if (is_control(*p))
                        n += 4;
                else if ((*p & 0xc0) != 0x80) /* not a UTF-8 continuation byte */
                        n++;
        }
        return n;
}

void print_padded(FILE *f, const char *s, size_t width) {
        print_text(f, s);
        for (size_t n = text_width(s); n < width; n++)
                fputc(' ', f);
}
