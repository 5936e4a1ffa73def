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

/* smimed replies once the output is written; a message may be 100 MiB, and
 * polkit may ask someone for a password first. */
#define MESSAGE_TIMEOUT_USEC (10 * 60 * USEC_PER_SEC)

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

static int new_call(smimed *s, const char *method, sd_bus_message **ret, smimed_error *error) {
        int r;

        r = sd_bus_message_new_method_call(s->bus, ret, SMIMED_BUS_NAME, SMIMED_MANAGER_PATH,
                                           SMIMED_MANAGER_INTERFACE, method);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        return 0;
}

/* sd-bus sends duplicates of the fds: they stay the caller's. */
static int append_fds(sd_bus_message *m, int input_fd, int output_fd, smimed_error *error) {
        int r;

        r = sd_bus_message_append(m, "hh", input_fd, output_fd);
        if (r < 0)
                return error_set(error, r, NULL, "Cannot pass the file descriptors.");
        return 0;
}

/* Only what differs from smimed's defaults. */
static int append_sign_options(sd_bus_message *m, bool opaque, const char *digest, bool pss) {
        int r = 0;

        if (opaque)
                r = sd_bus_message_append(m, "{sv}", "opaque", "b", true);
        if (r >= 0 && digest && digest[0])
                r = sd_bus_message_append(m, "{sv}", "digest", "s", digest);
        if (r >= 0 && pss)
                r = sd_bus_message_append(m, "{sv}", "pss", "b", true);
        return r;
}

/* The text for a failure to build a call: what sd-bus refuses is text that
 * is not UTF-8. */
static int append_failed(smimed_error *error, int r) {
        if (r == -EINVAL)
                return error_set(error, r, NULL, "An address or option is not valid UTF-8 text.");
        return error_set(error, r, NULL, strerror(-r));
}

/* smimed uses the fds as they are and leaves their flags alone (blocking
 * stays blocking); the output goes through a memfd when smimed cannot
 * write it itself. */
static int message_call(smimed *s, sd_bus_message *m, OutputRelay *relay, sd_bus_message **ret_reply,
                        smimed_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call(s->bus, m, MESSAGE_TIMEOUT_USEC, &e, ret_reply);
        if (r < 0)
                return error_from_bus(error, r, &e);
        return output_relay_finish(relay, error);
}

static int read_result(sd_bus_message *reply, smimed_result *ret, smimed_error *error) {
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

static int read_status(sd_bus_message *reply, smimed_message_status *ret, smimed_error *error) {
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

_public_ int smimed_sign_fd(smimed *s, const char *sender, int input_fd, int output_fd,
                            const smimed_sign_options *o, smimed_result *ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(output_relay_done) OutputRelay relay = { -1, -1 };
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        if (!sender || !sender[0])
                return error_set(error, -EINVAL, NULL, "No sender given.");
        r = fd_check_input(input_fd, error);
        if (r >= 0)
                r = fd_check_output(output_fd, error);
        if (r >= 0)
                r = output_relay_open(&relay, output_fd, error);
        if (r >= 0)
                r = new_call(s, "Sign", &m, error);
        if (r < 0)
                return r;

        r = sd_bus_message_append(m, "s", sender);
        if (r < 0)
                return append_failed(error, r);
        r = append_fds(m, input_fd, relay.fd, error);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && o)
                r = append_sign_options(m, o->opaque, o->digest, o->pss);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return append_failed(error, r);

        r = message_call(s, m, &relay, &reply, error);
        if (r < 0)
                return r;
        return read_result(reply, ret, error);
}

_public_ int smimed_encrypt_fd(smimed *s, const char *const *recipients, int input_fd, int output_fd,
                               const smimed_encrypt_options *o, smimed_result *ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(output_relay_done) OutputRelay relay = { -1, -1 };
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        if (!recipients || !recipients[0])
                return error_set(error, -EINVAL, NULL, "No recipients given.");
        r = fd_check_input(input_fd, error);
        if (r >= 0)
                r = fd_check_output(output_fd, error);
        if (r >= 0)
                r = output_relay_open(&relay, output_fd, error);
        if (r >= 0)
                r = new_call(s, "Encrypt", &m, error);
        if (r < 0)
                return r;

        /* sd-bus does not change the strings; it only lacks a const signature. */
        r = sd_bus_message_append_strv(m, (char **) recipients);
        if (r < 0)
                return append_failed(error, r);
        r = append_fds(m, input_fd, relay.fd, error);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && o && o->cipher && o->cipher[0])
                r = sd_bus_message_append(m, "{sv}", "cipher", "s", o->cipher);
        if (r >= 0 && o && o->oaep)
                r = sd_bus_message_append(m, "{sv}", "oaep", "b", true);
        if (r >= 0 && o && o->sign_as && o->sign_as[0])
                r = sd_bus_message_append(m, "{sv}", "sign_as", "s", o->sign_as);
        if (r >= 0 && o && o->sender && o->sender[0])
                r = sd_bus_message_append(m, "{sv}", "sender", "s", o->sender);
        if (r >= 0 && o)
                r = append_sign_options(m, o->opaque, o->digest, o->pss);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return append_failed(error, r);

        r = message_call(s, m, &relay, &reply, error);
        if (r < 0)
                return r;
        return read_result(reply, ret, error);
}

