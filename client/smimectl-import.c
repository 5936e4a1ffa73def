/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format-util.h"
#include "macro.h"
#include "smimectl.h"

/* What smimed takes in one import call. */
#define INPUT_MAX (16U * 1024U * 1024U)

static bool is_stdin(const char *path) {
        return streq(path, "-");
}

/* Reads a whole file ("-": stdin); -EFBIG beyond INPUT_MAX. */
static int read_input(const char *path, void **ret, size_t *ret_size) {
        _cleanup_(closep) int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        if (!is_stdin(path)) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return -errno;
        }

        for (;;) {
                ssize_t n;

                if (size == allocated) {
                        /* One byte more than the limit tells "too large" from "exactly the limit". */
                        size_t want = allocated ? allocated * 2 : 64 * 1024;
                        char *grown;

                        if (allocated > INPUT_MAX)
                                return -EFBIG;
                        if (want > INPUT_MAX + 1)
                                want = INPUT_MAX + 1;
                        grown = realloc(buf, want);
                        if (!grown)
                                return -ENOMEM;
                        buf = grown;
                        allocated = want;
                }
                n = read(fd >= 0 ? fd : STDIN_FILENO, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        if (size > INPUT_MAX)
                return -EFBIG;

        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

static int read_input_or_fail(const char *path, void **ret, size_t *ret_size) {
        int r = read_input(path, ret, ret_size);

        if (r == -EFBIG)
                return fail("Cannot read %s: larger than %u MiB, the most smimed takes in one import.",
                            is_stdin(path) ? "standard input" : path, INPUT_MAX / 1024 / 1024);
        if (r < 0)
                return fail("Cannot read %s: %s", is_stdin(path) ? "standard input" : path, strerror(-r));
        return 0;
}

int print_imported(smimed *s, char **fingerprints) {
        int ret = 0;

        for (char **f = fingerprints; *f; f++) {
                _cleanup_(smimed_certificate_done) smimed_certificate c = {};
                _cleanup_(smimed_error_done) smimed_error error = {};
                int r;

                r = smimed_get_certificate(s, *f, &c, &error);
                if (r < 0) {
                        ret = report_error(r, &error, "Imported %s, but cannot read it", *f);
                        continue;
                }
                printf("%s  ", *f);
                print_text(stdout, c.summary);
                putchar('\n');
        }
        return ret;
}

int verb_import(smimed *s, int argc, char *argv[]) {
        static char *const dash[] = { (char *) "-", NULL };
        char *const *files = argc > 0 ? argv : dash;

        /* One call per file: each file is all or nothing; the first failure stops. */
        for (int i = 0; i < (argc > 0 ? argc : 1); i++) {
                _cleanup_(smimed_strv_freep) char **fingerprints = NULL;
                _cleanup_(smimed_error_done) smimed_error error = {};
                _cleanup_free_ void *data = NULL;
                size_t size;
                int r;

                r = read_input_or_fail(files[i], &data, &size);
                if (r != 0)
                        return r;
                r = smimed_import_certificates(s, data, size, arg_trust, &fingerprints, &error);
                if (r < 0)
                        return report_error(r, &error, "Cannot import %s",
                                            is_stdin(files[i]) ? "standard input" : files[i]);
                r = print_imported(s, fingerprints);
                fflush(stdout);
                if (r != 0)
                        return r;
        }
        return 0;
}

int verb_import_crl(smimed *s, int argc, char *argv[]) {
        static char *const dash[] = { (char *) "-", NULL };
        char *const *files = argc > 0 ? argv : dash;

        for (int i = 0; i < (argc > 0 ? argc : 1); i++) {
                _cleanup_(smimed_error_done) smimed_error error = {};
                _cleanup_free_ void *data = NULL;
                unsigned count = 0;
                size_t size;
                int r;

                r = read_input_or_fail(files[i], &data, &size);
                if (r != 0)
                        return r;
                r = smimed_import_crl(s, data, size, &count, &error);
                if (r < 0)
                        return report_error(r, &error, "Cannot import CRLs from %s",
                                            is_stdin(files[i]) ? "standard input" : files[i]);
                printf("Imported %u CRL(s) from %s\n", count, files[i]);
                fflush(stdout);
        }
        return 0;
}

int verb_fetch_crls(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_error_done) smimed_error error = {};
        unsigned fetched = 0;
        int r;

        (void) argc;
        (void) argv;
        r = smimed_fetch_crls(s, &fetched, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot fetch every CRL");
        printf("Fetched %u CRL(s)\n", fetched);
        return 0;
}
