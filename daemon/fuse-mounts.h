/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Whether dev is the device of a FUSE file system (types fuse, fuse.* and
 * fuseblk) mounted in this process's mount namespace: 1, 0, or a negative
 * errno. FUSE is the one file system whose server a local user may run for
 * others (allow_other): every stat, read or write of its files is a
 * request to that server, which may answer when it likes.
 *
 * Answered from /proc/self/mountinfo without asking any file system
 * anything. The table is read again only when the namespace's mounts
 * changed since the last reading (poll() says so at once), so a mount
 * made just before the call is known. The device memfds live on is
 * answered without that poll(). Safe from any thread. */
int fuse_mounts_contain(dev_t dev);

/* Opens what fuse_mounts_contain() watches, which it keeps open from then
 * on; done by the first call otherwise. smimed does it at its start, so
 * that the fds it holds once idle are the same before and after its first
 * call. */
int fuse_mounts_watch(void);

/* Whether the mountinfo line (without its newline) is of a FUSE file
 * system, and its device then. */
bool fuse_mounts_parse_line(const char *line, dev_t *ret_dev);
