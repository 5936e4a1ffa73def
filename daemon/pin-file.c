/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "message.h"
#include "macro.h"
#include "pin-file.h"

int pin_file_read(const char *path, char **ret_pin, char **ret_message) {
        _cleanup_(closep) int fd = -1;
        char buf[PIN_FILE_MAX_SIZE + 1];
        size_t len = 0;
        struct stat st;
        char *pin;

        *ret_message = NULL;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0 && errno == ELOOP)
                return message_fail(ret_message, -ELOOP,
                            "The PIN file %s is a symbolic link; point PINFile= at the file itself.", path);
        if (fd < 0)
                return message_fail(ret_message, -errno, "Cannot open the PIN file %s: %m.", path);
        if (fstat(fd, &st) < 0)
                return message_fail(ret_message, -errno, "Cannot stat the PIN file %s: %m.", path);
        if (!S_ISREG(st.st_mode))
                return message_fail(ret_message, -EINVAL, "The PIN file %s is not a regular file.", path);
        if (st.st_mode & (S_IRWXG | S_IRWXO))
                return message_fail(ret_message, -EPERM,
                            "Refusing the PIN file %s: its mode %04o lets group or others access it; "
                            "make it readable by its owner only (chmod 0600).",
                            path, (unsigned) (st.st_mode & 07777));

        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        explicit_bzero(buf, sizeof(buf));
                        return message_fail(ret_message, -errno, "Cannot read the PIN file %s: %m.", path);
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len == sizeof(buf)) {
                        explicit_bzero(buf, sizeof(buf));
                        return message_fail(ret_message, -EFBIG, "The PIN file %s is too large to hold a PIN.", path);
                }
        }

        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        if (len == 0 || memchr(buf, '\0', len)) {
                explicit_bzero(buf, sizeof(buf));
                return message_fail(ret_message, -EINVAL, "The PIN file %s holds no usable PIN.", path);
        }

        pin = strndup(buf, len);
        explicit_bzero(buf, sizeof(buf));
        if (!pin)
                return -ENOMEM;

        *ret_pin = pin;
        return 0;
}