/* Decrypt (with its "verify" option) or Verify. */
static int open_fd(smimed *s, const char *method, int input_fd, int output_fd, bool verify,
                   smimed_message_status *ret, smimed_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(output_relay_done) OutputRelay relay = { -1, -1 };
        int r;

        if (!s)
                return error_set(error, -EINVAL, NULL, "Invalid argument.");
        r = fd_check_input(input_fd, error);
        if (r >= 0)
                r = fd_check_output(output_fd, error);
        if (r >= 0)
                r = output_relay_open(&relay, output_fd, error);
        if (r >= 0)
                r = new_call(s, method, &m, error);
        if (r >= 0)
                r = append_fds(m, input_fd, relay.fd, error);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && !verify)
                r = sd_bus_message_append(m, "{sv}", "verify", "b", false);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));

        r = message_call(s, m, &relay, &reply, error);
        if (r < 0)
                return r;
        return read_status(reply, ret, error);
}

_public_ int smimed_decrypt_fd(smimed *s, int input_fd, int output_fd, bool verify, smimed_message_status *ret,
                               smimed_error *error) {
        return open_fd(s, "Decrypt", input_fd, output_fd, verify, ret, error);
}

_public_ int smimed_verify_fd(smimed *s, int input_fd, int output_fd, smimed_message_status *ret,
                              smimed_error *error) {
        return open_fd(s, "Verify", input_fd, output_fd, true, ret, error);
}

_public_ int smimed_open_fd(smimed *s, int input_fd, int output_fd, smimed_message_status *ret,
                            smimed_error *error) {
        return open_fd(s, "Decrypt", input_fd, output_fd, true, ret, error);
}

/* ---- from and to memory ---- */

/* The input in a sealed memfd and an empty memfd for the output. */
typedef struct MemoryIO {
        int input, output;
} MemoryIO;

static void memory_io_done(MemoryIO *io) {
        closep(&io->input);
        closep(&io->output);
}

static int memory_io_open(const void *input, size_t size, MemoryIO *io, smimed_error *error) {
        *io = (MemoryIO) { .input = -1, .output = -1 };

        if (!input)
                return error_set(error, -EINVAL, NULL, "No message given.");
        if (size == 0)
                return error_set(error, -EINVAL, NULL, "The message is empty.");

        io->input = memfd_from_data("smimed-input", input, size);
        if (io->input < 0)
                return error_set(error, io->input, NULL, strerror(-io->input));
        io->output = memfd_create("smimed-output", MFD_CLOEXEC);
        if (io->output < 0)
                return error_set(error, -errno, NULL, strerror(errno));
        return 0;
}

