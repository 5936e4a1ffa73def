/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fd-util.h"
#include "message.h"
#include "mime.h"

#define BASE64_LINE_INPUT 57 /* → 76 characters per line */
#define MAX_LINE_7BIT 998     /* RFC 5322 2.1.1 */

/* ---- reading lines ---- */

void line_reader_init(LineReader *r, int fd) {
        r->fd = fd;
        r->start = r->end = 0;
        r->eof = false;
}

static int line_reader_fill(LineReader *r) {
        ssize_t n;

        if (r->start > 0) {
                memmove(r->buf, r->buf + r->start, r->end - r->start);
                r->end -= r->start;
                r->start = 0;
        }
        for (;;) {
                n = read(r->fd, r->buf + r->end, sizeof(r->buf) - r->end);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        r->eof = true;
                r->end += (size_t) n;
                return 0;
        }
}

int line_reader_next(LineReader *r, const char **ret, size_t *ret_len, bool *ret_complete) {
        for (;;) {
                size_t avail = r->end - r->start;
                const char *nl = memchr(r->buf + r->start, '\n', avail < MIME_LINE_CHUNK ? avail : MIME_LINE_CHUNK);
                int k;

                if (nl || avail >= MIME_LINE_CHUNK || (r->eof && avail > 0)) {
                        size_t len = nl ? (size_t) (nl - (r->buf + r->start)) + 1
                                        : avail < MIME_LINE_CHUNK ? avail : MIME_LINE_CHUNK;

                        *ret = r->buf + r->start;
                        *ret_len = len;
                        *ret_complete = nl != NULL;
                        r->start += len;
                        return 1;
                }
                if (r->eof)
                        return 0;
                k = line_reader_fill(r);
                if (k < 0)
                        return k;
        }
}

/* The length of line without its line end. */
static size_t content_length(const char *line, size_t len) {
        if (len > 0 && line[len - 1] == '\n')
                len--;
        if (len > 0 && line[len - 1] == '\r')
                len--;
        return len;
}

/* ---- writing ---- */

void writer_init(Writer *w, int fd) {
        w->fd = fd;
        w->len = 0;
        w->error = 0;
}

