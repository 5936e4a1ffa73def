/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "x509-cache.h"

typedef struct CacheEntry {
        uint64_t hash;
        uint8_t *der;           /* NULL: free */
        size_t size;
        X509 *x509;
        uint64_t used;          /* the clock at the last hit: the oldest goes first */
} CacheEntry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static CacheEntry cache[X509_CACHE_ENTRIES];
static uint64_t cache_clock, cache_hits;

/* FNV-1a: only to skip most entries quickly; a hit compares all the bytes. */
static uint64_t der_hash(const uint8_t *der, size_t size) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < size; i++)
                h = (h ^ der[i]) * 0x100000001b3ULL;
        return h;
}

static void entry_clear(CacheEntry *e) {
        X509_free(e->x509);
        free(e->der);
        *e = (CacheEntry) {};
}

/* With cache_lock held: a new reference to the entry's certificate, or NULL. */
static X509 *lookup_locked(uint64_t hash, const uint8_t *der, size_t size) {
        for (size_t i = 0; i < X509_CACHE_ENTRIES; i++) {
                CacheEntry *e = &cache[i];

                if (e->der && e->hash == hash && e->size == size && memcmp(e->der, der, size) == 0) {
                        if (!X509_up_ref(e->x509))
                                return NULL;
                        e->used = ++cache_clock;
                        cache_hits++;
                        return e->x509;
                }
        }
        return NULL;
}

/* With cache_lock held: keeps x (a reference of its own) in a free or the
 * oldest entry; nothing when out of memory. */
static void insert_locked(uint64_t hash, const uint8_t *der, size_t size, X509 *x) {
        CacheEntry *victim = &cache[0];
        uint8_t *copy;

        for (size_t i = 0; i < X509_CACHE_ENTRIES; i++) {
                if (!cache[i].der) {
                        victim = &cache[i];
                        break;
                }
                if (cache[i].used < victim->used)
                        victim = &cache[i];
        }
        copy = malloc(size);
        if (!copy || !X509_up_ref(x)) {
                free(copy);
                return;
        }
        memcpy(copy, der, size);
        entry_clear(victim);
        *victim = (CacheEntry) {
                .hash = hash,
                .der = copy,
                .size = size,
                .x509 = x,
                .used = ++cache_clock,
        };
}

X509 *x509_cache_parse(const uint8_t *der, size_t size) {
        const unsigned char *p = der;
        uint64_t hash;
        X509 *x;

        if (size == 0 || size > LONG_MAX)
                return NULL;
        hash = der_hash(der, size);
        pthread_mutex_lock(&cache_lock);
        x = lookup_locked(hash, der, size);
        pthread_mutex_unlock(&cache_lock);
        if (x)
                return x;

        /* Parsed without the lock: two threads may parse the same one at once, and both keep theirs. */
        x = d2i_X509(NULL, &p, (long) size);
        if (!x || p != der + size) {
                X509_free(x);
                return NULL;
        }
        pthread_mutex_lock(&cache_lock);
        insert_locked(hash, der, size, x);
        pthread_mutex_unlock(&cache_lock);
        return x;
}

void x509_cache_clear(void) {
        pthread_mutex_lock(&cache_lock);
        for (size_t i = 0; i < X509_CACHE_ENTRIES; i++)
                entry_clear(&cache[i]);
        pthread_mutex_unlock(&cache_lock);
}

uint64_t x509_cache_hits(void) {
        uint64_t n;

        pthread_mutex_lock(&cache_lock);
        n = cache_hits;
        pthread_mutex_unlock(&cache_lock);
        return n;
}

static void __attribute__((destructor)) cache_at_exit(void) {
        x509_cache_clear();
}
