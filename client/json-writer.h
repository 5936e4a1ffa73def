/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Just enough JSON output for smimectl --json: one object per line, keys in
 * the order written. */

typedef struct JsonWriter {
        FILE *f;
        unsigned depth;
        bool need_comma;
} JsonWriter;

void json_begin_object(JsonWriter *w);
void json_end_object(JsonWriter *w);
void json_key_string(JsonWriter *w, const char *key, const char *value);
void json_key_bool(JsonWriter *w, const char *key, bool value);
void json_key_uint(JsonWriter *w, const char *key, uint64_t value);
void json_write_string(FILE *f, const char *s);
