#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for sudo in test-cockpit: Cockpit's "administrative access"
without sudo installed or configured on the machine.

The unprivileged user's cockpit-bridge spawns this (a "privileged" bridge of
a test-only package) as it would spawn `sudo cockpit-bridge --privileged`.
It connects to a Unix socket where test-cockpit, as root, starts
`cockpit-bridge --privileged` for each connection, and relays both ways,
passing on file descriptors too: the privileged bridge asks for its stderr
as a descriptor on its stdin ("send-stderr").

  cockpit-superuser-proxy.py SOCKET
"""

import array
import os
import socket
import sys
import threading

FDS_MAX = 16


def user_to_root(user, root):
    while True:
        data, ancillary, _, _ = user.recvmsg(65536, socket.CMSG_SPACE(FDS_MAX * 4))
        fds = array.array("i")
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
        if not data and not fds:
            root.shutdown(socket.SHUT_WR)
            return
        root.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)] if fds else [])
        for fd in fds:
            os.close(fd)


def main():
    root = socket.socket(socket.AF_UNIX)
    root.connect(sys.argv[1])
    user = socket.socket(fileno=os.dup(0))  # the user's bridge gives a socket as stdin
    threading.Thread(target=user_to_root, args=(user, root), daemon=True).start()
    while True:
        data = root.recv(65536)
        if not data:
            return 0
        os.write(1, data)


if __name__ == "__main__":
    sys.exit(main())