int writer_flush(Writer *w) {
        size_t done = 0;

        while (w->error == 0 && done < w->len) {
                ssize_t n = write(w->fd, w->buf + done, w->len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        w->error = -errno;
                else
                        done += (size_t) n;
        }
        w->len = 0;
        return w->error;
}

void writer_put(Writer *w, const void *p, size_t n) {
        const char *c = p;

        while (n > 0 && w->error == 0) {
                size_t k = sizeof(w->buf) - w->len;

                if (k == 0) {
                        writer_flush(w);
                        continue;
                }
                if (k > n)
                        k = n;
                memcpy(w->buf + w->len, c, k);
                w->len += k;
                c += k;
                n -= k;
        }
}

void writer_puts(Writer *w, const char *s) {
        writer_put(w, s, strlen(s));
}

/* ---- header fields ---- */

void mime_headers_done(MimeHeaders *h) {
        for (size_t i = 0; i < h->n; i++) {
                free(h->items[i].name);
                free(h->items[i].raw);
        }
        free(h->items);
        *h = (MimeHeaders) {};
}

static int headers_add(MimeHeaders *h, const char *name, size_t name_len, const char *raw, size_t raw_len) {
        MimeHeader *items = realloc(h->items, (h->n + 1) * sizeof(MimeHeader));

        if (!items)
                return -ENOMEM;
        h->items = items;
        items[h->n].name = strndup(name, name_len);
        items[h->n].raw = strndup(raw, raw_len);
        if (!items[h->n].name || !items[h->n].raw) {
                free(items[h->n].name);
                free(items[h->n].raw);
                return -ENOMEM;
        }
        h->n++;
        return 0;
}

static int headers_add_copy(MimeHeaders *h, const MimeHeader *f) {
        return headers_add(h, f->name, strlen(f->name), f->raw, strlen(f->raw));
}

static int header_append_continuation(MimeHeader *f, const char *line, size_t len) {
        size_t old = strlen(f->raw);
        char *raw = realloc(f->raw, old + 2 + len + 1);

        if (!raw)
                return -ENOMEM;
        memcpy(raw + old, "\r\n", 2);
        memcpy(raw + old + 2, line, len);
        raw[old + 2 + len] = '\0';
        f->raw = raw;
        return 0;
}

/* The length of a field name at the start of line, or 0. */
static size_t field_name_length(const char *line, size_t len) {
        size_t i = 0;

        while (i < len && line[i] > ' ' && line[i] < 0x7f && line[i] != ':')
                i++;
        return i > 0 && i < len && line[i] == ':' ? i : 0;
}

int mime_fd_starts_with_header(int fd) {
        char line[1024]; /* enough to see a field name and its colon */
        ssize_t n;
        size_t len;
        const char *end;

        n = pread(fd, line, sizeof(line), 0);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 1; /* empty: no header section to miss */
        end = memchr(line, '\n', (size_t) n);
        len = content_length(line, end ? (size_t) (end - line) + 1 : (size_t) n);
        if (len == 0)
                return 1;
        if (len >= 5 && memcmp(line, "From ", 5) == 0)
                return 1; /* an mbox envelope line, which mime_headers_read() drops */
        return field_name_length(line, len) > 0;
}

int mime_headers_read(LineReader *r, MimeHeaders *ret, char **ret_message) {
        _cleanup_(mime_headers_done) MimeHeaders h = {};
        size_t total = 0;
        unsigned line_number = 0;

        for (;;) {
                const char *line;
                size_t len, content, name_len;
                bool complete;
                int k;

                k = line_reader_next(r, &line, &len, &complete);
                if (k < 0)
                        return k;
                if (k == 0)
                        break; /* headers without a body */
                line_number++;
                total += len;
                if (!complete && !r->eof)
                        return message_fail(ret_message, -EBADMSG,
                                            "header line %u is longer than %u bytes (MIME_MAX_HEADER_LINE)",
                                            line_number, MIME_MAX_HEADER_LINE);
                if (total > MIME_MAX_HEADER_BLOCK)
                        return message_fail(ret_message, -EBADMSG,
                                            "the header block is larger than %u KiB (MIME_MAX_HEADER_BLOCK)",
                                            MIME_MAX_HEADER_BLOCK / 1024);

                content = content_length(line, len);
                if (content == 0)
                        break; /* the empty line: the body follows */

                if (line[0] == ' ' || line[0] == '\t') {
                        if (h.n == 0)
                                return message_fail(ret_message, -EBADMSG,
                                                    "line %u continues a header field that does not exist",
                                                    line_number);
                        k = header_append_continuation(&h.items[h.n - 1], line, content);
                        if (k < 0)
                                return k;
                        continue;
                }

                name_len = field_name_length(line, content);
                if (name_len == 0 && line_number == 1 && content >= 5 && memcmp(line, "From ", 5) == 0)
                        continue; /* an mbox envelope line ("From sender date"), as mail tools leave it: dropped */
                if (name_len == 0)
                        return message_fail(ret_message, -EBADMSG, "line %u is not a header field (Name: value)",
                                            line_number);
                k = headers_add(&h, line, name_len, line, content);
                if (k < 0)
                        return k;
        }

        *ret = h;
        h = (MimeHeaders) {};
        return 0;
}

static char *unfold_value(const char *raw) {
        const char *colon = strchr(raw, ':');
        char *v, *o;

        if (!colon)
                return NULL;
        v = malloc(strlen(colon));
        if (!v)
                return NULL;
        o = v;
        for (const char *p = colon + 1; *p; p++)
                if (*p != '\r' && *p != '\n')
                        *o++ = *p;
        *o = '\0';

        /* trim */
        for (o = v; *o == ' ' || *o == '\t'; o++)
                ;
        memmove(v, o, strlen(o) + 1);
        for (o = v + strlen(v); o > v && (o[-1] == ' ' || o[-1] == '\t'); o--)
                o[-1] = '\0';
        return v;
}

char *mime_headers_get(const MimeHeaders *h, const char *name) {
        for (size_t i = 0; i < h->n; i++)
                if (strcasecmp(h->items[i].name, name) == 0)
                        return unfold_value(h->items[i].raw);
        return NULL;
}

char *mime_header_value(const MimeHeader *h) {
        return unfold_value(h->raw);
}

bool mime_header_is_content(const MimeHeader *f) {
        return strncasecmp(f->name, "Content-", 8) == 0 || strcasecmp(f->name, "MIME-Version") == 0;
}

int mime_headers_split(const MimeHeaders *all, MimeHeaders *ret_outer, MimeHeaders *ret_content) {
        _cleanup_(mime_headers_done) MimeHeaders outer = {}, content = {};
        int r;

        for (size_t i = 0; i < all->n; i++) {
                r = headers_add_copy(mime_header_is_content(&all->items[i]) ? &content : &outer, &all->items[i]);
                if (r < 0)
                        return r;
        }
        *ret_outer = outer;
        *ret_content = content;
        outer = content = (MimeHeaders) {};
        return 0;
}

char *mime_content_type(const char *value) {
        size_t n = strcspn(value, ";");
        char *t;

        while (n > 0 && isspace((unsigned char) value[n - 1]))
                n--;
        t = strndup(value, n);
        for (char *p = t; p && *p; p++)
                *p = (char) tolower((unsigned char) *p);
        return t;
}

char *mime_parameter(const char *value, const char *name) {
        size_t name_len = strlen(name);
        const char *p = strchr(value, ';');

        while (p) {
                p++;
                while (isspace((unsigned char) *p))
                        p++;
                if (strncasecmp(p, name, name_len) == 0) {
                        const char *q = p + name_len;

                        while (isspace((unsigned char) *q))
                                q++;
                        if (*q == '=') {
                                char *v, *o;

                                q++;
                                while (isspace((unsigned char) *q))
                                        q++;
                                v = malloc(strlen(q) + 1);
                                if (!v)
                                        return NULL;
                                o = v;
                                if (*q == '"') {
                                        for (q++; *q && *q != '"'; q++) {
                                                if (*q == '\\' && q[1])
                                                        q++;
                                                *o++ = *q;
                                        }
                                } else
                                        for (; *q && *q != ';' && !isspace((unsigned char) *q); q++)
                                                *o++ = *q;
                                *o = '\0';
                                return v;
                        }
                }
                /* skip to the next ';' outside quotes */
                for (bool quoted = false; *p; p++) {
                        if (*p == '"')
                                quoted = !quoted;
                        else if (*p == '\\' && quoted && p[1])
                                p++;
                        else if (*p == ';' && !quoted)
                                break;
                }
                p = *p == ';' ? p : NULL;
        }
        return NULL;
}

void mime_headers_write(Writer *w, const MimeHeaders *h) {
        for (size_t i = 0; i < h->n; i++) {
                writer_puts(w, h->items[i].raw);
                writer_put(w, "\r\n", 2);
        }
}

/* ---- the canonical 7-bit entity ---- */

typedef enum EndKind {
        END_EOF,
        END_DELIMITER,
        END_CLOSE,
} EndKind;

typedef struct End {
        EndKind kind;
        size_t level; /* index into Walk.boundaries */
} End;

typedef struct Walk {
        LineReader *in;
        Writer *out;
        MimeTmpfile tmpfile;
        void *userdata;
        char **message;
        const char *boundaries[MIME_MAX_DEPTH];
        size_t n_boundaries;
} Walk;

/* Is line a delimiter of one of the open multiparts? Innermost first. */
static bool match_boundary(const Walk *w, const char *line, size_t len, End *ret) {
        size_t content = content_length(line, len);

        if (content < 2 || line[0] != '-' || line[1] != '-')
                return false;
        while (content > 2 && (line[content - 1] == ' ' || line[content - 1] == '\t'))
                content--;

        for (size_t i = w->n_boundaries; i > 0; i--) {
                const char *b = w->boundaries[i - 1];
                size_t blen = strlen(b);

                if (content < 2 + blen || memcmp(line + 2, b, blen) != 0)
                        continue;
                if (content == 2 + blen) {
                        *ret = (End) { END_DELIMITER, i - 1 };
                        return true;
                }
                if (content == 4 + blen && line[2 + blen] == '-' && line[3 + blen] == '-') {
                        *ret = (End) { END_CLOSE, i - 1 };
                        return true;
                }
        }
        return false;
}

/* Copies text up to the next delimiter (or EOF) with CRLF line ends. The
 * line end just before a delimiter belongs to it and is written as CRLF. */
static int copy_text(Walk *w, End *ret) {
        bool pending = false, at_line_start = true;

        for (;;) {
                const char *line;
                size_t len;
                bool complete;
                int k = line_reader_next(w->in, &line, &len, &complete);

                if (k < 0)
                        return k;
                if (k == 0) {
                        *ret = (End) { END_EOF, 0 };
                        break;
                }
                if (at_line_start && match_boundary(w, line, len, ret))
                        break;
                if (pending)
                        writer_put(w->out, "\r\n", 2);
                pending = false;
                if (complete) {
                        writer_put(w->out, line, content_length(line, len));
                        pending = true;
                } else
                        writer_put(w->out, line, len);
                at_line_start = complete;
        }
        if (pending)
                writer_put(w->out, "\r\n", 2);
        return w->out->error;
}

typedef struct Scan {
        bool high;       /* bytes >= 0x80 */
        bool nul;
        bool long_line;
        bool trailing_eol;
} Scan;

/* Spools a leaf body (up to a delimiter or EOF) into fd, noting what it
 * holds. The line end before a delimiter is not part of the body. Written
 * through a Writer: one write() per 64 KiB, not per line. */
static int spool_leaf(Walk *w, int fd, Scan *scan, End *ret) {
        _cleanup_free_ Writer *out = malloc(sizeof(Writer));
        char pending[2];
        size_t pending_len = 0, line_len = 0;
        bool at_line_start = true;
        int flushed;

        if (!out)
                return -ENOMEM;
        writer_init(out, fd);
        *scan = (Scan) {};
        for (;;) {
                const char *line;
                size_t len;
                bool complete;
                int k = line_reader_next(w->in, &line, &len, &complete);

                if (k < 0)
                        return k;
                if (k == 0) {
                        /* At the end of the input the last line end is content. */
                        writer_put(out, pending, pending_len);
                        pending_len = 0;
                        *ret = (End) { END_EOF, 0 };
                        break;
                }
                if (at_line_start && match_boundary(w, line, len, ret))
                        break;

                writer_put(out, pending, pending_len);
                pending_len = 0;
                for (size_t i = 0; i < len; i++) {
                        unsigned char c = (unsigned char) line[i];

                        scan->high |= c >= 0x80;
                        scan->nul |= c == 0;
                }
                if (complete) {
                        size_t content = content_length(line, len);

                        line_len += content;
                        scan->long_line |= line_len > MAX_LINE_7BIT;
                        line_len = 0;
                        pending_len = len - content;
                        memcpy(pending, line + content, pending_len);
                        writer_put(out, line, content);
                } else {
                        line_len += len;
                        scan->long_line |= line_len > MAX_LINE_7BIT;
                        writer_put(out, line, len);
                }
                if (out->error < 0)
                        return out->error;
                at_line_start = complete;
        }
        scan->trailing_eol = pending_len > 0;
        /* A reused scratch file may hold more: the body ends here. */
        flushed = writer_flush(out);
        return flushed < 0 ? flushed : fd_truncate_here(fd);
}

/* Writes the spooled body as base64, 76 characters per line. Text gets
 * canonical CRLF line ends first. */
static int write_base64(Walk *w, int fd, bool text) {
        unsigned char in[BASE64_LINE_INPUT], chunk[65536];
        unsigned char encoded[4 * BASE64_LINE_INPUT / 3 + 4];
        size_t in_len = 0;
        bool after_cr = false;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;

#define PUT_BYTE(b)                                                                          \
        do {                                                                                 \
                in[in_len++] = (b);                                                          \
                if (in_len == sizeof(in)) {                                                  \
                        int n_ = EVP_EncodeBlock(encoded, in, (int) in_len);                 \
                        writer_put(w->out, encoded, (size_t) n_);                            \
                        writer_put(w->out, "\r\n", 2);                                       \
                        in_len = 0;                                                          \
                }                                                                            \
        } while (0)

        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        unsigned char c = chunk[i];

                        if (text && c == '\n' && !after_cr)
                                PUT_BYTE('\r');
                        PUT_BYTE(c);
                        after_cr = c == '\r';
                }
        }