/* Reads the output memfd back, NUL-terminated. */
static int memory_io_read_output(MemoryIO *io, void **ret, size_t *ret_size, smimed_error *error) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;

        if (!ret && !ret_size)
                return 0;
        if (fstat(io->output, &st) < 0)
                return error_set(error, -errno, NULL, strerror(errno));
        if ((uintmax_t) st.st_size >= SIZE_MAX)
                return error_set(error, -EFBIG, NULL, strerror(EFBIG));
        if (!ret) {
                *ret_size = (size_t) st.st_size;
                return 0;
        }

        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        while (size < (size_t) st.st_size) {
                ssize_t n = pread(io->output, buf + size, (size_t) st.st_size - size, (off_t) size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(error, -errno, NULL, strerror(errno));
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        buf[size] = '\0';

        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

_public_ int smimed_sign(smimed *s, const char *sender, const void *input, size_t size,
                         const smimed_sign_options *o, void **ret_output, size_t *ret_size, smimed_result *ret,
                         smimed_error *error) {
        _cleanup_(memory_io_done) MemoryIO io = { -1, -1 };
        _cleanup_(smimed_result_done) smimed_result res = {};
        int r;

        r = memory_io_open(input, size, &io, error);
        if (r >= 0)
                r = smimed_sign_fd(s, sender, io.input, io.output, o, &res, error);
        if (r >= 0)
                r = memory_io_read_output(&io, ret_output, ret_size, error);
        if (r < 0)
                return r;
        if (ret) {
                *ret = res;
                res = (smimed_result) {};
        }
        return 0;
}

_public_ int smimed_encrypt(smimed *s, const char *const *recipients, const void *input, size_t size,
                            const smimed_encrypt_options *o, void **ret_output, size_t *ret_size,
                            smimed_result *ret, smimed_error *error) {
        _cleanup_(memory_io_done) MemoryIO io = { -1, -1 };
        _cleanup_(smimed_result_done) smimed_result res = {};
        int r;

        r = memory_io_open(input, size, &io, error);
        if (r >= 0)
                r = smimed_encrypt_fd(s, recipients, io.input, io.output, o, &res, error);
        if (r >= 0)
                r = memory_io_read_output(&io, ret_output, ret_size, error);
        if (r < 0)
                return r;
        if (ret) {
                *ret = res;
                res = (smimed_result) {};
        }
        return 0;
}

static int open_memory(smimed *s, const char *method, const void *input, size_t size, bool verify,
                       void **ret_output, size_t *ret_size, smimed_message_status *ret, smimed_error *error) {
        _cleanup_(memory_io_done) MemoryIO io = { -1, -1 };
        _cleanup_(smimed_message_status_done) smimed_message_status st = {};
        int r;

        r = memory_io_open(input, size, &io, error);
        if (r >= 0)
                r = open_fd(s, method, io.input, io.output, verify, &st, error);
        if (r >= 0)
                r = memory_io_read_output(&io, ret_output, ret_size, error);
        if (r < 0)
                return r;
        if (ret) {
                *ret = st;
                st = (smimed_message_status) {};
        }
        return 0;
}

_public_ int smimed_decrypt(smimed *s, const void *input, size_t size, bool verify, void **ret_output,
                            size_t *ret_size, smimed_message_status *ret, smimed_error *error) {
        return open_memory(s, "Decrypt", input, size, verify, ret_output, ret_size, ret, error);
}

_public_ int smimed_verify(smimed *s, const void *input, size_t size, void **ret_output, size_t *ret_size,
                           smimed_message_status *ret, smimed_error *error) {
        return open_memory(s, "Verify", input, size, true, ret_output, ret_size, ret, error);
}

_public_ int smimed_open(smimed *s, const void *input, size_t size, void **ret_output, size_t *ret_size,
                         smimed_message_status *ret, smimed_error *error) {
        return open_memory(s, "Decrypt", input, size, true, ret_output, ret_size, ret, error);
}
