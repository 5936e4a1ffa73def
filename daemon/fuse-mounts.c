/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fuse-mounts.h"
#include "macro.h"

#define MOUNTINFO "/proc/self/mountinfo"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int watch_fd = -1; /* MOUNTINFO, opened before the first reading: polled for changes */
static bool devices_read; /* devices is the table as it was at the last poll() */
static dev_t *devices;    /* of the FUSE mounts */
static size_t n_devices;
static dev_t memfd_device; /* never FUSE; 0 until known */

/* "36 35 0:52 / /mnt rw,nosuid shared:1 - fuse.sshfs host:/ rw,user_id=0": the
 * fields after " - " are the type, the source and the super block's options
 * (paths escape spaces as \040, so " - " is only ever the separator). */
bool fuse_mounts_parse_line(const char *line, dev_t *ret_dev) {
        unsigned major, minor;
        const char *type;
        size_t n;

        if (sscanf(line, "%*u %*u %u:%u ", &major, &minor) != 2)
                return false;
        type = strstr(line, " - ");
        if (!type)
                return false;
        type += 3;
        n = strcspn(type, " ");
        if (!((n == 4 && startswith(type, "fuse")) || (n > 5 && startswith(type, "fuse.")) ||
              (n == 7 && startswith(type, "fuseblk"))))
                return false;
        *ret_dev = makedev(major, minor);
        return true;
}

static int read_devices(void) {
        _cleanup_free_ char *line = NULL;
        _cleanup_free_ dev_t *found = NULL;
        size_t n_found = 0, allocated = 0, size = 0;
        FILE *f;
        int r = 0;

        f = fopen(MOUNTINFO, "re");
        if (!f)
                return -errno;
        while (getline(&line, &size, f) >= 0) {
                dev_t dev;

                line[strcspn(line, "\n")] = '\0';
                if (!fuse_mounts_parse_line(line, &dev))
                        continue;
                if (n_found == allocated) {
                        size_t a = allocated ? allocated * 2 : 8;
                        dev_t *p = reallocarray(found, a, sizeof(dev_t));

                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        found = p;
                        allocated = a;
                }
                found[n_found++] = dev;
        }
        if (r == 0 && ferror(f))
                r = -EIO;
        fclose(f);
        if (r < 0)
                return r;
        free(devices);
        devices = TAKE_PTR(found);
        n_devices = n_found;
        return 0;
}

static void learn_memfd_device(void) {
        struct stat st;
        int fd;

        fd = memfd_create("smimed-probe", MFD_CLOEXEC);
        if (fd < 0)
                return;
        if (fstat(fd, &st) >= 0)
                memfd_device = st.st_dev;
        close(fd);
}

/* The table is stale when the mounts changed since the last poll() (which
 * also marks the change as seen). */
static bool mounts_changed(void) {
        struct pollfd p = {.fd = watch_fd, .events = POLLPRI};

        if (poll(&p, 1, 0) < 0)
                return true;
        return p.revents & (POLLPRI | POLLERR);
}

static int watch_locked(void) {
        if (watch_fd >= 0)
                return 0;
        watch_fd = open(MOUNTINFO, O_RDONLY | O_CLOEXEC);
        if (watch_fd < 0)
                return -errno;
        learn_memfd_device();
        devices_read = false;
        return 0;
}

int fuse_mounts_watch(void) {
        int r;

        pthread_mutex_lock(&lock);
        r = watch_locked();
        pthread_mutex_unlock(&lock);
        return r;
}

int fuse_mounts_contain(dev_t dev) {
        int r;

        pthread_mutex_lock(&lock);
        r = watch_locked();
        if (r < 0)
                goto finish;
        if (memfd_device != 0 && dev == memfd_device)
                goto finish;
        if (devices_read && mounts_changed())
                devices_read = false;
        if (!devices_read) {
                r = read_devices();
                if (r < 0)
                        goto finish;
                devices_read = true;
        }
        for (size_t i = 0; i < n_devices; i++)
                if (devices[i] == dev) {
                        r = 1;
                        break;
                }
finish:
        pthread_mutex_unlock(&lock);
        return r;
}
