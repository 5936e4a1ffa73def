/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Compares D-Bus introspection XML by structure, not by layout: the element
 * <tag name="name"> and everything inside it, one tag per line, attributes
 * sorted, comments, text and org.gtk.GDBus.* annotations (code generator
 * hints) dropped, <x/> written as <x></x>. Returns a new
 * string, or NULL when the element is not there or the XML is malformed. */
char *xml_canonical_element(const char *xml, const char *tag, const char *name);
