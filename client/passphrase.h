/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where smimectl gets a passphrase from; never from argv. Each returns the
 * first line (without its "\n" or "\r\n"), at most PASSPHRASE_MAX bytes, in
 * a buffer to free with erase_and_free(). Errors: -E2BIG (too long),
 * -EBADMSG (a NUL byte), -ENOTTY (no terminal), -ENODATA (standard input
 * ended before anything was read: an empty passphrase is an empty line; an
 * empty file is one), or what open/read said. */

#define PASSPHRASE_MAX 1024

int passphrase_from_file(const char *path, char **ret);
int passphrase_from_stdin(char **ret);
/* Writes prompt to the controlling terminal and reads with echo off; the
 * terminal is restored on every path, also when a signal ends or stops us. */
int passphrase_prompt(const char *prompt, char **ret);
