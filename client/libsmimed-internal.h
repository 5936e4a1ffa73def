/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the libsmimed source files share; nothing here is exported. */

#include <systemd/sd-bus.h>

#include "macro.h"
#include "smimed-bus-names.h"
#include "smimed.h"

#define _public_ __attribute__((visibility("default")))

#define DBUS_INTROSPECTABLE_INTERFACE "org.freedesktop.DBus.Introspectable"
#define DBUS_PROPERTIES_INTERFACE "org.freedesktop.DBus.Properties"

#define USEC_PER_SEC 1000000ULL

struct smimed {
        sd_bus *bus;
        smimed_call *calls; /* in progress, to cancel on close */
        smimed_slot *slots; /* subscriptions, to end on close */
};

/* Fills *error (when not NULL) and returns r. */
int error_set(smimed_error *error, int r, const char *name, const char *message);
/* Copies a D-Bus error (or, without one, strerror(r)) into *error. */
int error_from_bus(smimed_error *error, int r, const sd_bus_error *e);

/* Readers of one variant ("v") holding the given type; each replaces *ret. */
int bus_read_variant_string(sd_bus_message *m, char **ret);
int bus_read_variant_bool(sd_bus_message *m, bool *ret);
int bus_read_variant_uint32(sd_bus_message *m, uint32_t *ret);
int bus_read_variant_uint64(sd_bus_message *m, uint64_t *ret);
int bus_read_variant_strv(sd_bus_message *m, char ***ret);

/* Reads an "ao" of certificate objects into a (never NULL) list of
 * fingerprints; -EBADMSG for a path that is not a certificate's. */
int bus_read_certificate_paths(sd_bus_message *m, char ***ret);

/* A sealed memfd (named name in /proc) holding data, at offset 0; or a
 * negative errno. */
int memfd_from_data(const char *name, const void *data, size_t size);

/* What smimed would refuse of a caller's fd, said here with the reason:
 * not open, opened with O_PATH, not open for reading (writing); for an
 * input, a terminal (-EOPNOTSUPP). Fill *error and return < 0, else 0. */
int fd_check_input(int fd, smimed_error *error);
int fd_check_output(int fd, smimed_error *error);

/* smimed reads a caller's input itself, but not a regular file on FUSE,
 * whose server could keep it waiting: what is left of such a file is read
 * here into a sealed memfd. fd is what to pass. */
typedef struct InputRelay {
        int fd;
        int copy; /* the memfd when relayed, else -1 */
} InputRelay;

int input_relay_open(InputRelay *r, int input_fd, smimed_error *error);
void input_relay_done(InputRelay *r);

/* smimed writes a regular file, pipe or socket itself, never a terminal or
 * other device, nor a file on FUSE: for those it gets a memfd, copied to
 * the caller's output by output_relay_finish() once the call succeeded. fd
 * is what to pass. */
typedef struct OutputRelay {
        int fd;
        int output; /* the caller's output when relayed, else -1 */
} OutputRelay;

int output_relay_open(OutputRelay *r, int output_fd, smimed_error *error);
int output_relay_finish(OutputRelay *r, smimed_error *error);
void output_relay_done(OutputRelay *r);

/* The reply text for a reply that does not have the expected shape. */
extern const char bus_bad_reply[];

/* ---- options (libsmimed-options.c) ---- */

typedef enum OptionFlag {
        OPTION_OPAQUE = 1u << 0,
        OPTION_DIGEST = 1u << 1,
        OPTION_PSS = 1u << 2,
        OPTION_CIPHER = 1u << 3,
        OPTION_OAEP = 1u << 4,
        OPTION_SIGN_AS = 1u << 5,
        OPTION_SENDER = 1u << 6,
        OPTION_VERIFY = 1u << 7,
        OPTION_KEY = 1u << 8,
        OPTION_INTERACTIVE = 1u << 9,
} OptionFlag;

#define OPTIONS_SIGN (OPTION_OPAQUE | OPTION_DIGEST | OPTION_PSS)
#define OPTIONS_ENCRYPT (OPTIONS_SIGN | OPTION_CIPHER | OPTION_OAEP | OPTION_SIGN_AS | OPTION_SENDER)
#define OPTIONS_DECRYPT (OPTION_VERIFY | OPTION_KEY)

DEFINE_TRIVIAL_CLEANUP_FUNC(smimed_options *, smimed_options_free);

/* -EINVAL (with the reason in *error) when o sets an option outside takes
 * (OPTION_* bits) that method does not take. */
int options_check(const smimed_options *o, unsigned takes, const char *method, smimed_error *error);
/* Appends the a{sv} of the options set (o may be NULL). */
int options_append(const smimed_options *o, sd_bus_message *m);
/* The per-call flags of o on m, and the call's timeout (fallback when unset). */
int options_prepare_call(const smimed_options *o, sd_bus_message *m);
uint64_t options_timeout(const smimed_options *o, uint64_t fallback);
/* The legacy structs as an options object (*ret NULL for the defaults). */
int options_from_sign(const smimed_sign_options *legacy, smimed_options **ret);
int options_from_encrypt(const smimed_encrypt_options *legacy, smimed_options **ret);
int options_from_verify(bool verify, smimed_options **ret);

/* ---- message calls (libsmimed-messages.c), shared with the async calls ---- */

/* smimed replies once the output is written; a message may be 100 MiB, and
 * polkit may ask someone for a password first. */
#define MESSAGE_TIMEOUT_USEC (10 * 60 * USEC_PER_SEC)

typedef enum MessageMethod {
        MESSAGE_SIGN,
        MESSAGE_ENCRYPT,
        MESSAGE_DECRYPT,
        MESSAGE_VERIFY,
} MessageMethod;

/* What a message call can check before it is built: -EINVAL with the reason. */
int message_check_arguments(smimed *s, MessageMethod method, const char *sender, const char *const *recipients,
                            const smimed_options *o, smimed_error *error);
/* The method call for method on input_fd and output_fd: sender for Sign,
 * recipients for Encrypt; o checked against what the method takes. */
int message_call_new(smimed *s, MessageMethod method, const char *sender, const char *const *recipients, int input_fd,
                     int output_fd, const smimed_options *o, sd_bus_message **ret, smimed_error *error);
int message_read_result(sd_bus_message *reply, smimed_result *ret, smimed_error *error);
int message_read_status(sd_bus_message *reply, smimed_message_status *ret, smimed_error *error);

/* The input in a sealed memfd and an empty memfd for the output: smimed
 * never writes a pipe of ours, so nothing has to be read during a call. */
typedef struct MemoryIO {
        int input, output;
} MemoryIO;

int memory_io_open(const void *input, size_t size, MemoryIO *io, smimed_error *error);
/* Reads the output memfd back, NUL-terminated. */
int memory_io_read_output(MemoryIO *io, void **ret, size_t *ret_size, smimed_error *error);
void memory_io_done(MemoryIO *io);

/* ---- capabilities (libsmimed-capabilities.c) ---- */

int capabilities_call_new(smimed *s, const char *sender, const char *const *recipients, const smimed_options *o,
                          sd_bus_message **ret, smimed_error *error);
int capabilities_read_reply(sd_bus_message *reply, smimed_capabilities *ret, smimed_error *error);

/* ---- async (libsmimed-async.c, libsmimed-changes.c) ---- */

/* Cancels every call in progress and ends every subscription of s. */
void calls_disconnect_all(smimed *s);
void slots_disconnect_all(smimed *s);
