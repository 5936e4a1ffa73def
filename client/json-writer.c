/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json-writer.h"

void json_writer_done(JsonWriter *w) {
        if (w->depth > 0)
                json_object_put(w->stack[0]);
        for (unsigned i = 0; i < w->depth; i++)
                free(w->keys[i]);
        w->depth = 0;
        free(w->key);
        w->key = NULL;
}

static void json_print(JsonWriter *w, struct json_object *v) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
                    (w->pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);

        fputs(json_object_to_json_string_ext(v, flags), w->f);
        fputc('\n', w->f);
}

/* Puts v where the writer is: into the open array or object (under the
 * key just written), or, outermost, prints it. Takes v. */
static void json_add(JsonWriter *w, struct json_object *v) {
        struct json_object *top;

        if (w->depth == 0) {
                json_print(w, v);
                json_object_put(v);
                return;
        }
        top = w->stack[w->depth - 1];
        if (json_object_is_type(top, json_type_array))
                json_object_array_add(top, v);
        else {
                json_object_object_add(top, w->key ? w->key : "", v);
                free(w->key);
                w->key = NULL;
        }
}

/* The key the container goes under waits with it until it is closed. */
static void json_open(JsonWriter *w, struct json_object *v) {
        if (w->depth >= JSON_WRITER_DEPTH_MAX) {
                json_object_put(v);
                return;
        }
        w->keys[w->depth] = w->key;
        w->key = NULL;
        w->stack[w->depth++] = v;
}

static void json_close(JsonWriter *w) {
        struct json_object *v;

        if (w->depth == 0)
                return;
        v = w->stack[--w->depth];
        free(w->key);
        w->key = w->keys[w->depth];
        json_add(w, v);
}

void json_begin_object(JsonWriter *w) {
        json_open(w, json_object_new_object());
}

void json_end_object(JsonWriter *w) {
        json_close(w);
}

void json_begin_array(JsonWriter *w) {
        json_open(w, json_object_new_array());
}

void json_end_array(JsonWriter *w) {
        json_close(w);
}

void json_key(JsonWriter *w, const char *key) {
        free(w->key);
        w->key = strdup(key);
}

void json_string(JsonWriter *w, const char *value) {
        json_add(w, value ? json_object_new_string(value) : NULL);
}

void json_boolean(JsonWriter *w, bool value) {
        json_add(w, json_object_new_boolean(value));
}

void json_uint(JsonWriter *w, uint64_t value) {
        json_add(w, json_object_new_uint64(value));
}

void json_null(JsonWriter *w) {
        json_add(w, NULL);
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
        json_boolean(w, value);
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
