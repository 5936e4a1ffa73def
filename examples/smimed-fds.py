#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# A mail app written in Python with GLib's D-Bus (Debian: python3-gi). It
# passes file descriptors, so it streams messages through Sign, Verify,
# Encrypt and Decrypt; memfds as output, so nothing has to be read while a
# call runs (a pipe would have to be: smimed writes while it works).
#
#   python3 smimed-fds.py SENDER MESSAGE_FILE RECIPIENT...
#
# Asks whether it can sign as SENDER and encrypt to the RECIPIENTs (the
# composer's Sign and Encrypt buttons), signs MESSAGE_FILE as SENDER and
# verifies the result, encrypts it to every RECIPIENT and decrypts that
# again. Prints what it got, one "key: value" a line (tests/test-policy.c
# checks them). Exits 1 when a step fails.
import os
import sys

from gi.repository import Gio, GLib

BUS_NAME = "org.smimed1"
PATH = "/org/smimed1"
INTERFACE = "org.smimed1.Manager"
TIMEOUT_MS = 120 * 1000  # a large message or a slow token may take a while


def memfd_with(data):
    fd = os.memfd_create("smimed-example", os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read_all(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def call(bus, method, signature, args, fds=()):
    """Calls method; fds are passed in order, args name them by index (h)."""
    fd_list = Gio.UnixFDList.new()
    for fd in fds:
        fd_list.append(fd)
    reply, _ = bus.call_with_unix_fd_list_sync(
        BUS_NAME, PATH, INTERFACE, method, GLib.Variant(signature, args), None,
        Gio.DBusCallFlags.NONE, TIMEOUT_MS, fd_list, None)
    return reply.unpack()


def stream(bus, method, signature, head, data, tail):
    """Method (head..., h input, h output, tail...) on data; the output and
    the reply."""
    input_fd, output_fd = memfd_with(data), os.memfd_create("out", os.MFD_CLOEXEC)
    try:
        reply = call(bus, method, signature, (*head, 0, 1, *tail), (input_fd, output_fd))
        return read_all(output_fd), reply
    finally:
        os.close(input_fd)
        os.close(output_fd)


def content_type(data):
    for line in data.decode("utf-8", "replace").splitlines():
        if line.lower().startswith("content-type:"):
            return line.split(";")[0]
    return ""


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: smimed-fds.py SENDER MESSAGE_FILE RECIPIENT...")
    sender, message_file, recipients = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(message_file, "rb") as f:
        message = f.read()

    # The system bus, or the one DBUS_SYSTEM_BUS_ADDRESS names.
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)

    sign, encrypt = call(bus, "GetCapabilities", "(sasa{sv})", (sender, recipients, {}))
    print(f"can-sign: {str(sign['possible']).lower()}")
    for r in encrypt:
        print(f"can-encrypt: {r['address']} {str(r['possible']).lower()} {r['reason']}")

    signed, (info,) = stream(bus, "Sign", "(shha{sv})", (sender,), message, ({},))
    print(f"signer: {info['signer']}")
    print(f"signed-type: {content_type(signed)}")

    content, (status,) = stream(bus, "Verify", "(hha{sv})", (), signed, ({},))
    print(f"signature: {status['signature']}")
    print(f"content-matches: {str(b'Hello.' in content).lower()}")

    encrypted, (info,) = stream(bus, "Encrypt", "(ashha{sv})", (recipients,), message, ({},))
    print(f"recipients: {len(info['recipients'])}")
    print(f"encrypted-type: {content_type(encrypted)}")

    decrypted, (status,) = stream(bus, "Decrypt", "(hha{sv})", (), encrypted, ({},))
    print(f"encryption: {status['encryption']}")
    print(f"decrypted-with: {status.get('key', '')}")
    print(f"decrypted-matches: {str(b'Hello.' in decrypted).lower()}")

    # Errors are D-Bus errors named org.smimed1.Error.*, with a message for the user.
    try:
        stream(bus, "Sign", "(shha{sv})", ("nobody@example.com",), message, ({},))
        print("error: none")
    except GLib.Error as e:
        print(f"error: {Gio.DBusError.get_remote_error(e)}")


if __name__ == "__main__":
    main()
