/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libsmimed-internal.h"
#include "macro.h"

/* caps->encrypt points into this: what each entry says beyond
 * smimed_capability, whose size is fixed by the ABI. */
typedef struct EncryptArray {
        struct {
                bool from_directory;
                uint64_t directory_fetched;
        } * extra;
        smimed_capability items[];
} EncryptArray;

static EncryptArray *encrypt_array(const smimed_capabilities *c) {
        return c && c->encrypt ? (EncryptArray *) ((uint8_t *) c->encrypt - offsetof(EncryptArray, items)) : NULL;
}

static void capability_done(smimed_capability *c) {
        free(c->address);
        free(c->reason);
        free(c->message);
        free(c->fingerprint);
        free(c->subject);
        free(c->issuer);
        free(c->summary);
        *c = (smimed_capability) {};
}

_public_ void smimed_capabilities_done(smimed_capabilities *c) {
        if (!c)
                return;
        capability_done(&c->sign);
        for (size_t i = 0; i < c->n_encrypt; i++)
                capability_done(&c->encrypt[i]);
        if (c->encrypt) {
                EncryptArray *a = encrypt_array(c);

                free(a->extra);
                free(a);
        }
        *c = (smimed_capabilities) {};
}

_public_ int smimed_capabilities_from_directory(const smimed_capabilities *c, size_t i, uint64_t *ret_fetched) {
        EncryptArray *a = encrypt_array(c);

        if (!a || i >= c->n_encrypt || !a->extra[i].from_directory)
                return 0;
        if (ret_fetched)
                *ret_fetched = a->extra[i].directory_fetched;
        return 1;
}

static int capability_read_entry(sd_bus_message *m, const char *key, smimed_capability *c, bool *from_directory,
                                 uint64_t *directory_fetched) {
        if (streq(key, "address"))
                return bus_read_variant_string(m, &c->address);
        if (streq(key, "possible"))
                return bus_read_variant_bool(m, &c->possible);
        if (streq(key, "reason"))
                return bus_read_variant_string(m, &c->reason);
        if (streq(key, "message"))
                return bus_read_variant_string(m, &c->message);
        if (streq(key, "fingerprint"))
                return bus_read_variant_string(m, &c->fingerprint);
        if (streq(key, "subject"))
                return bus_read_variant_string(m, &c->subject);
        if (streq(key, "issuer"))
                return bus_read_variant_string(m, &c->issuer);
        if (streq(key, "summary"))
                return bus_read_variant_string(m, &c->summary);
        if (streq(key, "not_after"))
                return bus_read_variant_uint64(m, &c->not_after);
        if (streq(key, "from_directory"))
                return bus_read_variant_bool(m, from_directory);
        if (streq(key, "directory_fetched"))
                return bus_read_variant_uint64(m, directory_fetched);
        return sd_bus_message_skip(m, "v"); /* "certificate", or newer than this library */
}

/* Reads one a{sv}; returns how many entries it had. */
static int capability_read(sd_bus_message *m, smimed_capability *c, bool *from_directory,
                           uint64_t *directory_fetched) {
        int n = 0, r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = capability_read_entry(m, key, c, from_directory, directory_fetched);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                n++;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        /* The reply promises these; keep callers from meeting NULL. */
        if (n > 0 && (!c->address || !c->reason || !c->message))
                return -EBADMSG;
        return n;
}

static int capabilities_read(sd_bus_message *m, smimed_capabilities *caps) {
        bool sign_from_directory = false; /* a sender's certificate is never the directory's */
        uint64_t sign_fetched = 0;
        EncryptArray *a = NULL;
        int r;

        r = capability_read(m, &caps->sign, &sign_from_directory, &sign_fetched);
        if (r < 0)
                return r;
        caps->have_sign = r > 0;

        r = sd_bus_message_enter_container(m, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (;;) {
                size_t n = caps->n_encrypt;
                void *extra;

                r = sd_bus_message_at_end(m, false);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
                /* caps->encrypt and a move together: smimed_capabilities_done() frees both. */
                a = encrypt_array(caps);
                extra = reallocarray(a ? a->extra : NULL, n + 1, sizeof(a->extra[0]));
                if (!extra)
                        return -ENOMEM;
                if (a)
                        a->extra = extra;
                a = realloc(a, offsetof(EncryptArray, items) + (n + 1) * sizeof(smimed_capability));
                if (!a) {
                        if (!caps->encrypt)
                                free(extra);
                        return -ENOMEM;
                }
                a->extra = extra;
                caps->encrypt = a->items;
                caps->encrypt[n] = (smimed_capability){};
                a->extra[n].from_directory = false;
                a->extra[n].directory_fetched = 0;
                caps->n_encrypt++;
                r = capability_read(m, &caps->encrypt[n], &a->extra[n].from_directory, &a->extra[n].directory_fetched);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(m);
}

int capabilities_call_new(smimed *s, const char *sender, const char *const *recipients, const smimed_options *o,
                          sd_bus_message **ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = options_check(o, 0, "GetCapabilities", error);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_call(s->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                           SMIMED_MANAGER_INTERFACE, "GetCapabilities");
        if (r >= 0)
                r = options_prepare_call(o, m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", strempty(sender));
        if (r >= 0)
                /* sd-bus does not change the strings; it only lacks a const signature. */
                r = sd_bus_message_append_strv(m, (char **) recipients);
        if (r >= 0)
                r = options_append(o, m);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));

        *ret = TAKE_PTR(m);
        return 0;
}

int capabilities_read_reply(sd_bus_message *reply, smimed_capabilities *ret, smimed_error *error) {
        _cleanup_(smimed_capabilities_done) smimed_capabilities caps = {};
        int r;

        r = capabilities_read(reply, &caps);
        if (r < 0)
                return error_set(error, r, NULL, "smimed sent a reply this library cannot read.");

        *ret = caps;
        caps = (smimed_capabilities) {};
        return 0;
}

_public_ int smimed_get_capabilities(smimed *s, const char *sender, const char *const *recipients,
                                     smimed_capabilities *ret, smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        if (!s || !ret)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");

        r = capabilities_call_new(s, sender, recipients, NULL, &m, error);
        if (r < 0)
                return r;

        r = sd_bus_call(s->bus, m, 0, &e, &reply);
        if (r < 0)
                return error_from_bus(error, r, &e);

        return capabilities_read_reply(reply, ret, error);
}
