/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the introspection XML comparison used by test-manager. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "macro.h"
#include "xml-tags.h"

static void test_layout_does_not_matter(void **state) {
        const char *a =
                "<!DOCTYPE node>\n<node>\n <!-- doc -->\n <interface name=\"x.Y\">\n"
                "  <method name=\"M\"><arg type=\"s\" name=\"a\" direction=\"in\"/></method>\n"
                "  <property name=\"P\" type=\"b\" access=\"read\"/>\n </interface>\n</node>\n";
        const char *b =
                "<node><interface name='x.Y'><method name=\"M\">\n<arg direction=\"in\" name=\"a\" type=\"s\">"
                "</arg></method><property access=\"read\" type=\"b\" name=\"P\">\n  </property></interface>"
                "<interface name=\"other\"/></node>";
        _cleanup_free_ char *ca = xml_canonical_element(a, "interface", "x.Y");
        _cleanup_free_ char *cb = xml_canonical_element(b, "interface", "x.Y");

        (void) state;
        assert_non_null(ca);
        assert_non_null(cb);
        assert_string_equal(ca, cb);
        assert_string_equal(ca, "<interface name=\"x.Y\">\n"
                                "<method name=\"M\">\n"
                                "<arg direction=\"in\" name=\"a\" type=\"s\">\n"
                                "</arg>\n"
                                "</method>\n"
                                "<property access=\"read\" name=\"P\" type=\"b\">\n"
                                "</property>\n"
                                "</interface>\n");
}

static void test_differences_show(void **state) {
        const char *a = "<node><interface name=\"x.Y\"><property name=\"P\" type=\"b\" access=\"read\"/></interface></node>";
        const char *b = "<node><interface name=\"x.Y\"><property name=\"P\" type=\"s\" access=\"read\"/></interface></node>";
        const char *c = "<node><interface name=\"x.Y\"><property name=\"P\" type=\"b\" access=\"read\"/>"
                        "<method name=\"M\"/></interface></node>";
        _cleanup_free_ char *ca = xml_canonical_element(a, "interface", "x.Y");
        _cleanup_free_ char *cb = xml_canonical_element(b, "interface", "x.Y");
        _cleanup_free_ char *cc = xml_canonical_element(c, "interface", "x.Y");

        (void) state;
        assert_string_not_equal(ca, cb);
        assert_string_not_equal(ca, cc);
}

/* What a file says only to code generators is not compared: no server serves it. */
static void test_codegen_hints_dropped(void **state) {
        const char *file = "<node><interface name=\"x.Y\"><method name=\"M\">"
                           "<annotation name=\"org.gtk.GDBus.C.UnixFD\" value=\"true\"/>"
                           "<annotation name=\"org.gtk.GDBus.DocString\" value=\"d\"><x/></annotation>"
                           "<arg type=\"h\" name=\"fd\" direction=\"in\"/></method></interface></node>";
        const char *served = "<node><interface name=\"x.Y\"><method name=\"M\">"
                             "<arg type=\"h\" name=\"fd\" direction=\"in\"/></method></interface></node>";
        const char *other = "<node><interface name=\"x.Y\"><method name=\"M\">"
                            "<annotation name=\"org.freedesktop.DBus.Deprecated\" value=\"true\"/>"
                            "<arg type=\"h\" name=\"fd\" direction=\"in\"/></method></interface></node>";
        _cleanup_free_ char *cf = xml_canonical_element(file, "interface", "x.Y");
        _cleanup_free_ char *cs = xml_canonical_element(served, "interface", "x.Y");
        _cleanup_free_ char *co = xml_canonical_element(other, "interface", "x.Y");

        (void) state;
        assert_non_null(cf);
        assert_non_null(cs);
        assert_non_null(co);
        assert_string_equal(cf, cs);
        assert_string_not_equal(co, cs);
}

static void test_missing_or_malformed(void **state) {
        (void) state;
        assert_null(xml_canonical_element("<node></node>", "interface", "x.Y"));
        assert_null(xml_canonical_element("<node><interface name=\"x.Y\"><method name=\"M\">", "interface", "x.Y"));
        assert_null(xml_canonical_element("<node><interface name=x.Y></interface></node>", "interface", "x.Y"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_layout_does_not_matter),
                cmocka_unit_test(test_differences_show),
                cmocka_unit_test(test_codegen_hints_dropped),
                cmocka_unit_test(test_missing_or_malformed),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
