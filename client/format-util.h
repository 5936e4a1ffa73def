/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Time formats of smimectl, all in UTC, from µs since the epoch. Each
 * returns buf, or NULL for 0 ("not known") and for times gmtime() cannot
 * represent. */
#define FORMAT_TIME_MAX 32
const char *format_iso8601(char buf[static FORMAT_TIME_MAX], uint64_t usec);  /* 2026-01-01T00:00:00Z */
const char *format_date(char buf[static FORMAT_TIME_MAX], uint64_t usec);     /* 2026-01-01 */
const char *format_datetime(char buf[static FORMAT_TIME_MAX], uint64_t usec); /* 2026-01-01 00:00:00 UTC */

/* Writes text from the daemon for a terminal: control characters become
 * \xNN, so a certificate cannot move the cursor or forge lines. NULL is "". */
void print_text(FILE *f, const char *s);
/* The columns print_text() takes (code points; no wide-character tables). */
size_t text_width(const char *s);
/* print_text() and spaces up to width columns. */
void print_padded(FILE *f, const char *s, size_t width);
