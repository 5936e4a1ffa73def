/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json-parse.h"

static JsonValue *value_new(JsonType type) {
        JsonValue *v = calloc(1, sizeof(JsonValue));

        if (v)
                v->type = type;
        return v;
}

JsonValue *json_value_free(JsonValue *v) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < v->n; i++) {
                json_value_free(v->items[i]);
                if (v->keys)
                        free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
        free(v->text);
        return mfree(v);
}

/* json-c's tree as ours. A string with a NUL in it (\u0000) is refused:
 * nothing smimectl writes has one. */
static JsonValue *convert(struct json_object *o) {
        JsonValue *v;

        switch (json_object_get_type(o)) {
        case json_type_null:
                return value_new(JSON_NULL);
        case json_type_boolean:
                v = value_new(JSON_BOOLEAN);
                if (v)
                        v->boolean = json_object_get_boolean(o);
                return v;
        case json_type_int:
        case json_type_double:
                /* the number as it was written (json-c keeps a parsed double's text) */
                v = value_new(JSON_NUMBER);
                if (v && !(v->text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN))))
                        v = json_value_free(v);
                return v;
        case json_type_string:
                if ((size_t) json_object_get_string_len(o) != strlen(json_object_get_string(o)))
                        return NULL;
                v = value_new(JSON_STRING);
                if (v && !(v->text = strdup(json_object_get_string(o))))
                        v = json_value_free(v);
                return v;
        case json_type_array: {
                size_t n = json_object_array_length(o);

                v = value_new(JSON_ARRAY);
                if (!v || (n > 0 && !(v->items = calloc(n, sizeof(JsonValue *)))))
                        return json_value_free(v);
                for (size_t i = 0; i < n; i++) {
                        v->items[i] = convert(json_object_array_get_idx(o, i));
                        if (!v->items[i])
                                return json_value_free(v);
                        v->n++;
                }
                return v;
        }
        case json_type_object: {
                size_t n = (size_t) json_object_object_length(o);

                v = value_new(JSON_OBJECT);
                if (!v || (n > 0 &&
                           (!(v->items = calloc(n, sizeof(JsonValue *))) || !(v->keys = calloc(n, sizeof(char *))))))
                        return json_value_free(v);
                json_object_object_foreach(o, key, member) {
                        v->keys[v->n] = strdup(key);
                        v->items[v->n] = convert(member);
                        if (!v->keys[v->n] || !v->items[v->n]) {
                                free(v->keys[v->n]);
                                json_value_free(v->items[v->n]);
                                return json_value_free(v);
                        }
                        v->n++;
                }
                return v;
        }
        }
        return NULL;
}

JsonValue *json_parse(const char *text, size_t *ret_error) {
        struct json_tokener *tok = json_tokener_new();
        struct json_object *o = NULL;
        JsonValue *v = NULL;
        size_t len = strlen(text), end;

        if (!tok)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, text, (int) len);
        end = json_tokener_get_parse_end(tok);
        if (o && json_tokener_get_error(tok) == json_tokener_success) {
                /* one value: only whitespace after it */
                end += strspn(text + end, " \t\r\n");
                if (end == len)
                        v = convert(o);
        }
        if (!v && ret_error)
                *ret_error = end;
        json_object_put(o);
        json_tokener_free(tok);
        return v;
}

const JsonValue *json_get(const JsonValue *v, const char *key) {
        if (!v || v->type != JSON_OBJECT)
                return NULL;
        for (size_t i = 0; i < v->n; i++)
                if (streq(v->keys[i], key))
                        return v->items[i];
        return NULL;
}

const char *json_get_string(const JsonValue *v, const char *key) {
        const JsonValue *m = json_get(v, key);

        return m && m->type == JSON_STRING ? m->text : NULL;
}

bool json_get_bool(const JsonValue *v, const char *key, bool *ret) {
        const JsonValue *m = json_get(v, key);

        if (!m || m->type != JSON_BOOLEAN)
                return false;
        *ret = m->boolean;
        return true;
}
