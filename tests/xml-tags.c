/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "xml-tags.h"

#define MAX_ATTRS 16

typedef struct Attr {
        char *name;
        char *value;
} Attr;

typedef struct Tag {
        char *name;
        Attr attrs[MAX_ATTRS];
        size_t n_attrs;
        bool closing;       /* </x> */
        bool self_closing;  /* <x/> */
} Tag;

static void tag_done(Tag *t) {
        free(t->name);
        for (size_t i = 0; i < t->n_attrs; i++) {
                free(t->attrs[i].name);
                free(t->attrs[i].value);
        }
        *t = (Tag) {};
}

static int attr_compare(const void *a, const void *b) {
        return strcmp(((const Attr *) a)->name, ((const Attr *) b)->name);
}

static const char *skip_space(const char *p) {
        while (isspace((unsigned char) *p))
                p++;
        return p;
}

static size_t name_length(const char *p) {
        size_t n = 0;

        while (p[n] && (isalnum((unsigned char) p[n]) || strchr("_-.:", p[n])))
                n++;
        return n;
}

/* Parses the tag starting at p (just after '<'); returns the position after
 * its '>', or NULL when malformed. */
static const char *parse_tag(const char *p, Tag *t) {
        size_t n;

        if (*p == '/') {
                t->closing = true;
                p++;
        }
        n = name_length(p);
        if (n == 0)
                return NULL;
        t->name = strndup(p, n);
        p += n;

        for (;;) {
                const char *value_start;
                char quote;

                p = skip_space(p);
                if (*p == '>')
                        return p + 1;
                if (p[0] == '/' && p[1] == '>') {
                        t->self_closing = true;
                        return p + 2;
                }
                if (t->closing || t->n_attrs >= MAX_ATTRS)
                        return NULL;

                n = name_length(p);
                if (n == 0)
                        return NULL;
                /* Counted at once, so that tag_done() frees it however this ends. */
                t->attrs[t->n_attrs++].name = strndup(p, n);
                p = skip_space(p + n);
                if (*p != '=')
                        return NULL;
                p = skip_space(p + 1);
                quote = *p;
                if (quote != '"' && quote != '\'')
                        return NULL;
                value_start = ++p;
                p = strchr(p, quote);
                if (!p)
                        return NULL;
                t->attrs[t->n_attrs - 1].value = strndup(value_start, (size_t) (p - value_start));
                p++;
        }
}

static const char *tag_attr(const Tag *t, const char *name) {
        for (size_t i = 0; i < t->n_attrs; i++)
                if (streq(t->attrs[i].name, name))
                        return t->attrs[i].value;
        return NULL;
}

/* org.gtk.GDBus.* annotations (C.UnixFD, DocString, …) are hints for code
 * generators that no server serves: not part of the interface. */
static bool is_codegen_hint(const Tag *t) {
        const char *name = tag_attr(t, "name");

        return streq(t->name, "annotation") && name && strncmp(name, "org.gtk.GDBus.", 14) == 0;
}

static void write_open(FILE *f, Tag *t) {
        qsort(t->attrs, t->n_attrs, sizeof(Attr), attr_compare);
        fprintf(f, "<%s", t->name);
        for (size_t i = 0; i < t->n_attrs; i++)
                fprintf(f, " %s=\"%s\"", t->attrs[i].name, t->attrs[i].value);
        fputs(">\n", f);
}

char *xml_canonical_element(const char *xml, const char *tag, const char *name) {
        char *out = NULL;
        size_t out_size = 0;
        FILE *f;
        int depth = 0, capture_depth = -1, skip_depth = -1;
        bool done = false, bad = false;
        const char *p = xml;

        f = open_memstream(&out, &out_size);
        if (!f)
                return NULL;

        while (!done && !bad && (p = strchr(p, '<'))) {
                Tag t = {};

                if (strncmp(p, "<!--", 4) == 0) {
                        p = strstr(p + 4, "-->");
                        if (!p)
                                bad = true;
                        else
                                p += 3;
                        continue;
                }
                if (p[1] == '!' || p[1] == '?') {
                        p = strchr(p, '>');
                        if (!p)
                                bad = true;
                        continue;
                }

                p = parse_tag(p + 1, &t);
                if (!p) {
                        bad = true;
                        tag_done(&t);
                        break;
                }

                if (t.closing) {
                        depth--;
                        if (skip_depth >= 0) {
                                if (depth == skip_depth)
                                        skip_depth = -1;
                        } else {
                                if (capture_depth >= 0)
                                        fprintf(f, "</%s>\n", t.name);
                                if (depth == capture_depth)
                                        done = true;
                        }
                } else if (skip_depth >= 0 || is_codegen_hint(&t)) {
                        if (!t.self_closing) {
                                if (skip_depth < 0)
                                        skip_depth = depth;
                                depth++;
                        }
                } else {
                        if (capture_depth < 0 && streq(t.name, tag) && streq_ptr(tag_attr(&t, "name"), name))
                                capture_depth = depth;
                        if (capture_depth >= 0) {
                                write_open(f, &t);
                                if (t.self_closing)
                                        fprintf(f, "</%s>\n", t.name);
                        }
                        if (t.self_closing) {
                                if (depth == capture_depth)
                                        done = true;
                        } else
                                depth++;
                }
                tag_done(&t);
        }

        fclose(f);
        if (bad || !done)
                return mfree(out);
        return out;
}
