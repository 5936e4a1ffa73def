/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "store.h"

typedef struct StoreCopied {
        unsigned certificates; /* new in the target */
        unsigned trusted;      /* of them, or already there, made trust anchors */
        unsigned crls;         /* newer than the target's */
} StoreCopied;

/* Copies every certificate (with its trust flag) and CRL of from into to,
 * in one batch of to: all or nothing. What to has already stays (trust is
 * only ever added, an older CRL never replaces a newer one), so running it
 * twice copies nothing the second time. For moving an SQLite store into
 * PostgreSQL: smimed --copy-store-from=. */
int store_copy(Store *from, Store *to, StoreCopied *ret, char **ret_message);
