/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"

/* Reads a file descriptor a client passed to its end, on the event loop: a
 * slow or stuck client never blocks other callers. The fd is used as the
 * client opened it, not reopened and its flags never changed (see
 * fd-util.h): regular files (memfds) and /dev/null are read at once, pipes
 * and sockets as data arrives, whether the client left them blocking or
 * not. Stops with -EFBIG past max_size and -ETIMEDOUT when EOF does not come
 * in time. The buffer is erased when the reader is freed (it may hold a
 * PKCS#12 file). */

typedef struct FdReader FdReader;

/* Called once, from the event loop; error is 0 or a negative errno. The
 * callback may free the reader. */
typedef void (*FdReaderDone)(FdReader *reader, int error, void *userdata);

/* Fails at once with fd_classify()'s errors for an fd that cannot be used
 * (O_PATH, not open for reading, a terminal or device); fd_error_to_string()
 * says why. */
int fd_reader_new(sd_event *event, int fd, size_t max_size, uint64_t timeout_usec, FdReaderDone done,
                  void *userdata, FdReader **ret);
/* The same, but the data goes to the file sink (appended), so that memory
 * does not grow with the size of the input; sink stays the caller's, open
 * until the reader is freed. charge (if not NULL) is told
 * of every chunk before it is written there, with userdata; when it
 * returns < 0, reading stops with that error (a spool quota). */
typedef int (*FdReaderCharge)(size_t n, void *userdata);
int fd_reader_new_to_file(sd_event *event, int fd, int sink, size_t max_size, uint64_t timeout_usec,
                          FdReaderCharge charge, FdReaderDone done, void *userdata, FdReader **ret);
/* For an input smimed has whole already (a sealed memfd, fd_take_sealed()):
 * nothing is read; size is checked against max_size and charged as the
 * readers above do, and done is called from the loop as theirs is. */
int fd_reader_new_whole(sd_event *event, uint64_t size, size_t max_size, FdReaderCharge charge, FdReaderDone done,
                        void *userdata, FdReader **ret);
FdReader *fd_reader_free(FdReader *reader);
DEFINE_TRIVIAL_CLEANUP_FUNC(FdReader *, fd_reader_free);

const void *fd_reader_data(const FdReader *reader, size_t *ret_size);
/* How many bytes were read. */
size_t fd_reader_size(const FdReader *reader);
