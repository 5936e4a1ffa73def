/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libsmimed-internal.h"
#include "macro.h"
#include "strv.h"

/* An option of a newer smimed, passed through by name. */
typedef struct ExtraOption {
        char *name;
        char type; /* 's' or 'b' */
        char *string;
        bool boolean;
} ExtraOption;

struct smimed_options {
        unsigned set; /* OptionFlag bits of the options set */
        bool opaque, pss, oaep, verify, interactive;
        char *digest, *cipher, *sign_as, *sender, *key;
        uint64_t timeout_usec;
        ExtraOption *extra;
        size_t n_extra;
};

static const char *const digests[] = {"sha-256", "sha-384", "sha-512", NULL};
static const char *const ciphers[] = {"aes-256-cbc", "aes-128-cbc", "aes-256-gcm", "aes-128-gcm", NULL};

_public_ smimed_options *smimed_options_new(void) {
        return calloc(1, sizeof(smimed_options));
}

_public_ smimed_options *smimed_options_free(smimed_options *o) {
        if (!o)
                return NULL;
        free(o->digest);
        free(o->cipher);
        free(o->sign_as);
        free(o->sender);
        free(o->key);
        for (size_t i = 0; i < o->n_extra; i++) {
                free(o->extra[i].name);
                free(o->extra[i].string);
        }
        free(o->extra);
        free(o);
        return NULL;
}

static int set_bool(smimed_options *o, OptionFlag flag, bool *field, bool value) {
        if (!o)
                return -EINVAL;
        *field = value;
        o->set |= flag;
        return 0;
}

/* value NULL unsets the option. */
static int set_string(smimed_options *o, OptionFlag flag, char **field, const char *value) {
        char *copy = NULL;

        if (!o)
                return -EINVAL;
        if (value) {
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }
        free(*field);
        *field = copy;
        if (value)
                o->set |= flag;
        else
                o->set &= ~flag;
        return 0;
}

static bool is_address(const char *s) {
        const char *at = strchr(s, '@');

        return at && at != s && at[1] && !strchr(at + 1, '@');
}

static bool is_hex(const char *s) {
        if (!s[0])
                return false;
        for (; *s; s++)
                if (!strchr("0123456789abcdefABCDEF", *s))
                        return false;
        return true;
}

_public_ int smimed_options_set_opaque(smimed_options *o, bool opaque) {
        return set_bool(o, OPTION_OPAQUE, o ? &o->opaque : NULL, opaque);
}

_public_ int smimed_options_set_digest(smimed_options *o, const char *digest) {
        if (digest && !strv_contains((char **) digests, digest))
                return -EINVAL;
        return set_string(o, OPTION_DIGEST, o ? &o->digest : NULL, digest);
}

_public_ int smimed_options_set_pss(smimed_options *o, bool pss) {
        return set_bool(o, OPTION_PSS, o ? &o->pss : NULL, pss);
}

_public_ int smimed_options_set_cipher(smimed_options *o, const char *cipher) {
        if (cipher && !strv_contains((char **) ciphers, cipher))
                return -EINVAL;
        return set_string(o, OPTION_CIPHER, o ? &o->cipher : NULL, cipher);
}

_public_ int smimed_options_set_oaep(smimed_options *o, bool oaep) {
        return set_bool(o, OPTION_OAEP, o ? &o->oaep : NULL, oaep);
}

_public_ int smimed_options_set_sign_as(smimed_options *o, const char *address) {
        if (address && !is_address(address))
                return -EINVAL;
        return set_string(o, OPTION_SIGN_AS, o ? &o->sign_as : NULL, address);
}

_public_ int smimed_options_set_sender(smimed_options *o, const char *address) {
        if (address && !is_address(address))
                return -EINVAL;
        return set_string(o, OPTION_SENDER, o ? &o->sender : NULL, address);
}

_public_ int smimed_options_set_verify(smimed_options *o, bool verify) {
        return set_bool(o, OPTION_VERIFY, o ? &o->verify : NULL, verify);
}

