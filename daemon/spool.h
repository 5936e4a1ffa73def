/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* Spool files: where smimed keeps a message, and what a worker makes of
 * it, while a call works on it. Small ones in memory (a file on disk costs
 * more than the work), large or unknown ones in an unlinked file beside the
 * store, so that memory does not follow a message's size. Safe on any
 * thread. */

#define SPOOL_MEMORY_MAX (1024ULL * 1024ULL)

/* The directory spool files go to: the store's (the state directory), as a
 * new string; NULL when out of memory. */
char *spool_dir_for(const char *store_path);

/* An empty spool file in dir for about size_hint bytes (UINT64_MAX:
 * unknown): a memfd up to SPOOL_MEMORY_MAX, an O_TMPFILE above (a memfd
 * when dir cannot take one). */
int spool_tmpfile_sized(const char *dir, uint64_t size_hint);

/* The same in the spool directory of the store at store_path. */
int spool_tmpfile_for(const char *store_path, uint64_t size_hint);
