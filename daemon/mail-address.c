/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "certificate.h"
#include "mail-address.h"
#include "message.h"
#include "strv.h"

/* One mailbox as collected: its text outside comments and, when it had
 * one, what stood between < and >. */
typedef struct Mailbox {
        char *text;
        size_t n_text;
        char *angle;
        size_t n_angle;
        bool had_angle;
} Mailbox;

static void mailbox_reset(Mailbox *b) {
        b->n_text = b->n_angle = 0;
        b->had_angle = false;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Ends the mailbox collected so far: its address joins l. */
static int mailbox_finish(Mailbox *b, char ***l) {
        const char *s;
        size_t n;
        char *copy, *normalized = NULL;
        int r;

        if (b->had_angle) {
                s = b->angle;
                n = b->n_angle;
        } else {
                s = b->text;
                n = b->n_text;
        }
        while (n > 0 && is_space(*s))
                s++, n--;
        while (n > 0 && is_space(s[n - 1]))
                n--;
        if (n == 0 && !b->had_angle) {
                mailbox_reset(b);
                return 0; /* "a@x, , b@y": nothing between the commas */
        }
        copy = strndup(s, n);
        if (!copy)
                return -ENOMEM;
        r = address_normalize(copy, &normalized);
        free(copy);
        mailbox_reset(b);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        if (strv_length(*l) >= MAIL_ADDRESS_LIST_MAX) {
                free(normalized);
                return -E2BIG;
        }
        return strv_consume(l, normalized);
}

int mail_address_list(const char *value, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        size_t size = strlen(value) + 1;
        Mailbox b = {};
        bool quoted = false, in_angle = false;
        unsigned comment = 0;
        int r = 0;

        l = calloc(1, sizeof(char *));
        b.text = malloc(size);
        b.angle = malloc(size);
        if (!l || !b.text || !b.angle) {
                r = -ENOMEM;
                goto finish;
        }

        for (const char *p = value; *p; p++) {
                char c = *p;

                if (comment > 0) {
                        if (c == '\\' && p[1])
                                p++;
                        else if (c == '(')
                                comment++;
                        else if (c == ')')
                                comment--;
                        continue;
                }
                if (quoted) {
                        if (c == '\\' && p[1])
                                c = *++p;
                        else if (c == '"') {
                                quoted = false;
                                continue;
                        }
                } else if (c == '"' && !in_angle) {
                        quoted = true;
                        continue;
                } else if (c == '(') {
                        comment = 1;
                        continue;
                } else if (c == '<' && !in_angle) {
                        if (b.had_angle) {
                                r = -EBADMSG; /* two angle addresses in one mailbox */
                                goto finish;
                        }
                        in_angle = b.had_angle = true;
                        continue;
                } else if (c == '>' && in_angle) {
                        in_angle = false;
                        continue;
                } else if (!in_angle && c == ':') {
                        mailbox_reset(&b); /* "Team:": a group's display name */
                        continue;
                } else if (!in_angle && (c == ',' || c == ';')) {
                        r = mailbox_finish(&b, &l);
                        if (r < 0)
                                goto finish;
                        continue;
                }

                if (in_angle)
                        b.angle[b.n_angle++] = c;
                else if (!b.had_angle)
                        b.text[b.n_text++] = c;
                else if (!is_space(c)) {
                        r = -EBADMSG; /* text after the angle address */
                        goto finish;
                }
        }
        if (quoted || comment > 0 || in_angle)
                r = -EBADMSG;
        else
                r = mailbox_finish(&b, &l);

finish:
        free(b.text);
        free(b.angle);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

int mail_header_addresses(const MimeHeaders *headers, const char *name, char ***ret) {
        _cleanup_(strv_freep) char **all = NULL;
        int r;

        all = calloc(1, sizeof(char *));
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < headers->n; i++) {
                _cleanup_(strv_freep) char **l = NULL;
                _cleanup_free_ char *value = NULL;

                if (strcasecmp(headers->items[i].name, name) != 0)
                        continue;
                value = mime_header_value(&headers->items[i]);
                if (!value)
                        return -ENOMEM;
                r = mail_address_list(value, &l);
                if (r < 0)
                        return r;
                for (char **a = l; *a; a++) {
                        if (strv_length(all) >= MAIL_ADDRESS_LIST_MAX)
                                return -E2BIG;
                        r = strv_extend(&all, *a);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(all);
        return 0;
}

int mail_check_senders(const MimeHeaders *headers, char *const *allowed, char **ret_message) {
        static const char *const fields[] = { "From", "Sender" };
        int r;

        for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                _cleanup_(strv_freep) char **l = NULL;

                r = mail_header_addresses(headers, fields[f], &l);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return message_fail(ret_message, -EBADMSG,
                                            "The message's %s: field cannot be read as a list of mail addresses.",
                                            fields[f]);
                for (char **a = l; *a; a++) {
                        _cleanup_free_ char *names = NULL;

                        if (strv_contains(allowed, *a))
                                continue;
                        names = strv_join(allowed, ", ");
                        return message_fail(ret_message, -EPERM,
                                            "The message's %s: field names %s, which is not an address of the signing "
                                            "certificate (%s); smimed signs a message only as its certificate's "
                                            "addresses.",
                                            fields[f], *a, names && names[0] ? names : "no mail address");
                }
        }
        return 0;
}