_public_ int smimed_options_set_key(smimed_options *o, const char *key_id) {
        if (key_id && !is_hex(key_id) && !strchr(key_id, '@'))
                return -EINVAL;
        return set_string(o, OPTION_KEY, o ? &o->key : NULL, key_id);
}

_public_ int smimed_options_set_interactive(smimed_options *o, bool allow) {
        return set_bool(o, OPTION_INTERACTIVE, o ? &o->interactive : NULL, allow);
}

_public_ int smimed_options_set_timeout(smimed_options *o, uint64_t usec) {
        if (!o)
                return -EINVAL;
        o->timeout_usec = usec;
        return 0;
}

static bool has_setter(const char *name);

/* A name as smimed's options have them, and not one with a setter here
 * (which checks its value). */
static bool is_option_name(const char *name) {
        if (!name || !name[0] || has_setter(name))
                return false;
        for (const char *p = name; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_", *p))
                        return false;
        return true;
}

/* The extra option called name, added when new. */
static int extra_get(smimed_options *o, const char *name, ExtraOption **ret) {
        ExtraOption *grown;

        for (size_t i = 0; i < o->n_extra; i++)
                if (streq(o->extra[i].name, name)) {
                        *ret = &o->extra[i];
                        return 0;
                }
        grown = reallocarray(o->extra, o->n_extra + 1, sizeof(ExtraOption));
        if (!grown)
                return -ENOMEM;
        o->extra = grown;
        o->extra[o->n_extra] = (ExtraOption){.name = strdup(name)};
        if (!o->extra[o->n_extra].name)
                return -ENOMEM;
        *ret = &o->extra[o->n_extra++];
        return 0;
}

_public_ int smimed_options_set_string(smimed_options *o, const char *name, const char *value) {
        ExtraOption *e;
        char *copy;
        int r;

        if (!o || !is_option_name(name) || !value)
                return -EINVAL;
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        r = extra_get(o, name, &e);
        if (r < 0) {
                free(copy);
                return r;
        }
        free(e->string);
        *e = (ExtraOption){.name = e->name, .type = 's', .string = copy};
        return 0;
}

_public_ int smimed_options_set_bool(smimed_options *o, const char *name, bool value) {
        ExtraOption *e;
        int r;

        if (!o || !is_option_name(name))
                return -EINVAL;
        r = extra_get(o, name, &e);
        if (r < 0)
                return r;
        free(e->string);
        *e = (ExtraOption){.name = e->name, .type = 'b', .boolean = value};
        return 0;
}

/* ---- what the calls do with them ---- */

static const struct {
        OptionFlag flag;
        const char *name;
} option_names[] = {
        {OPTION_OPAQUE, "opaque"}, {OPTION_DIGEST, "digest"}, {OPTION_PSS, "pss"},
        {OPTION_CIPHER, "cipher"}, {OPTION_OAEP, "oaep"},     {OPTION_SIGN_AS, "sign_as"},
        {OPTION_SENDER, "sender"}, {OPTION_VERIFY, "verify"}, {OPTION_KEY, "key"},
};

static bool has_setter(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(option_names); i++)
                if (streq(option_names[i].name, name))
                        return true;
        return false;
}

int options_check(const smimed_options *o, unsigned takes, const char *method, smimed_error *error) {
        _cleanup_free_ char *message = NULL;
        unsigned extra;

        if (!o)
                return 0;
        extra = o->set & ~(takes | OPTION_INTERACTIVE);
        if (extra == 0)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(option_names); i++)
                if (extra & option_names[i].flag) {
                        if (asprintf(&message, "The option \"%s\" does not apply to %s.", option_names[i].name,
                                     method) < 0)
                                return error_set(error, -ENOMEM, NULL, NULL);
                        break;
                }
        return error_set(error, -EINVAL, NULL, message);
}

