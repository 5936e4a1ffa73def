/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Long output through a pager, as systemctl does: only when stdout is a
 * terminal; $SMIMECTL_PAGER, else $PAGER, else less (LESS=FRXMK unless
 * set), else more; "" or "cat" for none; when none can be run the output is
 * copied through unchanged. pager_close() (also run at exit) waits for it. */
void pager_open(void);
void pager_close(void);
