/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libsmimed-internal.h"
#include "macro.h"
#include "strv.h"

_public_ void smimed_result_done(smimed_result *r) {
        if (!r)
                return;
        free(r->signer);
        strv_free(r->recipients);
        *r = (smimed_result) {};
}

static void signer_done(smimed_signer *s) {
        free(s->fingerprint);
        free(s->subject);
        free(s->issuer);
        free(s->address);
        free(s->summary);
        *s = (smimed_signer) {};
}

_public_ void smimed_message_status_done(smimed_message_status *st) {
        if (!st)
                return;
        free(st->encryption);
        free(st->encryption_message);
        free(st->signature);
        free(st->signature_message);
        free(st->key);
        free(st->key_certificate);
        signer_done(&st->signer);
        *st = (smimed_message_status) {};
}

/* ---- replies ---- */

typedef int (*DictEntryReader)(sd_bus_message *m, const char *key, void *userdata);

/* Reads an a{sv}, handing each entry's variant to read_entry. */
static int bus_read_dict(sd_bus_message *m, DictEntryReader read_entry, void *userdata) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = read_entry(m, key, userdata);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int result_read_entry(sd_bus_message *m, const char *key, void *userdata) {
        smimed_result *res = userdata;

        if (streq(key, "signer"))
                return bus_read_variant_string(m, &res->signer);
        if (streq(key, "recipients"))
                return bus_read_variant_strv(m, &res->recipients);
        if (streq(key, "sender_included"))
                return bus_read_variant_bool(m, &res->sender_included);
        if (streq(key, "size"))
                return bus_read_variant_uint64(m, &res->size);
        return sd_bus_message_skip(m, "v"); /* newer than this library */
}

static int signer_read_entry(sd_bus_message *m, const char *key, void *userdata) {
        smimed_signer *s = userdata;

        if (streq(key, "fingerprint"))
                return bus_read_variant_string(m, &s->fingerprint);
        if (streq(key, "subject"))
                return bus_read_variant_string(m, &s->subject);
        if (streq(key, "issuer"))
                return bus_read_variant_string(m, &s->issuer);
        if (streq(key, "address"))
                return bus_read_variant_string(m, &s->address);
        if (streq(key, "summary"))
                return bus_read_variant_string(m, &s->summary);
        if (streq(key, "not_before"))
                return bus_read_variant_uint64(m, &s->not_before);
        if (streq(key, "not_after"))
                return bus_read_variant_uint64(m, &s->not_after);
        return sd_bus_message_skip(m, "v");
}

static int status_read_signer(sd_bus_message *m, smimed_message_status *st) {
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a{sv}");
        if (r < 0)
                return r;
        signer_done(&st->signer);
        r = bus_read_dict(m, signer_read_entry, &st->signer);
        if (r < 0)
                return r;
        st->have_signer = true;
        return sd_bus_message_exit_container(m);
}

static int status_read_entry(sd_bus_message *m, const char *key, void *userdata) {
        smimed_message_status *st = userdata;

        if (streq(key, "encryption"))
                return bus_read_variant_string(m, &st->encryption);
        if (streq(key, "encryption_message"))
                return bus_read_variant_string(m, &st->encryption_message);
        if (streq(key, "signature"))
                return bus_read_variant_string(m, &st->signature);
        if (streq(key, "signature_message"))
                return bus_read_variant_string(m, &st->signature_message);
        if (streq(key, "key"))
                return bus_read_variant_string(m, &st->key);
        if (streq(key, "key_certificate"))
                return bus_read_variant_string(m, &st->key_certificate);
        if (streq(key, "content"))
                return bus_read_variant_bool(m, &st->content);
        if (streq(key, "size"))
                return bus_read_variant_uint64(m, &st->size);
        if (streq(key, "signer"))
                return status_read_signer(m, st);
        return sd_bus_message_skip(m, "v");
}

/* *p = "" when the reply left it out, so that callers never meet NULL. */
static int empty_if_null(char **p) {
        if (*p)
                return 0;
        *p = strdup("");
        return *p ? 0 : -ENOMEM;
}

