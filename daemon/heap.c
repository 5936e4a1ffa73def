/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <malloc.h>

#include "heap.h"

/* glibc gives the top of a heap back to the kernel as soon as more than
 * 128 KiB of it is free, and a single message's work (MIME, CMS, a
 * certificate chain) takes more than that. Each Sign then grew the heap
 * again: a dozen brk() and the page faults behind them per message in
 * smimed-worker, more time than the CMS work itself (a 4 KiB EC Sign went
 * from 430/s to 1,020/s without it). Up to HEAP_KEEP of free memory at the
 * top stays for the next request; a large message's memory above that still
 * goes back, and blocks of HEAP_MMAP_THRESHOLD or more are mapped apart, as
 * glibc would map them anyway once its dynamic threshold had risen. */
#define HEAP_KEEP (16U * 1024U * 1024U)
#define HEAP_TOP_PAD (1024U * 1024U)
#define HEAP_MMAP_THRESHOLD (4U * 1024U * 1024U)

void heap_keep_for_reuse(void) {
        (void) mallopt(M_TRIM_THRESHOLD, HEAP_KEEP);
        (void) mallopt(M_TOP_PAD, HEAP_TOP_PAD);
        (void) mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD);
}