#undef PUT_BYTE
        if (in_len > 0) {
                int n = EVP_EncodeBlock(encoded, in, (int) in_len);
                writer_put(w->out, encoded, (size_t) n);
                writer_put(w->out, "\r\n", 2);
        }
        return w->out->error;
}

/* Copies the spooled (7-bit) body with CRLF line ends. */
static int write_spooled_text(Walk *w, int fd, bool trailing_eol) {
        LineReader *r;
        int k;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        r = malloc(sizeof(LineReader));
        if (!r)
                return -ENOMEM;
        line_reader_init(r, fd);
        for (;;) {
                const char *line;
                size_t len;
                bool complete;

                k = line_reader_next(r, &line, &len, &complete);
                if (k <= 0)
                        break;
                writer_put(w->out, line, complete ? content_length(line, len) : len);
                if (complete)
                        writer_put(w->out, "\r\n", 2);
        }
        free(r);
        if (k < 0)
                return k;
        if (trailing_eol)
                writer_put(w->out, "\r\n", 2);
        return w->out->error;
}

/* The fields of an entity with Content-Transfer-Encoding set to cte (NULL:
 * removed) and, when it has none, a Content-Type of default_type. */
static void write_fields(Walk *w, const MimeHeaders *h, const char *cte, const char *default_type) {
        bool have_type = false;

        for (size_t i = 0; i < h->n; i++) {
                if (strcasecmp(h->items[i].name, "Content-Transfer-Encoding") == 0)
                        continue;
                if (strcasecmp(h->items[i].name, "MIME-Version") == 0)
                        continue; /* the S/MIME wrapper carries it */
                have_type |= strcasecmp(h->items[i].name, "Content-Type") == 0;
                writer_puts(w->out, h->items[i].raw);
                writer_put(w->out, "\r\n", 2);
        }
        if (!have_type && default_type) {
                writer_puts(w->out, "Content-Type: ");
                writer_puts(w->out, default_type);
                writer_put(w->out, "\r\n", 2);
        }
        if (cte) {
                writer_puts(w->out, "Content-Transfer-Encoding: ");
                writer_puts(w->out, cte);
                writer_put(w->out, "\r\n", 2);
        }
        writer_put(w->out, "\r\n", 2);
}

