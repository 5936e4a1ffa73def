/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"

/* Copies a finished result (a file) to the file descriptor a client passed
 * for output, on the event loop: a client that reads slowly or not at all
 * never blocks other callers. The fd is used as the client opened it, never
 * reopened and its flags never changed (see fd-util.h): regular files and
 * /dev/null are written at once, pipes and sockets as they take data,
 * whether the client left them blocking or not; -ETIMEDOUT when they do not
 * in time. */

typedef struct FdWriter FdWriter;

typedef void (*FdWriterDone)(FdWriter *writer, int error, void *userdata);

/* source is read from its start (its file position is left alone) and stays
 * the caller's, open until the writer is freed; destination is the
 * writer's from now on (closed also when this fails). Fails at once with fd_classify()'s errors for a
 * destination that cannot be used (O_PATH, not open for writing, a terminal
 * or device); fd_error_to_string() says why. */
int fd_writer_new(sd_event *event, int source, int destination, uint64_t timeout_usec, FdWriterDone done,
                  void *userdata, FdWriter **ret);
FdWriter *fd_writer_free(FdWriter *writer);
DEFINE_TRIVIAL_CLEANUP_FUNC(FdWriter *, fd_writer_free);
