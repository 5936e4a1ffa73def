#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# smimed under a real systemd: a Debian 12 tree (mmdebstrap, cached) booted
# with systemd-nspawn, once with dbus-daemon and once with dbus-broker as the
# system bus. smimed is installed into the running container as a package
# would be (meson install, ldconfig, sysusers, tmpfiles, daemon-reload, the
# bus reloaded), with a SoftHSM2 token made by the smimed user, and then:
#  - a disabled smimed is not activated; once enabled, `smimectl status`
#    activates it through the bus (SystemdService= is the unit's Alias=);
#  - systemctl status, reload (a drop-in turning [Policy] Enabled= off is
#    applied, the main process stays), stop, start and restart;
#  - the sandbox is in force in the running service: every process of the
#    unit has NoNewPrivs, a seccomp filter and no capabilities (the unit
#    grants none); and inside smimed itself (calls injected with gdb, so its
#    own credentials, mount namespace and seccomp filter answer): /usr and
#    /etc refuse writes (EROFS), /etc/smimed too (EACCES: systemd mounts a
#    ConfigurationDirectory= writable, its mode keeps smimed out), the
#    state directory and SoftHSM2's token directory take them, AF_INET,
#    AF_INET6 and AF_NETLINK sockets are refused (EAFNOSUPPORT) while
#    AF_UNIX works;
#  - systemd-analyze verify (--man=no: no man-db in the container; test-install
#    checks the pages) and security of the installed unit (exposure 1.5
#    or lower, as test-install.sh).
# Not checked: MemoryMax=-style resource limits and IPAddressDeny=. The
# container has no cgroup controllers delegated (memory, pids, BPF firewall),
# so systemd cannot enforce them there and a check would prove nothing.
#
#   test-systemd-container.sh BUILD_DIR
#
# The bootstrapped tree is kept in $SMIMED_TEST_CACHE (default
# /var/cache/smimed-test), one directory per package list; each boot runs
# on a throwaway overlayfs over it, removed at the end. The first run needs
# the Debian archive (the mirror of this machine's apt sources) and about a
# minute more. Needs root, systemd-nspawn (systemd-container), mmdebstrap,
# gdb. SMIMED_TEST_KEEP=1 keeps the run directory (console logs). A run
# killed outright is cleaned up by the next one.
set -Eeuo pipefail
# A step without a message of its own still says what failed.
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR

build=$(cd "$1" && pwd)

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (mounts, systemd-nspawn)"
# Under meson test --setup valgrind, SMIMED_TEST_WRAPPER is for the harness's
# smimed; here systemd starts the installed one: the plain run covers it.
[ -z "${SMIMED_TEST_WRAPPER:-}" ] || skip "smimed runs under systemd here, not under SMIMED_TEST_WRAPPER (tools/run-tests leaves this test out of the valgrind and asan runs)"
# A sanitizer build cannot run under the unit's MemoryDenyWriteExecute= and
# system call filter; the plain build is the one to check.
if ldd "$build/daemon/smimed" | grep libasan >/dev/null; then
        skip "a sanitizer build: smimed cannot run under its unit's sandbox"
fi
for p in systemd-nspawn mmdebstrap nsenter gdb mount flock; do
        command -v "$p" >/dev/null || fail "$p is missing (tools/install-deps installs it)"
done

# What smimed needs at run time, and what the test uses inside the
# container. Not procps: the unit needs none of it (its ExecReload= once
# ran /bin/kill).
packages="systemd systemd-sysv dbus dbus-daemon dbus-broker polkitd
  libsystemd0 libp11-kit0 libssl3 libsqlite3-0 libpq5 libseccomp2
  p11-kit softhsm2 libengine-pkcs11-openssl"
suite=bookworm
# Bump when the way the tree is made changes.
tree_version=1

cache=${SMIMED_TEST_CACHE:-/var/cache/smimed-test}
key=$(printf '%s\n' "$tree_version" "$suite" $packages | sha256sum | cut -c1-16)
tree=$cache/$suite-$key

# This machine's Debian mirror, as apt uses it.
sources=()
[ -s /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list && sources+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -s "$f" ] && sources+=("$f")
done