static bool is_identity_encoding(const char *cte) {
        return !cte || strcasecmp(cte, "7bit") == 0 || strcasecmp(cte, "8bit") == 0 ||
               strcasecmp(cte, "binary") == 0;
}

static int walk_leaf(Walk *w, const MimeHeaders *h, const char *type, End *ret) {
        _cleanup_free_ char *cte = mime_headers_get(h, "Content-Transfer-Encoding");
        bool text = !type || strncmp(type, "text/", 5) == 0;
        _cleanup_(closep) int fd = -1;
        Scan scan;
        int k;

        if (!is_identity_encoding(cte)) {
                /* base64 or quoted-printable: already 7-bit */
                write_fields(w, h, cte, "text/plain; charset=us-ascii");
                return copy_text(w, ret);
        }

        fd = w->tmpfile(w->userdata);
        if (fd < 0)
                return fd;
        k = spool_leaf(w, fd, &scan, ret);
        if (k < 0)
                return k;

        if (!scan.high && !scan.nul && !scan.long_line) {
                write_fields(w, h, cte ? "7bit" : NULL, "text/plain; charset=us-ascii");
                return write_spooled_text(w, fd, scan.trailing_eol);
        }

        write_fields(w, h, "base64", "text/plain; charset=utf-8");
        return write_base64(w, fd, text);
}

