/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* JSON input to check smimectl --json: json-c's strict parser, its result
 * as a plain tree. Numbers keep their text, so 64-bit values survive. */

typedef enum JsonType {
        JSON_NULL,
        JSON_BOOLEAN,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
} JsonType;

typedef struct JsonValue JsonValue;
struct JsonValue {
        JsonType type;
        bool boolean;
        char *text;             /* JSON_STRING: the decoded string; JSON_NUMBER: the literal */
        JsonValue **items;      /* JSON_ARRAY, JSON_OBJECT */
        char **keys;            /* JSON_OBJECT */
        size_t n;
};

/* The whole of text must be one value (whitespace around it is fine).
 * Returns NULL on a syntax error, with *ret_error (when given) at the byte
 * offset where it was found. */
JsonValue *json_parse(const char *text, size_t *ret_error);
JsonValue *json_value_free(JsonValue *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(JsonValue *, json_value_free);

/* The member key of an object; NULL when v is not an object or lacks it. */
const JsonValue *json_get(const JsonValue *v, const char *key);
/* Shorthands that return NULL / false when the member is missing or of
 * another type. */
const char *json_get_string(const JsonValue *v, const char *key);
bool json_get_bool(const JsonValue *v, const char *key, bool *ret);
