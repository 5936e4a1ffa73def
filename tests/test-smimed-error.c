/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of common/smimed-error.c and common/bus-error-map.c: the one
 * table of org.smimed1.Error.* names and errnos, what sd-bus learns from
 * it, and that the installed header and the introspection XML say the same. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "bus-error-map.h"
#include "harness.h"
#include "smimed-error.h"

static const char *short_name(SmimedError e) {
        const char *name = smimed_error_to_name(e);

        assert_non_null(name);
        assert_int_equal(strncmp(name, SMIMED_ERROR_PREFIX, strlen(SMIMED_ERROR_PREFIX)), 0);
        return name + strlen(SMIMED_ERROR_PREFIX);
}

static void test_round_trip(void **state) {
        (void) state;
        for (SmimedError e = 1; e < _SMIMED_ERROR_MAX; e++) {
                int errnum = smimed_error_to_errno(e);

                assert_true(errnum > 0);
                if (smimed_error_from_errno(errnum) != e || smimed_error_from_errno(-errnum) != e)
                        fail_msg("%s: its errno %s maps to %s", smimed_error_to_name(e), strerrorname_np(errnum),
                                 strempty(smimed_error_to_name(smimed_error_from_errno(errnum))));
                assert_int_equal(smimed_error_from_name(smimed_error_to_name(e)), e);
        }
}

static void test_invalid(void **state) {
        (void) state;
        assert_null(smimed_error_to_name(0));
        assert_null(smimed_error_to_name(_SMIMED_ERROR_MAX));
        assert_null(smimed_error_to_name(_SMIMED_ERROR_INVALID));
        assert_int_equal(smimed_error_to_errno(0), -EINVAL);
        assert_int_equal(smimed_error_to_errno(_SMIMED_ERROR_MAX), -EINVAL);
        assert_int_equal(smimed_error_from_name(NULL), _SMIMED_ERROR_INVALID);
        assert_int_equal(smimed_error_from_name("org.smimed1.Error.NoSuchThing"), _SMIMED_ERROR_INVALID);
        assert_int_equal(smimed_error_from_name("NoPrivateKey"), _SMIMED_ERROR_INVALID);
        assert_int_equal(smimed_error_from_errno(0), _SMIMED_ERROR_INVALID);
        assert_int_equal(smimed_error_from_errno(ENOMEM), _SMIMED_ERROR_INVALID);
        /* The two that used to disagree between daemon and library. */
        assert_int_equal(smimed_error_from_errno(-EBADE), SMIMED_ERR_BAD_PASSPHRASE);
        assert_int_equal(smimed_error_from_errno(-EBADR), _SMIMED_ERROR_INVALID);
}

/* What libsmimed returns for a name is what the table says. */
static void test_bus_error_map(void **state) {
        (void) state;
        assert_true(smimed_bus_error_map_register() >= 0);
        assert_true(smimed_bus_error_map_register() >= 0);
        for (SmimedError e = 1; e < _SMIMED_ERROR_MAX; e++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                assert_int_equal(sd_bus_error_set(&error, smimed_error_to_name(e), "A message."),
                                 -smimed_error_to_errno(e));
                assert_int_equal(sd_bus_error_get_errno(&error), smimed_error_to_errno(e));
        }
}

static char *source_file(const char *relative) {
        _cleanup_free_ char *path = NULL;
        char *text;

        assert_true(asprintf(&path, "%s/%s", SMIMED_SOURCE_ROOT, relative) > 0);
        text = harness_read_file(path);
        if (!text)
                fail_msg("cannot read %s", path);
        return text;
}

/* Each name is a word of the error list in the XML's comment. */
static void test_names_in_introspection_xml(void **state) {
        _cleanup_free_ char *xml = source_file("dbus/org.smimed1.Manager.xml");
        char *start, *end;

        (void) state;
        start = strstr(xml, "Errors are org.smimed1.Error.");
        assert_non_null(start);
        end = strstr(start, "Denials are");
        assert_non_null(end);
        *end = '\0';
        for (SmimedError e = 1; e < _SMIMED_ERROR_MAX; e++) {
                const char *name = short_name(e), *p = start;
                size_t n = strlen(name);
                bool found = false;

                while (!found && (p = strstr(p, name))) {
                        /* A word of the text, or a DocBook <term>. */
                        found = (isspace((unsigned char) p[-1]) || p[-1] == '>') &&
                                (p[n] == ',' || p[n] == '<' || isspace((unsigned char) p[n]));
                        p += n;
                }
                if (!found)
                        fail_msg("%s is not in the error list of dbus/org.smimed1.Manager.xml", name);
        }
}

/* The installed header gives each name's errno beside it: the table's. */
static void test_errnos_in_installed_header(void **state) {
        _cleanup_free_ char *header = source_file("common/smimed-errors.h");

        (void) state;
        for (SmimedError e = 1; e < _SMIMED_ERROR_MAX; e++) {
                _cleanup_free_ char *quoted = NULL, *want = NULL;
                const char *line, *eol;

                assert_true(asprintf(&quoted, "\"%s\"", smimed_error_to_name(e)) > 0);
                assert_true(asprintf(&want, "/* -%s */", strerrorname_np(smimed_error_to_errno(e))) > 0);
                line = strstr(header, quoted);
                if (!line)
                        fail_msg("%s is not in common/smimed-errors.h", quoted);
                eol = strchrnul(line, '\n');
                if (!memmem(line, (size_t) (eol - line), want, strlen(want)))
                        fail_msg("common/smimed-errors.h: %s should say %s", quoted, want);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_bus_error_map),
                cmocka_unit_test(test_names_in_introspection_xml),
                cmocka_unit_test(test_errnos_in_installed_header),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