static int walk_entity(Walk *w, const MimeHeaders *h, End *ret);

static void write_delimiter(Walk *w, const char *boundary, bool close) {
        writer_put(w->out, "--", 2);
        writer_puts(w->out, boundary);
        if (close)
                writer_put(w->out, "--", 2);
        writer_put(w->out, "\r\n", 2);
}

static int walk_multipart(Walk *w, const MimeHeaders *h, const char *boundary, End *ret) {
        size_t level = w->n_boundaries;
        _cleanup_free_ char *cte = mime_headers_get(h, "Content-Transfer-Encoding");
        End e;
        int k;

        if (w->n_boundaries >= MIME_MAX_DEPTH)
                return message_fail(w->message, -EBADMSG,
                                    "multiparts are nested deeper than %d levels (MIME_MAX_DEPTH)", MIME_MAX_DEPTH);
        w->boundaries[w->n_boundaries++] = boundary;

        write_fields(w, h, cte ? "7bit" : NULL, NULL);
        k = copy_text(w, &e); /* the preamble */

        while (k >= 0) {
                if (e.kind == END_EOF || e.level < level) {
                        /* Never closed: close it, so the output is well formed. */
                        write_delimiter(w, boundary, true);
                        break;
                }
                if (e.kind == END_CLOSE) {
                        write_delimiter(w, boundary, true);
                        w->n_boundaries = level; /* the epilogue knows only the outer boundaries */
                        k = copy_text(w, &e);
                        break;
                }

                /* a delimiter: a part follows */
                {
                        _cleanup_(mime_headers_done) MimeHeaders part = {};

                        write_delimiter(w, boundary, false);
                        k = mime_headers_read(w->in, &part, w->message);
                        if (k >= 0)
                                k = walk_entity(w, &part, &e);
                }
        }

        w->n_boundaries = level;
        *ret = e;
        return k < 0 ? k : w->out->error;
}

static int walk_entity(Walk *w, const MimeHeaders *h, End *ret) {
        _cleanup_free_ char *content_type = mime_headers_get(h, "Content-Type");
        _cleanup_free_ char *type = content_type ? mime_content_type(content_type) : NULL;
        _cleanup_free_ char *boundary = NULL;

        if (type && strncmp(type, "multipart/", 10) == 0) {
                boundary = mime_parameter(content_type, "boundary");
                if (boundary && boundary[0])
                        return walk_multipart(w, h, boundary, ret);
        }
        return walk_leaf(w, h, type, ret);
}

int mime_write_canonical_entity(LineReader *in, const MimeHeaders *headers, Writer *out, MimeTmpfile tmpfile,
                                void *userdata, char **ret_message) {
        Walk w = {
                .in = in,
                .out = out,
                .tmpfile = tmpfile,
                .userdata = userdata,
                .message = ret_message,
        };
        End e;
        int k;

        k = walk_entity(&w, headers, &e);
        if (k < 0)
                return k;
        return writer_flush(out);
}
