/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The SHA-256 of everything in fd (read from offset 0, the offset left
 * alone), as lower-case hex; NULL on failure. */
char *sha256_fd(int fd);
