/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Just enough JSON output for smimectl --json: objects, arrays, strings,
 * numbers, booleans and null, keys in the order written. The outermost value
 * ends with a newline, so each document is one line. */

typedef struct JsonWriter {
        FILE *f;
        unsigned depth;
        bool need_comma;  /* a value was written at this level */
        bool after_key;   /* the next value belongs to the key just written */
} JsonWriter;

void json_begin_object(JsonWriter *w);
void json_end_object(JsonWriter *w);
void json_begin_array(JsonWriter *w);
void json_end_array(JsonWriter *w);

/* Values: in an array, or after json_key(). */
void json_key(JsonWriter *w, const char *key);
void json_string(JsonWriter *w, const char *value);  /* NULL writes null */
void json_bool(JsonWriter *w, bool value);
void json_uint(JsonWriter *w, uint64_t value);
void json_null(JsonWriter *w);
void json_strv(JsonWriter *w, char *const *l);       /* array of strings; NULL is [] */

void json_key_string(JsonWriter *w, const char *key, const char *value);
void json_key_bool(JsonWriter *w, const char *key, bool value);
void json_key_uint(JsonWriter *w, const char *key, uint64_t value);
void json_key_null(JsonWriter *w, const char *key);
void json_key_strv(JsonWriter *w, const char *key, char *const *l);

void json_write_string(FILE *f, const char *s);
