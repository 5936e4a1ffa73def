#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# meson install into a DESTDIR puts every file where systemd, D-Bus and
# polkit look for it; the unit passes systemd-analyze verify and its
# sandboxing stays at an exposure of 1.5 or lower; the XML files are valid.
#   test-install.sh BUILD_DIR
set -euo pipefail

build=$1
src=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d /tmp/smimed-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$dest" --quiet >/dev/null

libdir=$(cd "$dest/usr/lib" && ls -d */pkgconfig 2>/dev/null | head -n1 | cut -d/ -f1)
for f in \
        usr/libexec/smimed \
        usr/libexec/smimed-worker \
        usr/bin/smimectl \
        usr/include/smimed.h \
        usr/include/smimed-errors.h \
        "usr/lib/$libdir/libsmimed.so.1" \
        "usr/lib/$libdir/pkgconfig/smimed.pc" \
        usr/lib/systemd/system/smimed.service \
        usr/lib/sysusers.d/smimed.conf \
        usr/lib/tmpfiles.d/smimed.conf \
        usr/share/dbus-1/system.d/org.smimed1.conf \
        usr/share/dbus-1/system-services/org.smimed1.service \
        usr/share/dbus-1/interfaces/org.smimed1.Manager.xml \
        usr/share/dbus-1/interfaces/org.smimed1.Certificate.xml \
        usr/share/dbus-1/interfaces/org.smimed1.Key.xml \
        usr/share/polkit-1/actions/org.smimed1.policy \
        usr/share/man/man8/smimed.8 \
        usr/share/man/man5/smimed.conf.5 \
        usr/share/man/man1/smimectl.1 \
        usr/share/man/man3/libsmimed.3 \
        usr/share/bash-completion/completions/smimectl \
        usr/share/zsh/vendor-completions/_smimectl \
        usr/share/doc/smimed/examples/network-hsm.conf.example \
        usr/share/doc/smimed/examples/cluster-node.conf.example \
        usr/share/doc/smimed/examples/crl-fetch.conf.example \
        usr/lib/systemd/catalog/smimed.catalog \
        etc/smimed/smimed.conf; do
        [ -e "$dest/$f" ] || fail "not installed: /$f"
done
# The completions parse.
bash -n "$dest/usr/share/bash-completion/completions/smimectl" || fail "bash completion does not parse"
zsh -n "$dest/usr/share/zsh/vendor-completions/_smimectl" || fail "zsh completion does not parse"
# org.smimed1(5), unless the build left it out (-Dman=disabled).
if [ -e "$build/docs/org.smimed1.5" ]; then
        [ -s "$dest/usr/share/man/man5/org.smimed1.5" ] || fail "not installed: /usr/share/man/man5/org.smimed1.5"
fi
[ -x "$dest/usr/libexec/smimed" ] || fail "smimed is not executable"
[ -x "$dest/usr/libexec/smimed-worker" ] || fail "smimed-worker is not executable"
echo "ok: every file where it belongs"

# The Cockpit admin console (issue 21), unless the build left it out
# (-Dcockpit=false): every file of cockpit/ in datadir/cockpit/smimed, the
# manifest valid JSON naming the menu entry, every script the page loads there.
cockpit_option=$(meson introspect "$build" --buildoptions |
                 python3 -c 'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "cockpit"][0])')
