#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The D-Bus API is documented, and org.smimed1(5) says it all.

  test-dbus-docs.py --codegen GDBUS_CODEGEN --man ORG.SMIMED1.5 XML...

1. gdbus-codegen takes each introspection XML file, for C code and for
   DocBook, without a warning, and its DocBook is well formed.
2. Every interface, method, property and signal of the XML, and every
   argument of its methods and signals, has doc text, as gdbus-codegen reads
   the gtk-doc comments (a comment it does not attach counts as none). Every
   method taking a file descriptor carries org.gtk.GDBus.C.UnixFD.
3. The built man page has a section for every method, property and signal
   of every interface, and its doc text there (compared word by word).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

failures = []


def fail(message):
    failures.append(message)
    print(f'FAIL: {message}', file=sys.stderr)


def hyphens(name):
    return name.replace('.', '-')


def words(text):
    return re.findall(r'[a-z0-9]+', text.lower())


# The parts of a member's section gdbus-codegen writes itself.
GENERATED = ('title', 'indexterm', 'programlisting', 'variablelist')
BLOCKS = ('para', 'variablelist', 'varlistentry', 'term', 'listitem', 'programlisting', 'title')


def text_of(element, skip=GENERATED):
    """The text of element, without its children named in skip."""
    parts = [element.text or '']
    for child in element:
        if child.tag not in skip:
            text = text_of(child, skip=('indexterm',))
            # Blocks stand apart; inline markup is part of its word.
            parts.append(f' {text} ' if child.tag in BLOCKS else text)
        parts.append(child.tail or '')
    return ''.join(parts)


