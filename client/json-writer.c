/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "json-writer.h"

void json_write_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (*p < 0x20)
                                fprintf(f, "\\u%04x", *p);
                        else
                                fputc(*p, f);
                }
        }
        fputc('"', f);
}

static void json_key(JsonWriter *w, const char *key) {
        if (w->need_comma)
                fputc(',', w->f);
        json_write_string(w->f, key);
        fputc(':', w->f);
        w->need_comma = true;
}

void json_begin_object(JsonWriter *w) {
        fputc('{', w->f);
        w->depth++;
        w->need_comma = false;
}

void json_end_object(JsonWriter *w) {
        fputc('}', w->f);
        w->need_comma = true;
        if (--w->depth == 0)
                fputc('\n', w->f);
}

void json_key_string(JsonWriter *w, const char *key, const char *value) {
        json_key(w, key);
        if (value)
                json_write_string(w->f, value);
        else
                fputs("null", w->f);
}

void json_key_bool(JsonWriter *w, const char *key, bool value) {
        json_key(w, key);
        fputs(value ? "true" : "false", w->f);
}

void json_key_uint(JsonWriter *w, const char *key, uint64_t value) {
        json_key(w, key);
        fprintf(w->f, "%" PRIu64, value);
}
