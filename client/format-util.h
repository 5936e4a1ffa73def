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
 * \xNN and characters the locale cannot print \uNNNN, so a certificate
 * cannot move the cursor, forge lines or turn text around; in a locale
 * without UTF-8 the daemon's "…", "·" and "—" are written in ASCII. NULL is "". */
void print_text(FILE *f, const char *s);
/* The screen columns print_text() takes (wcwidth() in a UTF-8 locale). */
size_t text_width(const char *s);
/* print_text() and spaces up to width columns. */
void print_padded(FILE *f, const char *s, size_t width);

/* A long identifier (a fingerprint, a key id): on a terminal its first
 * digits and an ellipsis, elsewhere whole, so that what a script reads can
 * be given back to smimectl. */
size_t identifier_width(FILE *f, const char *s, size_t digits);
/* print_identifier() and spaces up to width columns. */
void print_identifier(FILE *f, const char *s, size_t digits, size_t width);
