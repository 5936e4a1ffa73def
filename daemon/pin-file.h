/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define PIN_FILE_MAX_SIZE 256U

/* Reads the token PIN from path. The file must be a regular file that neither
 * group nor others may read or write; one trailing newline is dropped.
 * On failure *ret_message holds a sentence for the admin (never the PIN).
 * The returned PIN is to be freed with erase_and_free(). */
int pin_file_read(const char *path, char **ret_pin, char **ret_message);
