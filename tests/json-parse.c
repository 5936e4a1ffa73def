/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json-parse.h"

typedef struct Parser {
        const char *s;
        size_t pos;
        unsigned depth;
} Parser;

static JsonValue *parse_value(Parser *p);

static void skip_space(Parser *p) {
        while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r')
                p->pos++;
}

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

static int hex4(const char *s, uint32_t *ret) {
        uint32_t v = 0;

        for (int i = 0; i < 4; i++) {
                char c = s[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

static size_t utf8_put(char *out, uint32_t c) {
        if (c < 0x80) {
                out[0] = (char) c;
                return 1;
        }
        if (c < 0x800) {
                out[0] = (char) (0xc0 | (c >> 6));
                out[1] = (char) (0x80 | (c & 0x3f));
                return 2;
        }
        if (c < 0x10000) {
                out[0] = (char) (0xe0 | (c >> 12));
                out[1] = (char) (0x80 | ((c >> 6) & 0x3f));
                out[2] = (char) (0x80 | (c & 0x3f));
                return 3;
        }
        out[0] = (char) (0xf0 | (c >> 18));
        out[1] = (char) (0x80 | ((c >> 12) & 0x3f));
        out[2] = (char) (0x80 | ((c >> 6) & 0x3f));
        out[3] = (char) (0x80 | (c & 0x3f));
        return 4;
}

/* At the opening quote; returns the decoded string. */
static char *parse_string(Parser *p) {
        size_t start = ++p->pos, n = 0;
        char *out;

        /* Decoded text is never longer than its escaped form. */
        while (p->s[p->pos] && p->s[p->pos] != '"') {
                if (p->s[p->pos] == '\\' && p->s[p->pos + 1])
                        p->pos++;
                p->pos++;
        }
        if (p->s[p->pos] != '"')
                return NULL;
        out = malloc(p->pos - start + 1);
        if (!out)
                return NULL;

        for (size_t i = start; i < p->pos; i++) {
                unsigned char c = (unsigned char) p->s[i];

                if (c < 0x20)
                        goto fail;
                if (c != '\\') {
                        out[n++] = (char) c;
                        continue;
                }
                c = (unsigned char) p->s[++i];
                switch (c) {
                case '"': case '\\': case '/':
                        out[n++] = (char) c;
                        break;
                case 'b': out[n++] = '\b'; break;
                case 'f': out[n++] = '\f'; break;
                case 'n': out[n++] = '\n'; break;
                case 'r': out[n++] = '\r'; break;
                case 't': out[n++] = '\t'; break;
                case 'u': {
                        uint32_t cp, low;

                        if (i + 4 >= p->pos || hex4(p->s + i + 1, &cp) < 0)
                                goto fail;
                        i += 4;
                        if (cp >= 0xd800 && cp < 0xdc00) {
                                if (i + 6 >= p->pos || p->s[i + 1] != '\\' || p->s[i + 2] != 'u' ||
                                    hex4(p->s + i + 3, &low) < 0 || low < 0xdc00 || low >= 0xe000)
                                        goto fail;
                                i += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                        } else if (cp >= 0xdc00 && cp < 0xe000)
                                goto fail;
                        if (cp == 0)
                                goto fail; /* would cut the C string */
                        n += utf8_put(out + n, cp);
                        break;
                }
                default:
                        goto fail;
                }
        }
        out[n] = '\0';
        p->pos++;
        return out;
fail:
        free(out);
        return NULL;
}

static JsonValue *parse_number(Parser *p) {
        size_t start = p->pos;
        JsonValue *v;

        if (p->s[p->pos] == '-')
                p->pos++;
        if (p->s[p->pos] == '0')
                p->pos++;
        else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9')
                while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
                        p->pos++;
        else
                return NULL;
        if (p->s[p->pos] == '.') {
                p->pos++;
                if (!(p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
                        return NULL;
                while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
                        p->pos++;
        }
        if (p->s[p->pos] == 'e' || p->s[p->pos] == 'E') {
                p->pos++;
                if (p->s[p->pos] == '+' || p->s[p->pos] == '-')
                        p->pos++;
                if (!(p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
                        return NULL;
                while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
                        p->pos++;
        }
        v = value_new(JSON_NUMBER);
        if (!v)
                return NULL;
        v->text = strndup(p->s + start, p->pos - start);
        if (!v->text)
                return json_value_free(v);
        return v;
}

static int append(JsonValue *v, char *key, JsonValue *item) {
        JsonValue **items = realloc(v->items, (v->n + 1) * sizeof(JsonValue *));

        if (!items)
                return -1;
        v->items = items;
        if (v->type == JSON_OBJECT) {
                char **keys = realloc(v->keys, (v->n + 1) * sizeof(char *));
                if (!keys)
                        return -1;
                v->keys = keys;
                v->keys[v->n] = key;
        }
        v->items[v->n++] = item;
        return 0;
}

static JsonValue *parse_container(Parser *p, JsonType type) {
        char close = type == JSON_ARRAY ? ']' : '}';
        JsonValue *v = value_new(type);

        if (!v || ++p->depth > 64)
                return json_value_free(v);
        p->pos++;
        skip_space(p);
        if (p->s[p->pos] == close) {
                p->pos++;
                p->depth--;
                return v;
        }
        for (;;) {
                char *key = NULL;
                JsonValue *item;

                skip_space(p);
                if (type == JSON_OBJECT) {
                        if (p->s[p->pos] != '"' || !(key = parse_string(p)))
                                return json_value_free(v);
                        skip_space(p);
                        if (p->s[p->pos] != ':') {
                                free(key);
                                return json_value_free(v);
                        }
                        p->pos++;
                }
                item = parse_value(p);
                if (!item || append(v, key, item) < 0) {
                        free(key);
                        json_value_free(item);
                        return json_value_free(v);
                }
                skip_space(p);
                if (p->s[p->pos] == ',') {
                        p->pos++;
                        continue;
                }
                if (p->s[p->pos] == close) {
                        p->pos++;
                        p->depth--;
                        return v;
                }
                return json_value_free(v);
        }
}

static JsonValue *parse_literal(Parser *p, const char *word, JsonType type, bool b) {
        JsonValue *v;

        if (strncmp(p->s + p->pos, word, strlen(word)) != 0)
                return NULL;
        p->pos += strlen(word);
        v = value_new(type);
        if (v)
                v->boolean = b;
        return v;
}

static JsonValue *parse_value(Parser *p) {
        skip_space(p);
        switch (p->s[p->pos]) {
        case '{':
                return parse_container(p, JSON_OBJECT);
        case '[':
                return parse_container(p, JSON_ARRAY);
        case '"': {
                JsonValue *v = value_new(JSON_STRING);
                if (!v)
                        return NULL;
                v->text = parse_string(p);
                if (!v->text)
                        return json_value_free(v);
                return v;
        }
        case 't':
                return parse_literal(p, "true", JSON_BOOLEAN, true);
        case 'f':
                return parse_literal(p, "false", JSON_BOOLEAN, false);
        case 'n':
                return parse_literal(p, "null", JSON_NULL, false);
        default:
                return parse_number(p);
        }
}

JsonValue *json_parse(const char *text, size_t *ret_error) {
        Parser p = { .s = text };
        JsonValue *v;

        v = parse_value(&p);
        if (v) {
                skip_space(&p);
                if (p.s[p.pos] != '\0')
                        v = json_value_free(v);
        }
        if (!v && ret_error)
                *ret_error = p.pos;
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
