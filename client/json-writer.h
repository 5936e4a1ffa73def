/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* smimectl --json, written with json-c: values are added in order, objects'
 * keys in the order written, and when the outermost value is complete it is
 * printed to f with a newline: one line, or indented with .pretty. */

#define JSON_WRITER_DEPTH_MAX 16

struct json_object;

typedef struct JsonWriter {
        FILE *f;
        bool pretty;
        unsigned depth;
        struct json_object *stack[JSON_WRITER_DEPTH_MAX]; /* the open objects and arrays */
        char *keys[JSON_WRITER_DEPTH_MAX];                /* the key each open one goes under */
        char *key;                                        /* the key of the next value */
} JsonWriter;

/* Frees what an unfinished document left. */
void json_writer_done(JsonWriter *w);

void json_begin_object(JsonWriter *w);
void json_end_object(JsonWriter *w);
void json_begin_array(JsonWriter *w);
void json_end_array(JsonWriter *w);

/* Values: in an array, or after json_key(). */
void json_key(JsonWriter *w, const char *key);
void json_string(JsonWriter *w, const char *value);  /* NULL writes null */
void json_boolean(JsonWriter *w, bool value);
void json_uint(JsonWriter *w, uint64_t value);
void json_null(JsonWriter *w);
void json_strv(JsonWriter *w, char *const *l);       /* array of strings; NULL is [] */

void json_key_string(JsonWriter *w, const char *key, const char *value);
void json_key_bool(JsonWriter *w, const char *key, bool value);
void json_key_uint(JsonWriter *w, const char *key, uint64_t value);
void json_key_null(JsonWriter *w, const char *key);
void json_key_strv(JsonWriter *w, const char *key, char *const *l);