static int status_read(sd_bus_message *reply, smimed_message_status *st) {
        int r;

        r = bus_read_dict(reply, status_read_entry, st);
        if (r < 0)
                return r;
        /* The two words every status has. */
        if (!st->encryption || !st->signature)
                return -EBADMSG;

        r = empty_if_null(&st->encryption_message);
        if (r >= 0)
                r = empty_if_null(&st->signature_message);
        if (r >= 0 && st->have_signer) {
                r = empty_if_null(&st->signer.fingerprint);
                if (r >= 0)
                        r = empty_if_null(&st->signer.subject);
                if (r >= 0)
                        r = empty_if_null(&st->signer.issuer);
                if (r >= 0)
                        r = empty_if_null(&st->signer.address);
                if (r >= 0)
                        r = empty_if_null(&st->signer.summary);
        }
        return r;
}

/* ---- calls ---- */

static const struct {
        const char *name;
        unsigned takes; /* OPTION_* */
} message_methods[] = {
        [MESSAGE_SIGN] = {"Sign", OPTIONS_SIGN},
        [MESSAGE_ENCRYPT] = {"Encrypt", OPTIONS_ENCRYPT},
        [MESSAGE_DECRYPT] = {"Decrypt", OPTIONS_DECRYPT},
        [MESSAGE_VERIFY] = {"Verify", 0},
};

/* The text for a failure to build a call: what sd-bus refuses is text that
 * is not UTF-8. */
static int append_failed(smimed_error *error, int r) {
        if (r == -EINVAL)
                return error_set(error, r, NULL, "An address or option is not valid UTF-8 text.");
        return error_set(error, r, NULL, strerror(-r));
}

int message_check_arguments(smimed *s, MessageMethod method, const char *sender, const char *const *recipients,
                            const smimed_options *o, smimed_error *error) {
        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        if (method == MESSAGE_SIGN && (!sender || !sender[0]))
                return error_set(error, -EINVAL, NULL, "No sender given.");
        if (method == MESSAGE_ENCRYPT && (!recipients || !recipients[0]))
                return error_set(error, -EINVAL, NULL, "No recipients given.");
        return options_check(o, message_methods[method].takes, message_methods[method].name, error);
}

int message_call_new(smimed *s, MessageMethod method, const char *sender, const char *const *recipients, int input_fd,
                     int output_fd, const smimed_options *o, sd_bus_message **ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *name = message_methods[method].name;
        int r;

        r = message_check_arguments(s, method, sender, recipients, o, error);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_call(s->bus, &m, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH, SMIMED_MANAGER_INTERFACE,
                                           name);
        if (r >= 0)
                r = options_prepare_call(o, m);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));

        if (method == MESSAGE_SIGN)
                r = sd_bus_message_append(m, "s", sender);
        else if (method == MESSAGE_ENCRYPT)
                /* sd-bus does not change the strings; it only lacks a const signature. */
                r = sd_bus_message_append_strv(m, (char **) recipients);
        if (r < 0)
                return append_failed(error, r);
        /* sd-bus sends duplicates of the fds: they stay the caller's. */
        r = sd_bus_message_append(m, "hh", input_fd, output_fd);
        if (r < 0)
                return error_set(error, r, NULL, "Cannot pass the file descriptors.");
        r = options_append(o, m);
        if (r < 0)
                return append_failed(error, r);

        *ret = TAKE_PTR(m);
        return 0;
}

int message_read_result(sd_bus_message *reply, smimed_result *ret, smimed_error *error) {
        _cleanup_(smimed_result_done) smimed_result res = {};
        int r;

        r = bus_read_dict(reply, result_read_entry, &res);
        if (r < 0)
                return error_set(error, r, NULL, r == -ENOMEM ? strerror(ENOMEM) : bus_bad_reply);
        if (ret) {
                *ret = res;
                res = (smimed_result) {};
        }
        return 0;
}

int message_read_status(sd_bus_message *reply, smimed_message_status *ret, smimed_error *error) {
        _cleanup_(smimed_message_status_done) smimed_message_status st = {};
        int r;

        r = status_read(reply, &st);
        if (r < 0)
                return error_set(error, r, NULL, r == -ENOMEM ? strerror(ENOMEM) : bus_bad_reply);
        if (ret) {
                *ret = st;
                st = (smimed_message_status) {};
        }
        return 0;
}

/* One blocking call on the caller's fds. smimed uses them as they are and
 * leaves their flags alone (blocking stays blocking); an input smimed
 * would refuse (a file on FUSE) is read here into a memfd, and the output
 * goes through a memfd when smimed cannot write it itself. The reply is left in
 * *ret_reply for the caller to read. */
