/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the libsmimed source files share; nothing here is exported. */

#include <systemd/sd-bus.h>

#include "smimed-bus-names.h"
#include "smimed.h"

#define _public_ __attribute__((visibility("default")))

#define DBUS_INTROSPECTABLE_INTERFACE "org.freedesktop.DBus.Introspectable"
#define DBUS_PROPERTIES_INTERFACE "org.freedesktop.DBus.Properties"

#define USEC_PER_SEC 1000000ULL

struct smimed {
        sd_bus *bus;
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

/* smimed writes a regular file, pipe or socket itself, never a terminal or
 * other device: for those it gets a memfd, copied to the caller's output
 * by output_relay_finish() once the call succeeded. fd is what to pass. */
typedef struct OutputRelay {
        int fd;
        int output; /* the caller's output when relayed, else -1 */
} OutputRelay;

int output_relay_open(OutputRelay *r, int output_fd, smimed_error *error);
int output_relay_finish(OutputRelay *r, smimed_error *error);
void output_relay_done(OutputRelay *r);

/* The reply text for a reply that does not have the expected shape. */
extern const char bus_bad_reply[];