static int append_string(sd_bus_message *m, const char *name, const char *value) {
        return sd_bus_message_append(m, "{sv}", name, "s", value);
}

static int append_bool(sd_bus_message *m, const char *name, bool value) {
        return sd_bus_message_append(m, "{sv}", name, "b", (int) value);
}

int options_append(const smimed_options *o, sd_bus_message *m) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0 || !o)
                return r < 0 ? r : sd_bus_message_close_container(m);

        if (o->set & OPTION_OPAQUE)
                r = append_bool(m, "opaque", o->opaque);
        if (r >= 0 && (o->set & OPTION_DIGEST))
                r = append_string(m, "digest", o->digest);
        if (r >= 0 && (o->set & OPTION_PSS))
                r = append_bool(m, "pss", o->pss);
        if (r >= 0 && (o->set & OPTION_CIPHER))
                r = append_string(m, "cipher", o->cipher);
        if (r >= 0 && (o->set & OPTION_OAEP))
                r = append_bool(m, "oaep", o->oaep);
        if (r >= 0 && (o->set & OPTION_SIGN_AS))
                r = append_string(m, "sign_as", o->sign_as);
        if (r >= 0 && (o->set & OPTION_SENDER))
                r = append_string(m, "sender", o->sender);
        if (r >= 0 && (o->set & OPTION_VERIFY))
                r = append_bool(m, "verify", o->verify);
        if (r >= 0 && (o->set & OPTION_KEY))
                r = append_string(m, "key", o->key);
        for (size_t i = 0; r >= 0 && i < o->n_extra; i++)
                r = o->extra[i].type == 's' ? append_string(m, o->extra[i].name, o->extra[i].string)
                                            : append_bool(m, o->extra[i].name, o->extra[i].boolean);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int options_prepare_call(const smimed_options *o, sd_bus_message *m) {
        if (!o || !(o->set & OPTION_INTERACTIVE))
                return 0;
        return sd_bus_message_set_allow_interactive_authorization(m, o->interactive);
}

uint64_t options_timeout(const smimed_options *o, uint64_t fallback) {
        return o && o->timeout_usec > 0 ? o->timeout_usec : fallback;
}

int options_from_sign(const smimed_sign_options *legacy, smimed_options **ret) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r = 0;

        *ret = NULL;
        if (!legacy)
                return 0;
        o = smimed_options_new();
        if (!o)
                return -ENOMEM;
        if (legacy->opaque)
                r = smimed_options_set_opaque(o, true);
        /* Unchecked, as before: smimed says what it does not take. */
        if (r >= 0 && legacy->digest && legacy->digest[0])
                r = set_string(o, OPTION_DIGEST, &o->digest, legacy->digest);
        if (r >= 0 && legacy->pss)
                r = smimed_options_set_pss(o, true);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int options_from_encrypt(const smimed_encrypt_options *legacy, smimed_options **ret) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r = 0;

        *ret = NULL;
        if (!legacy)
                return 0;
        r = options_from_sign(
                &(const smimed_sign_options){.opaque = legacy->opaque, .digest = legacy->digest, .pss = legacy->pss},
                &o);
        if (r < 0)
                return r;
        if (legacy->cipher && legacy->cipher[0])
                r = set_string(o, OPTION_CIPHER, &o->cipher, legacy->cipher);
        if (r >= 0 && legacy->oaep)
                r = smimed_options_set_oaep(o, true);
        if (r >= 0 && legacy->sign_as && legacy->sign_as[0])
                r = set_string(o, OPTION_SIGN_AS, &o->sign_as, legacy->sign_as);
        if (r >= 0 && legacy->sender && legacy->sender[0])
                r = set_string(o, OPTION_SENDER, &o->sender, legacy->sender);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int options_from_verify(bool verify, smimed_options **ret) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r;

        *ret = NULL;
        if (verify)
                return 0;
        o = smimed_options_new();
        if (!o)
                return -ENOMEM;
        r = smimed_options_set_verify(o, false);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}
