/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"
#include "smime-limits.h" /* MIME_MAX_HEADER_BLOCK, MIME_MAX_HEADER_LINE, MIME_MAX_DEPTH */

/* The RFC 5322 / MIME work OpenSSL does not do: reading a message's header
 * block, telling the outer headers (From, To, Subject, …) from the entity's
 * Content-* headers, and writing the entity in the form S/MIME signs: CRLF
 * line ends and 7-bit transfer encodings only (8-bit and binary parts become
 * base64, recursively through multiparts). Everything streams between file
 * descriptors with bounded buffers; nothing here knows about CMS. */

/* A buffered reader that hands out lines (with their line end), or pieces of
 * at most MIME_LINE_CHUNK bytes of longer lines. Binary-safe. A header line
 * must fit in one piece. */
#define MIME_LINE_CHUNK MIME_MAX_HEADER_LINE

typedef struct LineReader {
        int fd;
        char buf[MIME_LINE_CHUNK * 2];
        size_t start, end;
        bool eof;
} LineReader;

void line_reader_init(LineReader *r, int fd);
/* 1 with a line or piece in *ret (*ret_complete: it ends with '\n'), 0 at
 * EOF, < 0 on error. The data stays valid until the next call. */
int line_reader_next(LineReader *r, const char **ret, size_t *ret_len, bool *ret_complete);

typedef struct Writer {
        int fd;
        char buf[65536];
        size_t len;
        int error;
} Writer;

void writer_init(Writer *w, int fd);
void writer_put(Writer *w, const void *p, size_t n);
void writer_puts(Writer *w, const char *s);
int writer_flush(Writer *w);

typedef struct MimeHeader {
        char *name;     /* as written */
        char *raw;      /* the whole field, folded lines joined by CRLF, no final line end */
} MimeHeader;

typedef struct MimeHeaders {
        MimeHeader *items;
        size_t n;
} MimeHeaders;

void mime_headers_done(MimeHeaders *h);

/* Reads a header block up to and including the empty line that ends it (or
 * EOF). -EBADMSG when a line is not a header field, with *ret_message. */
int mime_headers_read(LineReader *r, MimeHeaders *ret, char **ret_message);

/* Whether the entity in fd (read from offset 0) starts with a header
 * section: a header field, or the empty line of an empty one (1); 0 when
 * its first line is text, as in content that gateways and openssl cms
 * without -text encrypt; or a negative errno. */
int mime_fd_starts_with_header(int fd);

/* The unfolded, trimmed value of the first field called name (any case),
 * or NULL. */
char *mime_headers_get(const MimeHeaders *h, const char *name);

/* The unfolded, trimmed value of one field, or NULL when out of memory. */
char *mime_header_value(const MimeHeader *h);

/* Content-* and MIME-Version: the fields that belong to the entity. */
bool mime_header_is_content(const MimeHeader *h);

/* Splits a message's header block into outer fields and entity fields. */
int mime_headers_split(const MimeHeaders *all, MimeHeaders *ret_outer, MimeHeaders *ret_content);

/* "text/plain; charset=utf-8" → "text/plain" (lower-case). */
char *mime_content_type(const char *value);
/* A parameter of a Content-Type value, quotes removed, or NULL. */
char *mime_parameter(const char *value, const char *name);

/* Writes the fields, each with CRLF. */
void mime_headers_write(Writer *w, const MimeHeaders *h);

/* Opens an empty temporary file for spooling a part; returns an fd or a
 * negative errno. */
typedef int (*MimeTmpfile)(void *userdata);

/* Writes the entity whose Content-* fields are headers and whose body the
 * reader is at, in canonical 7-bit form: its header fields (with
 * Content-Transfer-Encoding adjusted), an empty line, the body. A missing
 * Content-Type becomes text/plain. -EBADMSG with *ret_message for input that
 * cannot be a MIME entity (nesting deeper than MIME_MAX_DEPTH). */
int mime_write_canonical_entity(LineReader *in, const MimeHeaders *headers, Writer *out, MimeTmpfile tmpfile,
                                void *userdata, char **ret_message);
