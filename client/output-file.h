/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Where a verb writes a message that smimed produces: standard output, or
 * a file that is replaced only when the output is complete. A regular file
 * (or a new one) is written as a temporary file beside it and renamed over
 * it by output_file_commit(), so a failure leaves no half message and keeps
 * what was there; FIFOs and devices are written directly. */

typedef struct OutputFile {
        int fd;           /* what to write to */
        int owned_fd;     /* fd when it is ours to close, else -1 */
        char *target;     /* the file to replace; NULL for standard output and direct writes */
        char *temp;       /* the temporary file, NULL when there is none */
} OutputFile;

#define OUTPUT_FILE_NULL ((OutputFile) { .fd = -1, .owned_fd = -1 })

/* path NULL or "-" is standard output. mode: of a new file, before the
 * umask (a replaced file keeps its mode). Returns 0 or a negative errno. */
int output_file_open(OutputFile *f, const char *path, mode_t mode);
/* Puts the output in place. Returns 0 or a negative errno. */
int output_file_commit(OutputFile *f);
/* Closes, and removes the temporary file of an output not committed. */
void output_file_done(OutputFile *f);
