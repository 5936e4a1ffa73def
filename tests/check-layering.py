#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon's layers, checked on its sources.

The bus layer is the files named *-bus.[ch] and bus-*.[ch], and main.c,
which composes the daemon. Everything else in daemon/ is the core. The
core: includes no bus header (so the include graph has no cycle between
the two), does not use sd-bus, and names no D-Bus error (it speaks
SmimedError, common/smimed-error.h; the bus layer turns that into
org.smimed1.Error.* names)."""

import os
import re
import sys

daemon = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'daemon')


def is_bus(name):
    base = name.rsplit('.', 1)[0]
    return base.endswith('-bus') or base.startswith('bus-') or name == 'main.c'


forbidden = [
    (re.compile(r'#include\s*<systemd/sd-bus\.h>'), 'includes sd-bus'),
    (re.compile(r'\bsd_bus\w*'), 'uses sd-bus'),
    (re.compile(r'\bSD_BUS_\w*'), 'uses sd-bus'),
    (re.compile(r'\bSMIMED_ERROR_[A-Z_]+'), 'names a D-Bus error'),
    (re.compile(r'org\.smimed1\.Error'), 'names a D-Bus error'),
    (re.compile(r'org\.freedesktop\.DBus\.Error'), 'names a D-Bus error'),
]
include = re.compile(r'#include\s*"([^"]+)"')

problems = []
sources = sorted(f for f in os.listdir(daemon) if f.endswith(('.c', '.h')))
if len(sources) < 20:
    sys.exit(f'check-layering: only {len(sources)} sources in {daemon}?')
for name in sources:
    if is_bus(name):
        continue
    with open(os.path.join(daemon, name), encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            m = include.search(line)
            if m and is_bus(m.group(1)):
                problems.append(f'{name}:{number}: includes the bus header {m.group(1)}')
            for pattern, what in forbidden:
                m = pattern.search(line)
                if m:
                    problems.append(f'{name}:{number}: {what}: {m.group(0)}')

for p in problems:
    print(p)
print(f'check-layering: {len(sources)} files, {len(problems)} problems')
sys.exit(1 if problems else 0)
