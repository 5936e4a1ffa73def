/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"

/* Copies a finished result (a file) to the file descriptor a client passed
 * for output, on the event loop: a client that reads slowly or not at all
 * never blocks other callers. Regular files are written at once, pipes and
 * sockets as they take data; -ETIMEDOUT when they do not in time. */

typedef struct FdWriter FdWriter;

typedef void (*FdWriterDone)(FdWriter *writer, int error, void *userdata);

/* source is read from its start; both fds are duplicated. */
int fd_writer_new(sd_event *event, int source, int destination, uint64_t timeout_usec, FdWriterDone done,
                  void *userdata, FdWriter **ret);
FdWriter *fd_writer_free(FdWriter *writer);
DEFINE_TRIVIAL_CLEANUP_FUNC(FdWriter *, fd_writer_free);
