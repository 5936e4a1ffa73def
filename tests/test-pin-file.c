/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of reading the token PIN from a file. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "macro.h"
#include "pin-file.h"

static char dir[] = "/tmp/smimed-pin-test.XXXXXX";

static int setup(void **state) {
        (void) state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        char cmd[256];

        (void) state;
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static char *write_pin(const char *name, const void *data, size_t size, mode_t mode) {
        char *path;
        int fd;

        assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(write(fd, data, size), (ssize_t) size);
        close(fd);
        return path;
}

static void test_reads_pin(void **state) {
        _cleanup_free_ char *path = write_pin("a", "123456\n", 7, 0600);
        _cleanup_free_ char *message = NULL;
        _cleanup_(erase_and_freep) char *pin = NULL;

        (void) state;
        assert_int_equal(pin_file_read(path, &pin, &message), 0);
        assert_string_equal(pin, "123456");
        assert_null(message);
}

static void test_keeps_inner_spaces_and_drops_crlf(void **state) {
        _cleanup_free_ char *path = write_pin("b", " a b \r\n", 7, 0400);
        _cleanup_free_ char *message = NULL;
        _cleanup_(erase_and_freep) char *pin = NULL;

        (void) state;
        assert_int_equal(pin_file_read(path, &pin, &message), 0);
        assert_string_equal(pin, " a b ");
}

static void test_refuses_group_or_other_access(void **state) {
        static const mode_t modes[] = { 0640, 0604, 0620, 0660, 0644, 0602 };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                _cleanup_free_ char *path = write_pin("c", "123456", 6, modes[i]);
                _cleanup_free_ char *message = NULL;
                char *pin = NULL;

                assert_int_equal(pin_file_read(path, &pin, &message), -EPERM);
                assert_null(pin);
                assert_non_null(message);
                assert_non_null(strstr(message, path));
                assert_non_null(strstr(message, "chmod 0600"));
                assert_null(strstr(message, "123456"));
        }
}

static void test_empty_and_missing(void **state) {
        _cleanup_free_ char *empty = write_pin("d", "\n", 1, 0600);
        _cleanup_free_ char *missing = NULL;
        _cleanup_free_ char *m1 = NULL, *m2 = NULL;
        char *pin = NULL;

        (void) state;
        assert_int_equal(pin_file_read(empty, &pin, &m1), -EINVAL);
        assert_non_null(strstr(m1, "no usable PIN"));

        assert_true(asprintf(&missing, "%s/missing", dir) > 0);
        assert_int_equal(pin_file_read(missing, &pin, &m2), -ENOENT);
        assert_non_null(strstr(m2, "No such file"));
        assert_null(pin);
}

static void test_too_large_and_nul(void **state) {
        char big[PIN_FILE_MAX_SIZE + 10];
        _cleanup_free_ char *large = NULL, *nul = NULL, *m1 = NULL, *m2 = NULL;
        char *pin = NULL;

        (void) state;
        memset(big, '1', sizeof(big));
        large = write_pin("e", big, sizeof(big), 0600);
        assert_int_equal(pin_file_read(large, &pin, &m1), -EFBIG);

        nul = write_pin("f", "12\0" "34", 5, 0600);
        assert_int_equal(pin_file_read(nul, &pin, &m2), -EINVAL);
        assert_null(pin);
}

static void test_refuses_symlink_and_directory(void **state) {
        _cleanup_free_ char *target = write_pin("g", "123456", 6, 0600);
        _cleanup_free_ char *link = NULL, *m1 = NULL, *m2 = NULL;
        char *pin = NULL;

        (void) state;
        assert_true(asprintf(&link, "%s/link", dir) > 0);
        assert_int_equal(symlink(target, link), 0);
        assert_int_equal(pin_file_read(link, &pin, &m1), -ELOOP);
        assert_non_null(strstr(m1, "symbolic link"));
        assert_int_equal(pin_file_read(dir, &pin, &m2), -EINVAL);
        assert_null(pin);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reads_pin),
                cmocka_unit_test(test_keeps_inner_spaces_and_drops_crlf),
                cmocka_unit_test(test_refuses_group_or_other_access),
                cmocka_unit_test(test_empty_and_missing),
                cmocka_unit_test(test_too_large_and_nul),
                cmocka_unit_test(test_refuses_symlink_and_directory),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
