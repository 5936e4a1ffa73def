#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Makes the DocBook source of org.smimed1(5): one refentry.

gdbus-codegen --generate-docbook writes a refentry per interface; this puts
each into the frame docs/org.smimed1.xml as a refsect1 (description, then
Methods, Signals and Properties, each a synopsis and a refsect3 per member),
where the processing instruction <?smimed-interfaces?> stands.

  dbus-man.py --output OUT --version V --interfaces-dir DIR FRAME DOCBOOK...
"""

import argparse
import sys
import xml.etree.ElementTree as ET

MARK = '<?smimed-interfaces?>'

# (title, where gdbus-codegen puts the synopsis, id prefix of the details)
KINDS = (
    ('Methods', "refsynopsisdiv[@role='synopsis']", 'gdbus-methods-'),
    ('Signals', "refsect1[@role='signal_proto']", 'gdbus-signals-'),
    ('Properties', "refsect1[@role='properties']", 'gdbus-properties-'),
)


def drop_indexterms(element):
    """Index terms mean nothing in a man page; keep the text around them."""
    for parent in element.iter():
        for i, child in reversed(list(enumerate(parent))):
            if child.tag != 'indexterm':
                continue
            if child.tail:
                if i > 0:
                    parent[i - 1].tail = (parent[i - 1].tail or '') + child.tail
                else:
                    parent.text = (parent.text or '') + child.tail
            parent.remove(child)


def interface_section(path):
    entry = ET.parse(path).getroot()
    name = entry.findtext('refnamediv/refname').strip()
    # The id links to the interface (#org.smimed1.Key in a comment) point at.
    section = ET.Element('refsect1', id=entry.find('refmeta/refentrytitle').get('id'))
    ET.SubElement(section, 'title').text = f'The {name} interface'

    desc = entry.find("refsect1[@role='desc']")
    if desc is None:
        sys.exit(f'{path}: no description of {name}')
    section.extend(c for c in desc if c.tag != 'title')

    for title, synopsis_at, details_id in KINDS:
        synopsis = entry.find(synopsis_at)
        details = entry.find(f"refsect1[@id='{details_id}{name}']")
        if synopsis is None or details is None:
            continue
        kind = ET.SubElement(section, 'refsect2')
        ET.SubElement(kind, 'title').text = title
        listing = synopsis.find('synopsis')
        listing.tag = 'programlisting'
        kind.append(listing)
        for member in details.findall('refsect2'):
            member.tag = 'refsect3'
            kind.append(member)

    drop_indexterms(section)
    return ET.tostring(section, encoding='unicode')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--output', required=True)
    parser.add_argument('--version', required=True)
    parser.add_argument('--interfaces-dir', required=True)
    parser.add_argument('frame')
    parser.add_argument('docbook', nargs='+')
    args = parser.parse_args()

    with open(args.frame, encoding='utf-8') as f:
        frame = f.read()
    if frame.count(MARK) != 1:
        sys.exit(f'{args.frame}: {MARK} must stand there once')
    text = frame.replace(MARK, '\n'.join(interface_section(p) for p in args.docbook))
    text = text.replace('@VERSION@', args.version).replace('@INTERFACES_DIR@', args.interfaces_dir)

    # A gtk-doc comment whose text is not well-formed DocBook fails here,
    # naming the line, rather than in xsltproc.
    try:
        ET.fromstring(text.encode('utf-8'))
    except ET.ParseError as e:
        sys.exit(f'{args.output}: {e}')

    with open(args.output, 'w', encoding='utf-8') as f:
        f.write(text)


if __name__ == '__main__':
    main()
