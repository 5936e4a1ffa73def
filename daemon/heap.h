/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Keeps the heap memory that one request after another reuses (see heap.c). */
void heap_keep_for_reuse(void);
