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

/* Writes the comma that separates this value from the previous one. */
static void json_value_begin(JsonWriter *w) {
        if (w->after_key)
                w->after_key = false;
        else if (w->need_comma)
                fputc(',', w->f);
}

static void json_value_end(JsonWriter *w) {
        w->need_comma = true;
        if (w->depth == 0)
                fputc('\n', w->f);
}

static void json_open(JsonWriter *w, char c) {
        json_value_begin(w);
        fputc(c, w->f);
        w->depth++;
        w->need_comma = false;
}

static void json_close(JsonWriter *w, char c) {
        fputc(c, w->f);
        w->depth--;
        json_value_end(w);
}

void json_begin_object(JsonWriter *w) {
        json_open(w, '{');
}

void json_end_object(JsonWriter *w) {
        json_close(w, '}');
}

void json_begin_array(JsonWriter *w) {
        json_open(w, '[');
}

void json_end_array(JsonWriter *w) {
        json_close(w, ']');
}

void json_key(JsonWriter *w, const char *key) {
        if (w->need_comma)
                fputc(',', w->f);
        json_write_string(w->f, key);
        fputc(':', w->f);
        w->after_key = true;
}

void json_string(JsonWriter *w, const char *value) {
        json_value_begin(w);
        if (value)
                json_write_string(w->f, value);
        else
                fputs("null", w->f);
        json_value_end(w);
}

void json_bool(JsonWriter *w, bool value) {
        json_value_begin(w);
        fputs(value ? "true" : "false", w->f);
        json_value_end(w);
}

void json_uint(JsonWriter *w, uint64_t value) {
        json_value_begin(w);
        fprintf(w->f, "%" PRIu64, value);
        json_value_end(w);
}

void json_null(JsonWriter *w) {
        json_value_begin(w);
        fputs("null", w->f);
        json_value_end(w);
}

void json_strv(JsonWriter *w, char *const *l) {
        json_begin_array(w);
        for (char *const *s = l; s && *s; s++)
                json_string(w, *s);
        json_end_array(w);
}

void json_key_string(JsonWriter *w, const char *key, const char *value) {
        json_key(w, key);
        json_string(w, value);
}

void json_key_bool(JsonWriter *w, const char *key, bool value) {
        json_key(w, key);
        json_bool(w, value);
}

void json_key_uint(JsonWriter *w, const char *key, uint64_t value) {
        json_key(w, key);
        json_uint(w, value);
}

void json_key_null(JsonWriter *w, const char *key) {
        json_key(w, key);
        json_null(w);
}

void json_key_strv(JsonWriter *w, const char *key, char *const *l) {
        json_key(w, key);
        json_strv(w, l);
}
