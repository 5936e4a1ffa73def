/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimed-async-glib: libsmimed's asynchronous calls driven by a GLib main
 * loop, as a GTK mail application would use them.
 *
 *   smimed-async-glib SENDER RECIPIENT
 *
 * The same steps as smimed-example (capabilities, sign, sign and encrypt,
 * decrypt), each started from the previous one's handler, without ever
 * blocking the loop. The connection joins the loop through a GSource that
 * polls smimed_get_fd() for smimed_get_events() with smimed_get_timeout(),
 * and dispatches with smimed_process(). It also subscribes to smimed's
 * change notifications, which a composer uses to re-check its buttons.
 * Exit status 0 when every step worked.
 *
 * Build: cc smimed-async-glib.c $(pkg-config --cflags --libs smimed glib-2.0) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <smimed.h>

/* ---- a GSource for a libsmimed connection ---- */

typedef struct SmimedSource {
        GSource source;
        smimed *smimed;
        gpointer fd_tag;
} SmimedSource;

/* smimed_get_events() is poll(2) flags; GIOCondition uses the same bits. */
static gboolean smimed_source_prepare(GSource *source, gint *timeout) {
        SmimedSource *s = (SmimedSource *) source;
        uint64_t until = UINT64_MAX;
        int64_t now = g_get_monotonic_time(); /* CLOCK_MONOTONIC µs, as smimed_get_timeout() */
        int events = smimed_get_events(s->smimed);

        g_source_modify_unix_fd(source, s->fd_tag, events > 0 ? (GIOCondition) events : G_IO_IN);
        if (smimed_get_timeout(s->smimed, &until) < 0 || until == UINT64_MAX) {
                *timeout = -1;
                return FALSE;
        }
        if (until <= (uint64_t) now) {
                *timeout = 0;
                return TRUE; /* something to do now, e.g. a message already read */
        }
        *timeout = (gint) MIN((until - (uint64_t) now + 999) / 1000, (uint64_t) G_MAXINT);
        return FALSE;
}

static gboolean smimed_source_check(GSource *source) {
        SmimedSource *s = (SmimedSource *) source;
        uint64_t until = UINT64_MAX;

        if (g_source_query_unix_fd(source, s->fd_tag) != 0)
                return TRUE;
        return smimed_get_timeout(s->smimed, &until) >= 0 && until <= (uint64_t) g_get_monotonic_time();
}

