/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The RFC 5322 header split and the canonical 7-bit entity, as Sign and
 * Encrypt run them on a message a client sent. */
#include <stdlib.h>
#include <sys/mman.h>

#include "fuzz-util.h"
#include "mime.h"

static int tmpfile_memfd(void *userdata) {
        (void) userdata;
        return memfd_create("fuzz-part", MFD_CLOEXEC);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        LineReader *reader = malloc(sizeof(LineReader));
        Writer *writer = malloc(sizeof(Writer));
        MimeHeaders all = {}, outer = {}, content = {};
        char *message = NULL;
        int in = fuzz_memfd(data, size), out = memfd_create("fuzz-out", MFD_CLOEXEC);

        if (reader && writer && in >= 0 && out >= 0) {
                line_reader_init(reader, in);
                if (mime_headers_read(reader, &all, &message) >= 0 &&
                    mime_headers_split(&all, &outer, &content) >= 0) {
                        free(mime_headers_get(&content, "Content-Type"));
                        writer_init(writer, out);
                        mime_headers_write(writer, &outer);
                        (void) mime_write_canonical_entity(reader, &content, writer, tmpfile_memfd, NULL, &message);
                }
        }
        mime_headers_done(&all);
        mime_headers_done(&outer);
        mime_headers_done(&content);
        free(message);
        free(reader);
        free(writer);
        if (in >= 0)
                close(in);
        if (out >= 0)
                close(out);
        return 0;
}