static int message_call_fd(smimed *s, MessageMethod method, const char *sender, const char *const *recipients,
                           int input_fd, int output_fd, const smimed_options *o, sd_bus_message **ret_reply,
                           smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(input_relay_done) InputRelay in = {-1, -1};
        _cleanup_(output_relay_done) OutputRelay relay = { -1, -1 };
        int r;

        r = message_check_arguments(s, method, sender, recipients, o, error);
        if (r >= 0)
                r = fd_check_input(input_fd, error);
        if (r >= 0)
                r = fd_check_output(output_fd, error);
        if (r >= 0)
                r = input_relay_open(&in, input_fd, error);
        if (r >= 0)
                r = output_relay_open(&relay, output_fd, error);
        if (r >= 0)
                r = message_call_new(s, method, sender, recipients, in.fd, relay.fd, o, &m, error);
        if (r < 0)
                return r;

        r = sd_bus_call(s->bus, m, options_timeout(o, MESSAGE_TIMEOUT_USEC), &e, ret_reply);
        if (r < 0)
                return error_from_bus(error, r, &e);
        return output_relay_finish(&relay, error);
}

_public_ int smimed_sign_fd_with_options(smimed *s, const char *sender, int input_fd, int output_fd,
                                         const smimed_options *o, smimed_result *ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = message_call_fd(s, MESSAGE_SIGN, sender, NULL, input_fd, output_fd, o, &reply, error);
        if (r < 0)
                return r;
        return message_read_result(reply, ret, error);
}

_public_ int smimed_encrypt_fd_with_options(smimed *s, const char *const *recipients, int input_fd, int output_fd,
                                            const smimed_options *o, smimed_result *ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = message_call_fd(s, MESSAGE_ENCRYPT, NULL, recipients, input_fd, output_fd, o, &reply, error);
        if (r < 0)
                return r;
        return message_read_result(reply, ret, error);
}

_public_ int smimed_decrypt_fd_with_options(smimed *s, int input_fd, int output_fd, const smimed_options *o,
                                            smimed_message_status *ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = message_call_fd(s, MESSAGE_DECRYPT, NULL, NULL, input_fd, output_fd, o, &reply, error);
        if (r < 0)
                return r;
        return message_read_status(reply, ret, error);
}

_public_ int smimed_verify_fd_with_options(smimed *s, int input_fd, int output_fd, const smimed_options *o,
                                           smimed_message_status *ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = message_call_fd(s, MESSAGE_VERIFY, NULL, NULL, input_fd, output_fd, o, &reply, error);
        if (r < 0)
                return r;
        return message_read_status(reply, ret, error);
}

/* ---- the legacy option structs ---- */

static int legacy_failed(smimed_error *error, int r) {
        return error_set(error, r, NULL, strerror(-r));
}

_public_ int smimed_sign_fd(smimed *s, const char *sender, int input_fd, int output_fd,
                            const smimed_sign_options *legacy, smimed_result *ret, smimed_error *error) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r;

        r = options_from_sign(legacy, &o);
        if (r < 0)
                return legacy_failed(error, r);
        return smimed_sign_fd_with_options(s, sender, input_fd, output_fd, o, ret, error);
}

_public_ int smimed_encrypt_fd(smimed *s, const char *const *recipients, int input_fd, int output_fd,
                               const smimed_encrypt_options *legacy, smimed_result *ret, smimed_error *error) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r;

        r = options_from_encrypt(legacy, &o);
        if (r < 0)
                return legacy_failed(error, r);
        return smimed_encrypt_fd_with_options(s, recipients, input_fd, output_fd, o, ret, error);
}

_public_ int smimed_decrypt_fd(smimed *s, int input_fd, int output_fd, bool verify, smimed_message_status *ret,
                               smimed_error *error) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r;

        r = options_from_verify(verify, &o);
        if (r < 0)
                return legacy_failed(error, r);
        return smimed_decrypt_fd_with_options(s, input_fd, output_fd, o, ret, error);
}

_public_ int smimed_verify_fd(smimed *s, int input_fd, int output_fd, smimed_message_status *ret,
                              smimed_error *error) {
        return smimed_verify_fd_with_options(s, input_fd, output_fd, NULL, ret, error);
}

_public_ int smimed_open_fd(smimed *s, int input_fd, int output_fd, smimed_message_status *ret, smimed_error *error) {
        return smimed_decrypt_fd_with_options(s, input_fd, output_fd, NULL, ret, error);
}