def run_codegen(codegen, xml, outdir):
    """Step 1: returns {interface name: its DocBook refentry}."""
    base = os.path.join(outdir, 'doc')
    for what in (['--generate-c-code', os.path.join(outdir, 'code')], ['--generate-docbook', base]):
        r = subprocess.run([codegen, '--interface-prefix', 'org.smimed1.', *what, xml],
                           capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            fail(f'gdbus-codegen {what[0]} {xml}: exit {r.returncode}\n{r.stderr}')
    entries = {}
    for name in os.listdir(outdir):
        if name.startswith('doc-') and name.endswith('.xml'):
            try:
                entries[name[4:-4]] = ET.parse(os.path.join(outdir, name)).getroot()
            except ET.ParseError as e:
                fail(f'{xml}: the DocBook gdbus-codegen makes of its comments is not well formed '
                     f'(write &lt; for <, &amp; for &): {e}')
    return entries


def members(interface):
    """(kind, name, element) of each method, signal and property."""
    for kind in ('method', 'signal', 'property'):
        for m in interface.findall(kind):
            yield kind, m.get('name'), m


def check_documented(xml, interface, entry):
    """Step 2; returns the docs to look for in the man page."""
    iname = interface.get('name')
    found = {}
    if entry is None:
        fail(f'{xml}: gdbus-codegen wrote nothing for {iname}')
        return None
    desc = entry.find("refsect1[@role='desc']")
    if desc is None or not words(text_of(desc)):
        fail(f'{xml}: {iname} has no doc text (a comment "{iname}:" before it)')
    else:
        found[None] = text_of(desc)

    for kind, name, m in members(interface):
        section = entry.find(f".//refsect2[@id='gdbus-{kind}-{hyphens(iname)}.{name}']")
        if section is None:
            fail(f'{xml}: {iname}: gdbus-codegen did not write {kind} {name}')
            continue
        doc = text_of(section)
        if not words(doc):
            fail(f'{xml}: {iname}: {kind} {name} has no doc text (a comment "{name}:" just before it)')
        documented_args = {}
        for item in section.findall("variablelist[@role='params']/varlistentry"):
            parameter = item.find('term/literal/parameter')
            listitem = item.find('listitem')
            if parameter is not None and listitem is not None:
                documented_args[parameter.text] = words(''.join(listitem.itertext()))
        for arg in m.findall('arg'):
            aname = arg.get('name')
            if not aname:
                fail(f'{xml}: {iname}: {kind} {name}: an argument without a name cannot be documented')
            elif not documented_args.get(aname):
                fail(f'{xml}: {iname}: {kind} {name}: argument {aname} has no doc text '
                     f'(a line "@{aname}: …" right after "{name}:")')
        takes_fd = any('h' in (arg.get('type') or '') for arg in m.findall('arg'))
        unix_fd = any(a.get('name') == 'org.gtk.GDBus.C.UnixFD' and a.get('value') == 'true'
                      for a in m.findall('annotation'))
        if kind == 'method' and takes_fd and not unix_fd:
            fail(f'{xml}: {iname}: method {name} takes a file descriptor but has no org.gtk.GDBus.C.UnixFD annotation')
        # What the man page shows of it: all but the index terms.
        found[(kind, name)] = text_of(section, skip=('indexterm',))
        found[(kind, name, 'title')] = section.findtext('title')
    return found


def man_words(path):
    """The words of a roff page as it reads: requests dropped, headings kept."""
    out = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.startswith('.\\"'):
                continue
            if line.startswith('.'):
                if not re.match(r'\.(SH|SS) ', line):
                    continue
                line = line[3:]
            line = re.sub(r'\\f[BIRP]', '', line)
            line = re.sub(r'\\\*?\([A-Za-z]{2}', ' ', line)
            line = line.replace('\\&', '').replace('\\-', '-').replace('\\e', '\\')
            line = line.replace('\\{', ' ').replace('\\}', ' ')
            out.extend(words(line))
    return out


def find(haystack, needle, start=0):
    """Index of the word sequence needle in haystack from start, or -1."""
    n = len(needle)
    if n == 0:
        return -1
    for i in range(start, len(haystack) - n + 1):
        if haystack[i:i + n] == needle:
            return i
    return -1


def check_man(man, iname, docs):
    """Step 3: the interface's heading, then each member's title and doc text."""
    at = find(man, words(f'The {iname} interface'))
    if at < 0:
        fail(f'{iname}: org.smimed1(5) has no section "The {iname} interface"')
        return
    if docs.get(None) and find(man, words(docs[None]), at) < 0:
        fail(f'{iname}: org.smimed1(5) lacks the interface\'s doc text')
    for key, doc in docs.items():
        if key is None or len(key) != 2:
            continue
        kind, name = key
        title = docs[(kind, name, 'title')]
        t = find(man, words(title), at)
        if t < 0:
            fail(f'{iname}: org.smimed1(5) does not list {kind} {name} ("{title}")')
            continue
        # The member's whole section from its title: prototype, text, arguments.
        want = words(doc)
        have = man[t:t + len(want)]
        if have != want:
            i = next(i for i, (a, b) in enumerate(zip(want + [''], have + [''])) if a != b)
            fail(f'{iname}: org.smimed1(5) lacks the doc text of {kind} {name}: '
                 f'after "{" ".join(want[max(0, i - 5):i])}" it has "{" ".join(have[i:i + 5])}", '
                 f'not "{" ".join(want[i:i + 5])}"')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--codegen', required=True)
    parser.add_argument('--man', required=True)
    parser.add_argument('xml', nargs='+')
    args = parser.parse_args()

    man = man_words(args.man)
    counts = {'method': 0, 'property': 0, 'signal': 0}
    for xml in args.xml:
        with tempfile.TemporaryDirectory() as outdir:
            entries = run_codegen(args.codegen, xml, outdir)
            for interface in ET.parse(xml).getroot().findall('interface'):
                iname = interface.get('name')
                docs = check_documented(xml, interface, entries.get(iname))
                if docs is not None:
                    check_man(man, iname, docs)
                for kind, _, _ in members(interface):
                    counts[kind] += 1

    if failures:
        print(f'{len(failures)} failures', file=sys.stderr)
        return 1
    print('ok: {method} methods, {property} properties, {signal} signals documented '
          'and in org.smimed1(5)'.format(**counts))
    return 0


if __name__ == '__main__':
    sys.exit(main())