static gboolean smimed_source_dispatch(GSource *source, GSourceFunc callback, gpointer userdata) {
        SmimedSource *s = (SmimedSource *) source;
        int r;

        (void) callback;
        (void) userdata;
        /* Handlers run from here. */
        while ((r = smimed_process(s->smimed)) > 0)
                ;
        if (r < 0) {
                g_printerr("smimed-async-glib: lost the connection to the bus: %s\n", g_strerror(-r));
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

static GSourceFuncs smimed_source_funcs = {
        .prepare = smimed_source_prepare,
        .check = smimed_source_check,
        .dispatch = smimed_source_dispatch,
};

/* Attaches s to context (NULL: the default one); unref the source to stop. */
static GSource *smimed_source_new(smimed *s, GMainContext *context) {
        SmimedSource *source = (SmimedSource *) g_source_new(&smimed_source_funcs, sizeof(SmimedSource));

        source->smimed = s;
        source->fd_tag = g_source_add_unix_fd(&source->source, smimed_get_fd(s), G_IO_IN);
        g_source_set_name(&source->source, "smimed");
        g_source_attach(&source->source, context);
        return &source->source;
}

/* ---- the mail application ---- */

typedef struct Example {
        GMainLoop *loop;
        smimed *smimed;
        const char *sender, *recipient;
        char *message;
        char *encrypted;
        size_t encrypted_size;
        int status;
} Example;

static void example_fail(Example *x, const char *what, const smimed_error *e) {
        g_printerr("smimed-async-glib: %s: %s (%s)\n", what, e && e->message ? e->message : "failed",
                   e && e->name ? e->name : "no error name");
        x->status = 1;
        g_main_loop_quit(x->loop);
}

static void on_decrypted(smimed *s, int r, const smimed_error *error, const smimed_message_status *st,
                         const void *output, size_t size, void *userdata) {
        Example *x = userdata;

        (void) s;
        (void) size;
        if (r < 0) {
                example_fail(x, "Decrypt", error);
                return;
        }
        g_print("decrypted: encryption=%s signature=%s\n", st->encryption, st->signature);
        g_print("content-matches: %s\n", strstr(output, "Hello from the smimed async example.") ? "yes" : "no");
        x->status = strcmp(st->encryption, "encrypted") == 0 && strstr(output, "Hello from") ? 0 : 1;
        g_main_loop_quit(x->loop);
}

static void on_encrypted(smimed *s, int r, const smimed_error *error, const smimed_result *result, const void *output,
                         size_t size, void *userdata) {
        Example *x = userdata;
        smimed_error e = {};

        if (r < 0) {
                example_fail(x, "Encrypt", error);
                return;
        }
        g_print("encrypted: %zu bytes, sender can read it: %s\n", size, result->sender_included ? "yes" : "no");
        /* The output is ours only until we return: keep a copy to decrypt. */
        x->encrypted = g_memdup2(output, size);
        x->encrypted_size = size;
        if (smimed_decrypt_async(s, x->encrypted, x->encrypted_size, NULL, on_decrypted, x, NULL, &e) < 0)
                example_fail(x, "Decrypt", &e);
        smimed_error_done(&e);
}

static void on_signed(smimed *s, int r, const smimed_error *error, const smimed_result *result, const void *output,
                      size_t size, void *userdata) {
        Example *x = userdata;
        const char *recipients[] = {x->recipient, NULL};
        smimed_options *o = smimed_options_new();
        smimed_error e = {};

        (void) output;
        if (r < 0) {
                smimed_options_free(o);
                example_fail(x, "Sign", error);
                return;
        }
        g_print("signed: %zu bytes by %s\n", size, result->signer);
        /* Sign as the sender, then encrypt to the recipient and the sender. */
        if (!o || smimed_options_set_sign_as(o, x->sender) < 0)
                example_fail(x, "options", NULL);
        else if (smimed_encrypt_async(s, recipients, x->message, strlen(x->message), o, on_encrypted, x, NULL, &e) < 0)
                example_fail(x, "Encrypt", &e);
        smimed_options_free(o); /* the call has what it needs */
        smimed_error_done(&e);
}

static void on_capabilities(smimed *s, int r, const smimed_error *error, const smimed_capabilities *caps,
                            void *userdata) {
        Example *x = userdata;
        smimed_error e = {};

        if (r < 0) {
                example_fail(x, "GetCapabilities", error);
                return;
        }
        g_print("can-sign: %s%s%s\n", caps->sign.possible ? "yes" : "no (",
                caps->sign.possible ? "" : caps->sign.reason, caps->sign.possible ? "" : ")");
        g_print("can-encrypt %s: %s%s%s\n", x->recipient, caps->encrypt[0].possible ? "yes" : "no (",
                caps->encrypt[0].possible ? "" : caps->encrypt[0].reason, caps->encrypt[0].possible ? "" : ")");
        if (!caps->sign.possible || !caps->encrypt[0].possible) {
                g_printerr("smimed-async-glib: %s\n",
                           !caps->sign.possible ? caps->sign.message : caps->encrypt[0].message);
                x->status = 1;
                g_main_loop_quit(x->loop);
                return;
        }
        if (smimed_sign_async(s, x->sender, x->message, strlen(x->message), NULL, on_signed, x, NULL, &e) < 0)
                example_fail(x, "Sign", &e);
        smimed_error_done(&e);
}

/* What a composer does on a change: ask GetCapabilities again. */
static void on_change(smimed *s, smimed_change kind, const char *id, void *userdata) {
        (void) s;
        (void) userdata;
        g_printerr("smimed-async-glib: smimed changed (%d, %s): re-check Sign and Encrypt\n", (int) kind,
                   id ? id : "-");
}

int main(int argc, char *argv[]) {
        Example x = {.status = 1};
        const char *recipients[2];
        smimed_error e = {};
        smimed_slot *slot = NULL;
        GSource *source;

        if (argc != 3) {
                g_printerr("usage: smimed-async-glib SENDER RECIPIENT\n");
                return 2;
        }
        x.sender = argv[1];
        x.recipient = argv[2];
        recipients[0] = x.recipient;
        recipients[1] = NULL;
        x.message = g_strdup_printf("From: <%s>\r\nTo: <%s>\r\nSubject: smimed async example\r\nMIME-Version: 1.0\r\n"
                                    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                                    "Hello from the smimed async example.\r\n",
                                    x.sender, x.recipient);

        if (smimed_connect(&x.smimed, &e) < 0) {
                example_fail(&x, "cannot reach smimed", &e);
                smimed_error_done(&e);
                g_free(x.message);
                return 1;
        }
        x.loop = g_main_loop_new(NULL, FALSE);
        source = smimed_source_new(x.smimed, NULL);

        if (smimed_subscribe_changes(x.smimed, on_change, &x, &slot, &e) < 0 ||
            smimed_get_capabilities_async(x.smimed, x.sender, recipients, NULL, on_capabilities, &x, NULL, &e) < 0)
                example_fail(&x, "cannot start", &e);
        else
                g_main_loop_run(x.loop);

        smimed_slot_unref(slot);
        g_source_destroy(source);
        g_source_unref(source);
        smimed_close(x.smimed); /* cancels whatever is still in progress */
        g_main_loop_unref(x.loop);
        smimed_error_done(&e);
        g_free(x.message);
        g_free(x.encrypted);
        return x.status;
}