pkg="$dest/usr/share/cockpit/smimed"
if [ "$cockpit_option" = True ]; then
        for f in $(sed -n "s/^ *'\([a-z]*\.[a-z]*\)',\?$/\1/p" "$src/cockpit/meson.build"); do
                cmp -s "$src/cockpit/$f" "$pkg/$f" || fail "not installed: /usr/share/cockpit/smimed/$f"
        done
        python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); assert m["menu"]["index"]["label"] == "S/MIME keys"' \
                "$pkg/manifest.json" || fail "cockpit manifest.json"
        for s in $(sed -n 's/.*<script src="\([^"]*\)".*/\1/p' "$pkg/index.html"); do
                case "$s" in
                ../base1/*) ;;
                *) [ -s "$pkg/$s" ] || fail "index.html loads $s, which is not installed" ;;
                esac
        done
        echo "ok: Cockpit package"
else
        [ ! -e "$pkg" ] || fail "-Dcockpit=false, yet /usr/share/cockpit/smimed is installed"
        echo "ok: no Cockpit package (-Dcockpit=false)"
fi

# The unit, with its programs pointed into the DESTDIR.
mkdir "$dest/verify"
sed -e "s|/usr/libexec/smimed|$dest/usr/libexec/smimed|" -e "s|/usr/bin/smimectl|$dest/usr/bin/smimectl|" \
        "$dest/usr/lib/systemd/system/smimed.service" > "$dest/verify/smimed.service"
MANPATH="$dest/usr/share/man" systemd-analyze verify "$dest/verify/smimed.service" || fail "systemd-analyze verify"
grep -q '^ExecStart=/usr/libexec/smimed$' "$dest/usr/lib/systemd/system/smimed.service" || fail "ExecStart"
grep -q '^LoadCredential=token-pin:/etc/smimed/token-pin$' "$dest/usr/lib/systemd/system/smimed.service" \
        || fail "LoadCredential"
exposure=$(systemd-analyze security --offline=yes "$dest/verify/smimed.service" 2>&1 |
           sed -n 's/.*Overall exposure level for smimed.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 1.5) }' || fail "exposure $exposure is above 1.5"
echo "ok: unit verifies, exposure $exposure"

# The D-Bus activation file names the service and its user.
grep -q '^Name=org.smimed1$' "$dest/usr/share/dbus-1/system-services/org.smimed1.service" || fail "activation Name"
grep -q '^User=smimed$' "$dest/usr/share/dbus-1/system-services/org.smimed1.service" || fail "activation User"
# Activation follows enablement: the alias the unit installs, not the unit.
grep -q '^SystemdService=dbus-org.smimed1.service$' "$dest/usr/share/dbus-1/system-services/org.smimed1.service" \
        || fail "activation SystemdService"
grep -q '^Alias=dbus-org.smimed1.service$' "$dest/usr/lib/systemd/system/smimed.service" || fail "unit Alias"

# The journal catalog: journalctl takes it, and it explains every
# MESSAGE_ID the audit records carry.
journalctl --root="$dest" --update-catalog || fail "journalctl --update-catalog"
catalog=$(journalctl --root="$dest" --list-catalog)
ids=$(sed -n 's/^ *\[AUDIT_[A-Z_]*\] = "\([0-9a-f]\{32\}\)",$/\1/p' "$src/daemon/audit.c")
ids="$ids $(sed -n 's/^#define [A-Z_]*MESSAGE_ID "\([0-9a-f]\{32\}\)"$/\1/p' "$src"/daemon/*.c)"
[ "$(echo $ids | wc -w)" -ge 9 ] || fail "not every MESSAGE_ID found in daemon/audit.c and daemon/manager-expiry.c"
for id in $ids; do
        grep -q "^$id smimed: " <<< "$catalog" || fail "the catalog does not explain MESSAGE_ID $id"
done
echo "ok: journal catalog ($(echo $ids | wc -w) MESSAGE_IDs)"

# XML: the polkit actions against polkit's DTD, the rest well formed, and
# the bus policy says what it must: only smimed owns the name.
xmllint --noout --dtdvalid /usr/share/polkit-1/policyconfig-1.dtd \
        "$dest/usr/share/polkit-1/actions/org.smimed1.policy" || fail "polkit policy"
for a in sign decrypt manage-certificates manage-keys; do
        grep -q "<action id=\"org.smimed1.$a\">" "$dest/usr/share/polkit-1/actions/org.smimed1.policy" \
                || fail "polkit action org.smimed1.$a"
done
for x in "$dest"/usr/share/dbus-1/interfaces/*.xml "$dest/usr/share/dbus-1/system.d/org.smimed1.conf"; do
        xmllint --noout --nonet "$x" || fail "not well formed: $x"
done
[ "$(xmllint --xpath 'count(//policy[@user="smimed"]/allow[@own="org.smimed1"])' \
        "$dest/usr/share/dbus-1/system.d/org.smimed1.conf")" = 1 ] || fail "bus policy: smimed owning the name"
[ "$(xmllint --xpath 'count(//allow[@own])' "$dest/usr/share/dbus-1/system.d/org.smimed1.conf")" = 1 ] \
        || fail "bus policy: someone else may own the name"
[ "$(xmllint --xpath 'count(//policy[@context="default"]/allow[@send_destination="org.smimed1"])' \
        "$dest/usr/share/dbus-1/system.d/org.smimed1.conf")" = 1 ] || fail "bus policy: callers"
echo "ok: XML"

# smimectl --help and the man page agree on the verbs.
smimectl="$dest/usr/bin/smimectl"
verbs=$(LD_LIBRARY_PATH="$dest/usr/lib/$libdir" "$smimectl" --help | sed -n '/^Commands:/,/^$/p' |
        sed -n 's/^  \([a-z-]*\).*/\1/p')
[ -n "$verbs" ] || fail "no verbs in smimectl --help"
# The first word of each tagged paragraph of the man page, roff removed.
described=$(awk '/^\.TP/ { getline; print }' "$dest/usr/share/man/man1/smimectl.1" |
            sed -e 's/^\.B[IR]* *//' -e 's/\\f[BRIP]//g' -e 's/\\-/-/g' -e 's/"//g' | awk '{print $1}')
for v in $verbs; do
        grep -qx -- "$v" <<< "$described" || fail "smimectl(1) does not describe $v"
done
echo "ok: smimectl --help and smimectl(1) agree ($(echo $verbs | wc -w) verbs)"

# The library is usable through pkg-config by a program outside the tree.
cat > "$dest/client.c" <<'C'
#include <smimed.h>
int main(void) { smimed_error e = {}; smimed_error_done(&e); return smimed_error_is_unreachable(&e); }
C
# A sanitizer build's library needs the same runtime in the program.
sanitize=
# (grep reads all of ldd's output: with -q, ldd could die of SIGPIPE and
# pipefail would call the whole test a plain build.)
ldd "$dest/usr/lib/$libdir/libsmimed.so.1" | grep libasan >/dev/null && sanitize="-fsanitize=address,undefined"
PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest/usr/lib/$libdir/pkgconfig" \
        cc $sanitize -o "$dest/client" "$dest/client.c" $(PKG_CONFIG_SYSROOT_DIR="$dest" \
        PKG_CONFIG_PATH="$dest/usr/lib/$libdir/pkgconfig" pkg-config --cflags --libs smimed) || fail "pkg-config build"
LD_LIBRARY_PATH="$dest/usr/lib/$libdir" "$dest/client" || fail "client"
echo "ok: pkg-config"