make_tree() {
        mkdir -p "$cache"
        exec {lock}>"$cache/.lock"
        flock "$lock"
        if [ ! -d "$tree" ]; then
                local tmp
                # What a bootstrap that was stopped left behind.
                rm -rf "$cache"/.new.*
                tmp=$(mktemp -d "$cache/.new.XXXXXX")
                echo "# bootstrapping $suite into $tree (once)"
                # stdin: mmdebstrap reads a sources list from a stdin that is not a terminal.
                if ! mmdebstrap --quiet --variant=minbase --include="$(echo $packages | tr ' ' ,)" \
                        "$suite" "$tmp/root" "${sources[@]}" < /dev/null > "$tmp/log" 2>&1; then
                        tail -n 30 "$tmp/log" >&2
                        rm -rf "$tmp"
                        fail "mmdebstrap could not make the $suite tree"
                fi
                mv "$tmp/root" "$tree"
                rm -rf "$tmp"
        fi
        exec {lock}>&-
}

start=$SECONDS
make_tree
echo "ok: $suite tree $tree ($((SECONDS - start)) s)"

# What a run killed outright (SIGKILL: meson test's last word on a timeout)
# left: its container, its overlayfs, its directory.
# "PID START": the process, started at START (against a reused pid), and
# not a zombie.
pid_start() { echo "$1 $(awk '{ print $22 }' "/proc/$1/stat")"; }
alive() {
        local stat
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        stat=${stat##*) }
        [ "${stat%% *}" != Z ] && [ "$(awk '{ print $20 }' <<< "$stat")" = "$2" ]
}
for old in /var/tmp/smimed-nspawn.*; do
        [ -f "$old/owner" ] || continue
        alive $(cat "$old/owner") && continue
        # Each container's pid 1.
        while read -r p t; do
                alive "$p" "$t" && kill -KILL "$p"
        done < <(cat "$old/leader" 2>/dev/null)
        for m in "$old"/*/root; do
                mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
        done
        rm -rf "$old"
done

run=$(mktemp -d /var/tmp/smimed-nspawn.XXXXXX)
pid_start $$ > "$run/owner"
nspawn_pid=
leader=
root=

stop_container() {
        if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
                # systemd-nspawn turns SIGTERM into a clean shutdown of the container.
                kill -TERM "$nspawn_pid"
                local deadline=$((SECONDS + 30))
                while kill -0 "$nspawn_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
                        sleep 0.1
                done
                kill -0 "$nspawn_pid" 2>/dev/null && kill -KILL "$nspawn_pid"
                wait "$nspawn_pid" 2>/dev/null || true
        fi
        nspawn_pid=
        leader=
        if [ -n "$root" ] && mountpoint -q "$root"; then
                umount "$root" || umount -l "$root"
        fi
        root=
}

cleanup() {
        local rc=$?
        stop_container
        if [ -n "${SMIMED_TEST_KEEP:-}" ]; then
                echo "# kept $run"
        else
                rm -rf "$run"
        fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Polls COMMAND… until it succeeds or SECONDS pass.
wait_for() {
        local secs=$1 deadline
        shift
        deadline=$((SECONDS + secs))
        until "$@"; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.1
        done
}

# A command inside the container (all its namespaces, as root).
c() { nsenter -t "$leader" -a "$@"; }

# The host's pid of the container's pid $1.
host_pid() {
        local ns p s
        ns=$(readlink "/proc/$leader/ns/pid")
        for s in /proc/[0-9]*/status; do
                p=${s#/proc/}
                p=${p%/status}
                [ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
                if [ "$(awk '/^NSpid:/ { print $NF }' "$s" 2>/dev/null)" = "$1" ]; then
                        echo "$p"
                        return 0
                fi
        done
        return 1
}

boot() {
        local bus=$1 dir=$run/$bus
        mkdir -p "$dir/upper" "$dir/work" "$dir/root"
        root=$dir/root
        mount -t overlay overlay -o "lowerdir=$tree,upperdir=$dir/upper,workdir=$dir/work" "$root" \
                || fail "$bus: cannot mount an overlayfs over $tree"
        # dbus-broker, when installed, is the system bus through this alias;
        # without it, dbus-daemon's dbus.service is.
        rm -f "$root/etc/systemd/system/dbus.service"
        if [ "$bus" = dbus-broker ]; then
                ln -s /lib/systemd/system/dbus-broker.service "$root/etc/systemd/system/dbus.service"
        fi
        # On these machines: the unified cgroup hierarchy, bpf allowed
        # (systemd uses it), no machined to register with.
        SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -D "$root" --boot --register=no --keep-unit \
                --console=read-only --private-network --system-call-filter=bpf \
                --machine="smimed-test-$$" > "$dir/console.log" 2>&1 < /dev/null &
        nspawn_pid=$!
        # The container's pid 1: the child of systemd-nspawn that is pid 1 in
        # a pid namespace of its own (not the short-lived outer child).
        leader_found() {
                local p
                for p in $(pgrep -P "$nspawn_pid" || true); do
                        if [ "$(awk '/^NSpid:/ { print NF, $NF }' "/proc/$p/status" 2>/dev/null)" = "3 1" ]; then
                                leader=$p
                                return 0
                        fi
                done
                return 1
        }
        wait_for 30 leader_found || { tail -n 20 "$dir/console.log" >&2; fail "$bus: systemd-nspawn started no container"; }
        pid_start "$leader" >> "$run/leader"
        wait_for 60 test -S "/proc/$leader/root/run/systemd/private" \
                || { tail -n 20 "$dir/console.log" >&2; fail "$bus: systemd did not come up in the container"; }
        local state
        state=$(timeout 120 nsenter -t "$leader" -a systemctl is-system-running --wait) || true
        if [ "$state" != running ]; then
                c systemctl --failed --no-pager >&2 || true
                fail "$bus: the container's boot ended $state"
        fi
}

install_smimed() {
        local bus=$1
        meson install -C "$build" --destdir "$root" --quiet > "$run/$bus/install.log" 2>&1 \
                || { cat "$run/$bus/install.log" >&2; fail "$bus: meson install into the container"; }
        [ -x "$root/usr/libexec/smimed" ] || fail "$bus: no /usr/libexec/smimed: configure the build with --prefix=/usr"
        # What a package's maintainer scripts do.
        c ldconfig
        out=$(c systemd-sysusers smimed.conf 2>&1) || { echo "$out" >&2; fail "$bus: systemd-sysusers smimed.conf"; }
        c systemd-tmpfiles --create smimed.conf || fail "$bus: systemd-tmpfiles --create smimed.conf"
        c systemctl daemon-reload
        c systemctl reload dbus.service || fail "$bus: the bus does not reload its configuration"
        c id -nG smimed | grep -qw softhsm || fail "$bus: smimed is not in group softhsm (sysusers)"
        [ "$(c stat -c '%U %a' /var/lib/smimed)" = "smimed 700" ] || fail "$bus: /var/lib/smimed (tmpfiles)"
        [ "$(c stat -c '%U:%G %a' /etc/smimed)" = "root:smimed 750" ] || fail "$bus: /etc/smimed (tmpfiles)"

        # The token, made by the service's user so that it can open it; the
        # PIN where the unit's LoadCredential= reads it.
        local pin
        pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
        c runuser -u smimed -- softhsm2-util --init-token --free --label smimed-test \
                --pin "$pin" --so-pin "$pin" > /dev/null || fail "$bus: softhsm2-util --init-token as smimed"
        c sh -c 'umask 077; cat > /etc/smimed/token-pin' <<< "$pin"
}

active() { [ "$(c systemctl is-active smimed.service)" = "$1" ]; }
main_pid() { c systemctl show -P MainPID smimed.service; }

check_activation() {
        local bus=$1 out
        active inactive || fail "$bus: smimed runs before anything asked for it"
        # Disabled: no alias dbus-org.smimed1.service, so the bus cannot start it.
        if c smimectl status > /dev/null 2>&1; then
                fail "$bus: a disabled smimed was activated"
        fi
        active inactive || fail "$bus: a disabled smimed was started"
        c systemctl enable --quiet smimed.service || fail "$bus: systemctl enable smimed"
        out=$(c smimectl status) || fail "$bus: smimectl status did not activate smimed"
        grep -q '^ *Token: ready ("smimed-test")$' <<< "$out" || fail "$bus: token not ready after activation: $out"
        grep -q '^ *Enabled: yes$' <<< "$out" || fail "$bus: smimectl status: $out"
        active active || fail "$bus: smimed.service is not active after activation"
        echo "ok: $bus: activated by smimectl status once enabled, not before"
}

check_systemctl() {
        local bus=$1 out pid pid2
        out=$(c systemctl status --no-pager smimed.service) || fail "$bus: systemctl status: $out"
        grep -q 'Active: active (running)' <<< "$out" || fail "$bus: systemctl status: $out"
        grep -q 'Status: "Token ready"' <<< "$out" || fail "$bus: systemctl status shows no Status=: $out"

        # reload: ExecReload= (smimectl reload as User=smimed, no polkit), the
        # configuration read again with its drop-ins before systemctl returns.
        pid=$(main_pid)
        c mkdir -p /etc/smimed/smimed.conf.d
        c sh -c 'printf "[Policy]\nEnabled=no\n" > /etc/smimed/smimed.conf.d/50-test.conf'
        c systemctl reload smimed.service || {
                c journalctl -b -u smimed.service --no-pager | tail -n 20 >&2
                fail "$bus: systemctl reload smimed"
        }
        [ "$(main_pid)" = "$pid" ] || fail "$bus: systemctl reload replaced the main process"
        c smimectl status | grep -q '^ *Enabled: no' || fail "$bus: the drop-in was not applied by systemctl reload"
        c rm /etc/smimed/smimed.conf.d/50-test.conf
        c systemctl reload smimed.service || fail "$bus: systemctl reload smimed (drop-in removed)"
        c smimectl status | grep -q '^ *Enabled: yes$' || fail "$bus: the drop-in's removal was not applied"
        # A configuration smimed refuses fails the reload, with its reason, and
        # the running one stays.
        c sh -c 'printf "[Policy]\nMaxMessageSize=lots\n" > /etc/smimed/smimed.conf.d/50-test.conf'
        ! c systemctl reload smimed.service 2>/dev/null || fail "$bus: systemctl reload accepted a bad configuration"
        c journalctl -b -u smimed.service --no-pager | grep -q 'MaxMessageSize' \
                || fail "$bus: the refused reload's reason is not in the journal"
        c rm /etc/smimed/smimed.conf.d/50-test.conf
        c systemctl is-active --quiet smimed.service || fail "$bus: a refused reload stopped smimed"
        [ "$(main_pid)" = "$pid" ] || fail "$bus: a refused reload replaced the main process"
        # The bus method, root through polkit (polkitd activated on this bus).
        c smimectl reload || fail "$bus: smimectl reload as root"
        echo "ok: $bus: systemctl status and reload (drop-in applied and removed, a bad one refused), smimectl reload"

        c systemctl stop smimed.service || fail "$bus: systemctl stop"
        active inactive || fail "$bus: smimed is $(c systemctl is-active smimed.service) after stop"
        c smimectl status > /dev/null 2>&1 || fail "$bus: smimectl status did not activate the stopped smimed"
        c systemctl stop smimed.service
        c systemctl start smimed.service || fail "$bus: systemctl start"
        active active || fail "$bus: smimed is not active after start"
        pid=$(main_pid)
        c systemctl restart smimed.service || fail "$bus: systemctl restart"
        active active || fail "$bus: smimed is not active after restart"
        pid2=$(main_pid)
        [ "$pid2" != "$pid" ] && [ "$pid2" != 0 ] || fail "$bus: restart kept main pid $pid"
        c smimectl status | grep -q '^ *Token: ready' || fail "$bus: token not ready after restart"
        echo "ok: $bus: systemctl stop, start (and activation after stop), restart"
}

# Each process of the unit: no new privileges, a seccomp filter, no
# capabilities at all (the unit's CapabilityBoundingSet= and
# AmbientCapabilities= are empty).
check_credentials() {
        local bus=$1 pids p status f
        [ -z "$(c systemctl show -P CapabilityBoundingSet smimed.service)" ] \
                || fail "$bus: the unit grants capabilities; this check needs updating"
        [ -z "$(c systemctl show -P AmbientCapabilities smimed.service)" ] \
                || fail "$bus: the unit grants ambient capabilities; this check needs updating"
        pids=$(c cat /sys/fs/cgroup/system.slice/smimed.service/cgroup.procs)
        [ "$(wc -w <<< "$pids")" -ge 2 ] || fail "$bus: smimed and its workers not found in the unit's cgroup: $pids"
        local main n=0
        main=$(main_pid)
        grep -qx "$main" <<< "$pids" || fail "$bus: smimed's main pid $main is not in the unit's cgroup"
        for p in $pids; do
                # A worker may end between the listing and here.
                status=$(c cat "/proc/$p/status" 2> /dev/null) || { [ "$p" != "$main" ] && continue; }
                n=$((n + 1))
                grep -q '^NoNewPrivs:[[:space:]]*1$' <<< "$status" || fail "$bus: pid $p lacks NoNewPrivs"
                grep -q '^Seccomp:[[:space:]]*2$' <<< "$status" || fail "$bus: pid $p is not under a seccomp filter"
                for f in CapInh CapPrm CapEff CapBnd CapAmb; do
                        grep -q "^$f:[[:space:]]*0000000000000000$" <<< "$status" \
                                || fail "$bus: pid $p has capabilities: $(grep "^$f:" <<< "$status")"
                done
                grep -q "^Uid:[[:space:]]*$(c id -u smimed)[[:space:]]" <<< "$status" || fail "$bus: pid $p is not smimed"
        done
        [ $n -ge 2 ] || fail "$bus: smimed and a worker not both checked"
        echo "ok: $bus: $n processes of the unit: NoNewPrivs, seccomp, no capabilities, user smimed"
}

# Inside smimed itself: gdb makes the main thread call open() and socket(),
# so the answers are those of its own namespaces, credentials and filter.
check_sandbox() {
        local bus=$1 pid hpid out
        pid=$(main_pid)
        hpid=$(host_pid "$pid") || fail "$bus: smimed's pid $pid not found from the host"
        local errno='print *((int *(*)(void)) __errno_location)()'
        out=$(timeout 120 gdb -p "$hpid" -batch -nx \
                -ex 'print (int)open("/usr/smimed-probe", 0101, 0600)' -ex "$errno" \
                -ex 'print (int)open("/etc/smimed-probe", 0101, 0600)' -ex "$errno" \
                -ex 'print (int)socket(2, 1, 0)' -ex "$errno" \
                -ex 'print (int)socket(10, 2, 0)' -ex "$errno" \
                -ex 'print (int)socket(16, 3, 0)' -ex "$errno" \
                -ex 'print (int)open("/var/lib/smimed/smimed-probe", 0101, 0600)' \
                -ex 'print (int)close($11)' \
                -ex 'print (int)unlink("/var/lib/smimed/smimed-probe")' \
                -ex 'print (int)open("/var/lib/softhsm/tokens/smimed-probe", 0101, 0600)' \
                -ex 'print (int)close($14)' \
                -ex 'print (int)unlink("/var/lib/softhsm/tokens/smimed-probe")' \
                -ex 'print (int)socket(1, 1, 0)' \
                -ex 'print (int)close($17)' \
                -ex 'print (int)open("/etc/smimed/smimed-probe", 0101, 0600)' -ex "$errno" 2>&1) || { echo "$out" >&2; fail "$bus: gdb could not call into smimed"; }
        v() { sed -n "s/^\\\$$1 = \\(-\\?[0-9]*\\)\$/\\1/p" <<< "$out"; }
        [ "$(v 1)" = -1 ] && [ "$(v 2)" = 30 ] || fail "$bus: smimed can write /usr (open: $(v 1), errno $(v 2); EROFS expected)"
        [ "$(v 3)" = -1 ] && [ "$(v 4)" = 30 ] || fail "$bus: smimed can write /etc (open: $(v 3), errno $(v 4); EROFS expected)"
        [ "$(v 5)" = -1 ] && [ "$(v 6)" = 97 ] || fail "$bus: AF_INET socket not refused (socket: $(v 5), errno $(v 6); EAFNOSUPPORT expected)"
        [ "$(v 7)" = -1 ] && [ "$(v 8)" = 97 ] || fail "$bus: AF_INET6 socket not refused (socket: $(v 7), errno $(v 8))"
        [ "$(v 9)" = -1 ] && [ "$(v 10)" = 97 ] || fail "$bus: AF_NETLINK socket not refused (socket: $(v 9), errno $(v 10))"
        [ -n "$(v 11)" ] && [ "$(v 11)" -ge 0 ] && [ "$(v 12)" = 0 ] && [ "$(v 13)" = 0 ] \
                || fail "$bus: the state directory /var/lib/smimed is not writable by smimed (open: $(v 11))"
        [ -n "$(v 14)" ] && [ "$(v 14)" -ge 0 ] && [ "$(v 15)" = 0 ] && [ "$(v 16)" = 0 ] \
                || fail "$bus: SoftHSM2's /var/lib/softhsm/tokens is not writable by smimed (open: $(v 14))"
        [ -n "$(v 17)" ] && [ "$(v 17)" -ge 0 ] && [ "$(v 18)" = 0 ] || fail "$bus: AF_UNIX socket refused (socket: $(v 17))"
        # ConfigurationDirectory= is mounted writable under ProtectSystem=strict:
        # its owner and mode (root:smimed 0750) keep smimed out.
        [ "$(v 19)" = -1 ] && { [ "$(v 20)" = 13 ] || [ "$(v 20)" = 30 ]; } \
                || fail "$bus: smimed can write /etc/smimed (open: $(v 19), errno $(v 20))"
        c smimectl status > /dev/null || fail "$bus: smimed does not answer after the probes"
        [ "$(main_pid)" = "$pid" ] || fail "$bus: smimed was restarted by the probes"
        echo "ok: $bus: inside smimed /usr and /etc are read-only, /etc/smimed not writable, its state and token directories writable, AF_INET, AF_INET6, AF_NETLINK refused, AF_UNIX allowed"
}

# The audit trail in the journal, with its fields: a certificate import by
# root (success, priority info) and the same import refused to nobody by
# polkit (denied, priority notice). smimed sends the entry before its reply.
check_audit() {
        local bus=$1 pem=/var/tmp/smimed-audit.pem fp out
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -subj "/CN=smimed audit $bus" -keyout /dev/null -out "$root$pem" 2> /dev/null \
                || fail "$bus: openssl cannot make a certificate"
        chmod 0644 "$root$pem"
        fp=$(openssl x509 -in "$root$pem" -outform DER | sha256sum | cut -c1-64)
        c runuser -u nobody -- smimectl import "$pem" > /dev/null 2>&1 && fail "$bus: nobody imported a certificate"
        c smimectl import "$pem" > /dev/null || fail "$bus: smimectl import as root"
        c journalctl --sync
        field() { grep -qx "$1" <<< "$out" || fail "$bus: no $1 in the journal entry: $out"; }
        out=$(c journalctl --no-pager -o export -u smimed.service MESSAGE_ID=74982e5794484c8982e656a5df6dc719)
        field "SMIMED_OPERATION=import-certificates"
        field "SMIMED_OUTCOME=success"
        field "PRIORITY=6"
        field "SMIMED_CALLER_UID=0"
        field "SMIMED_FINGERPRINT=$fp"
        field "MESSAGE=smimed audit: import-certificates success by uid 0"
        out=$(c journalctl --no-pager -o export -u smimed.service MESSAGE_ID=d2b346db23e248a9a4fb21e5f58f90a3)
        field "SMIMED_OUTCOME=denied"
        field "PRIORITY=5"
        field "SMIMED_CALLER_UID=$(c id -u nobody)"
        field "SMIMED_OPERATION=org.smimed1.manage-certificates"
        field "SMIMED_DETAIL=org.freedesktop.DBus.Error.AccessDenied"
        echo "ok: $bus: audit entries in the journal with their fields (an import, and one polkit refused)"
}

check_analyze() {
        local bus=$1 out exposure
        out=$(c systemd-analyze verify --man=no smimed.service 2>&1) || fail "$bus: systemd-analyze verify: $out"
        out=$(c systemd-analyze security --no-pager smimed.service 2>&1) || fail "$bus: systemd-analyze security: $out"
        exposure=$(sed -n 's/.*Overall exposure level for smimed.service: \([0-9.]*\).*/\1/p' <<< "$out")
        [ -n "$exposure" ] || fail "$bus: no exposure level in: $out"
        awk -v e="$exposure" 'BEGIN { exit !(e <= 1.5) }' || fail "$bus: exposure $exposure is above 1.5"
        echo "ok: $bus: systemd-analyze verify, security of the installed unit: exposure $exposure"
}

# The names of the processes in the container (procps is not there for
# pgrep); one that ends meanwhile is left out.
running_in_container() { c sh -c 'cat /proc/[0-9]*/comm 2>/dev/null; true'; }

for bus in dbus-daemon dbus-broker; do
        t=$SECONDS
        boot "$bus"
        # The bus in charge is the one asked for.
        running_in_container | grep -qx "$bus" || fail "$bus: no $bus runs in the container"
        other=dbus-broker
        [ "$bus" = dbus-broker ] && other=dbus-daemon
        ! running_in_container | grep -qx "$other" || fail "$bus: $other runs in the container"
        echo "ok: $bus: booted ($((SECONDS - t)) s)"
        install_smimed "$bus"
        check_activation "$bus"
        check_systemctl "$bus"
        check_credentials "$bus"
        check_sandbox "$bus"
        check_audit "$bus"
        check_analyze "$bus"
        stop_container
        echo "ok: $bus: done ($((SECONDS - t)) s)"
done
echo "ok: smimed under systemd with dbus-daemon and dbus-broker ($((SECONDS - start)) s)"
