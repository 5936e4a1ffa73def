/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimed-example: what a mail application does with libsmimed, blocking.
 *
 *   smimed-example SENDER RECIPIENT [MESSAGE-FILE]
 *
 * Asks whether SENDER can sign and RECIPIENT can be encrypted to (what a
 * composer asks before it enables its Sign and Encrypt buttons), signs a
 * message as SENDER, encrypts it to RECIPIENT signed by SENDER (who can
 * then read the sent copy), and decrypts that copy again. It talks to
 * smimed on the system bus, or on the bus DBUS_SYSTEM_BUS_ADDRESS names.
 * One "key: value" line per step on stdout; exit status 0 when every step
 * worked, 1 when one failed (with the reason on stderr).
 *
 * Build: cc smimed-example.c $(pkg-config --cflags --libs smimed) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf() */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smimed.h>

static int fail(const char *what, const smimed_error *e) {
        fprintf(stderr, "smimed-example: %s: %s (%s)\n", what, e->message ? e->message : "failed",
                e->name ? e->name : "no error name");
        return 1;
}

/* The message to send: MESSAGE-FILE, or a small one of our own. */
static char *read_message(const char *path, const char *sender, const char *recipient, size_t *ret_size) {
        char *m = NULL;
        size_t size = 0;
        FILE *f;

        if (!path) {
                if (asprintf(&m,
                             "From: <%s>\r\nTo: <%s>\r\nSubject: smimed example\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n\r\nHello from the smimed example.\r\n",
                             sender, recipient) < 0)
                        return NULL;
                *ret_size = strlen(m);
                return m;
        }
        f = fopen(path, "re");
        if (!f)
                return NULL;
        for (;;) {
                char *grown = realloc(m, size + 65536 + 1);
                size_t n;

                if (!grown) {
                        free(m);
                        fclose(f);
                        return NULL;
                }
                m = grown;
                n = fread(m + size, 1, 65536, f);
                size += n;
                if (n < 65536)
                        break;
        }
        fclose(f);
        m[size] = '\0';
        *ret_size = size;
        return m;
}

/* The body of a message (after the empty line), with CRLF made LF. */
static char *body_of(const char *m) {
        const char *b = strstr(m, "\r\n\r\n");
        char *out, *o;

        b = b ? b + 4 : (b = strstr(m, "\n\n")) ? b + 2 : m;
        out = o = strdup(b);
        if (!out)
                return NULL;
        for (const char *p = b; *p; p++)
                if (!(p[0] == '\r' && p[1] == '\n'))
                        *o++ = *p;
        *o = '\0';
        return out;
}

int main(int argc, char *argv[]) {
        const char *sender, *recipient;
        const char *recipients[2];
        smimed_error e = {};
        smimed_capabilities caps = {};
        smimed_result signed_result = {}, encrypted_result = {};
        smimed_message_status status = {};
        smimed_options *o = NULL;
        smimed *s = NULL;
        char *message = NULL, *body = NULL, *clear_body = NULL;
        void *signed_msg = NULL, *encrypted = NULL, *clear = NULL;
        size_t size = 0, signed_size = 0, encrypted_size = 0, clear_size = 0;
        int r, ret = 1;

        if (argc < 3 || argc > 4) {
                fprintf(stderr, "usage: smimed-example SENDER RECIPIENT [MESSAGE-FILE]\n");
                return 2;
        }
        sender = argv[1];
        recipient = argv[2];
        recipients[0] = recipient;
        recipients[1] = NULL;

        message = read_message(argc > 3 ? argv[3] : NULL, sender, recipient, &size);
        if (!message) {
                perror("smimed-example: cannot read the message");
                return 1;
        }

        r = smimed_connect(&s, &e);
        if (r < 0) {
                ret = fail("cannot reach smimed", &e);
                goto finish;
        }

        /* 1. The composer's question. */
        r = smimed_get_capabilities(s, sender, recipients, &caps, &e);
        if (r < 0) {
                ret = fail("GetCapabilities", &e);
                goto finish;
        }
        printf("can-sign: %s%s%s\n", caps.sign.possible ? "yes" : "no (", caps.sign.possible ? "" : caps.sign.reason,
               caps.sign.possible ? "" : ")");
        printf("can-encrypt %s: %s%s%s\n", recipient, caps.encrypt[0].possible ? "yes" : "no (",
               caps.encrypt[0].possible ? "" : caps.encrypt[0].reason, caps.encrypt[0].possible ? "" : ")");
        if (!caps.sign.possible || !caps.encrypt[0].possible) {
                fprintf(stderr, "smimed-example: %s\n",
                        !caps.sign.possible ? caps.sign.message : caps.encrypt[0].message);
                goto finish;
        }

        /* 2. Sign (multipart/signed, smimed's default digest). */
        r = smimed_sign_with_options(s, sender, message, size, NULL, &signed_msg, &signed_size, &signed_result, &e);
        if (r < 0) {
                ret = fail("Sign", &e);
                goto finish;
        }
        printf("signed: %zu bytes by %s\n", signed_size, signed_result.signer);

        /* 3. Sign as the sender, then encrypt to the recipient and the sender. */
        o = smimed_options_new();
        if (!o || smimed_options_set_sign_as(o, sender) < 0) {
                fprintf(stderr, "smimed-example: cannot set the options\n");
                goto finish;
        }
        r = smimed_encrypt_with_options(s, recipients, message, size, o, &encrypted, &encrypted_size,
                                        &encrypted_result, &e);
        if (r < 0) {
                ret = fail("Encrypt", &e);
                goto finish;
        }
        printf("encrypted: %zu bytes, sender can read it: %s\n", encrypted_size,
               encrypted_result.sender_included ? "yes" : "no");

        /* 4. Open the sent copy, as the sender's mail app would. */
        r = smimed_decrypt_with_options(s, encrypted, encrypted_size, NULL, &clear, &clear_size, &status, &e);
        if (r < 0) {
                ret = fail("Decrypt", &e);
                goto finish;
        }
        printf("decrypted: encryption=%s signature=%s\n", status.encryption, status.signature);
        body = body_of(message);
        clear_body = body_of(clear);
        printf("content-matches: %s\n", body && clear_body && strstr(clear_body, body) ? "yes" : "no");
        ret = strcmp(status.encryption, "encrypted") == 0 && body && clear_body && strstr(clear_body, body) ? 0 : 1;

finish:
        smimed_capabilities_done(&caps);
        smimed_result_done(&signed_result);
        smimed_result_done(&encrypted_result);
        smimed_message_status_done(&status);
        smimed_options_free(o);
        smimed_error_done(&e);
        smimed_close(s);
        free(message);
        free(body);
        free(clear_body);
        free(signed_msg);
        free(encrypted);
        free(clear);
        return ret;
}
