/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "capabilities.h"
#include "strv.h"

typedef struct Candidate {
        CertInfo *info;
        Validation validation;
        bool has_key;
} Candidate;

typedef struct Candidates {
        Candidate *items;
        size_t n;
        CertPurpose purpose;
} Candidates;

static void candidates_done(Candidates *c) {
        for (size_t i = 0; i < c->n; i++) {
                cert_info_free(c->items[i].info);
                validation_done(&c->items[i].validation);
        }
        free(c->items);
        *c = (Candidates) {};
}

void capability_done(Capability *c) {
        free(c->address);
        free(c->message);
        cert_info_free(c->info);
        sk_X509_pop_free(c->chain, X509_free);
        *c = (Capability) {};
}

bool capability_has_private_key(const CapabilityContext *ctx, const CertInfo *info) {
        return strv_contains(ctx->key_spkis, info->spki_sha256);
}

static int candidates_load(const CapabilityContext *ctx, const char *address, CertPurpose purpose,
                           Candidates *ret) {
        _cleanup_(strv_freep) char **fingerprints = NULL;
        Candidates c = { .purpose = purpose };
        size_t n;
        int r;

        r = ctx->lookup.find_by_address(ctx->lookup.userdata, address, &fingerprints);
        if (r < 0)
                return r;
        n = strv_length(fingerprints);
        c.items = calloc(n ? n : 1, sizeof(Candidate));
        if (!c.items)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                Candidate *cand = &c.items[c.n];
                X509 *x509 = NULL;

                r = ctx->lookup.get_certificate(ctx->lookup.userdata, fingerprints[i], &x509);
                if (r == -ENOENT)
                        continue;
                if (r >= 0) {
                        r = cert_info_new(x509, &cand->info);
                        X509_free(x509);
                }
                if (r >= 0)
                        r = validate_certificate(ctx->validator, cand->info->x509, purpose, ctx->policy, ctx->now,
                                                 &cand->validation);
                if (r < 0) {
                        cert_info_free(cand->info);
                        candidates_done(&c);
                        return r;
                }
                cand->has_key = capability_has_private_key(ctx, cand->info);
                c.n++;
        }

        *ret = c;
        return 0;
}

/* Lower is better: usable (and, to sign, with its key in the token) first,
 * then the least bad status, then the newest (issued last, then valid
 * longest: a renewal issued in the same second as the certificate it
 * renews still wins). */
static int candidate_tier(const Candidate *c, CertPurpose purpose) {
        if (c->validation.status == CERT_STATUS_VALID)
                return purpose == CERT_PURPOSE_SIGN && !c->has_key ? 1 : 0;
        return 2 + (int) c->validation.status;
}

static int candidate_compare(const void *a, const void *b, void *userdata) {
        const Candidate *x = a, *y = b;
        CertPurpose purpose = *(const CertPurpose *) userdata;
        int tx = candidate_tier(x, purpose), ty = candidate_tier(y, purpose);

        if (tx != ty)
                return tx < ty ? -1 : 1;
        if (x->info->not_before != y->info->not_before)
                return x->info->not_before > y->info->not_before ? -1 : 1;
        if (x->info->not_after != y->info->not_after)
                return x->info->not_after > y->info->not_after ? -1 : 1;
        return strcmp(x->info->fingerprint, y->info->fingerprint);
}

static void candidates_sort(Candidates *c) {
        qsort_r(c->items, c->n, sizeof(Candidate), candidate_compare, &c->purpose);
}

/* For lookups: usable first, then simply the newest. */
static int candidate_compare_usable(const void *a, const void *b) {
        const Candidate *x = a, *y = b;
        bool ux = x->validation.status == CERT_STATUS_VALID, uy = y->validation.status == CERT_STATUS_VALID;

        if (ux != uy)
                return ux ? -1 : 1;
        if (x->info->not_before != y->info->not_before)
                return x->info->not_before > y->info->not_before ? -1 : 1;
        if (x->info->not_after != y->info->not_after)
                return x->info->not_after > y->info->not_after ? -1 : 1;
        return strcmp(x->info->fingerprint, y->info->fingerprint);
}

static int set_message(Capability *c, const char *format, ...) _printf_(2, 3);
static int set_message(Capability *c, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&c->message, format, ap);
        va_end(ap);
        if (r < 0) {
                c->message = NULL;
                return -ENOMEM;
        }
        return 0;
}

int capability_for(const CapabilityContext *ctx, const char *address, CertPurpose purpose, Capability *ret) {
        _cleanup_(candidates_done) Candidates c = {};
        _cleanup_(capability_done) Capability cap = {};
        Candidate *best;
        int r;

        cap.address = strdup(address);
        if (!cap.address)
                return -ENOMEM;

        if (ctx->disabled) {
                cap.reason = "feature-disabled";
                r = set_message(&cap, "S/MIME is turned off by the administrator ([Policy] Enabled=no).");
                if (r < 0)
                        return r;
                *ret = cap;
                cap = (Capability){};
                return 0;
        }

        r = candidates_load(ctx, address, purpose, &c);
        if (r < 0)
                return r;

        if (c.n == 0) {
                cap.reason = "no-certificate";
                r = set_message(&cap, "No certificate for %s is in the store. Ask your administrator to add it.",
                                address);
        } else {
                candidates_sort(&c);
                best = &c.items[0];
                cap.info = TAKE_PTR(best->info);
                cap.chain = TAKE_PTR(best->validation.chain);

                if (best->validation.status != CERT_STATUS_VALID) {
                        cap.reason = cert_status_to_string(best->validation.status);
                        cap.message = TAKE_PTR(best->validation.message);
                        r = 0;
                } else if (purpose == CERT_PURPOSE_SIGN && !best->has_key && !ctx->token_ready) {
                        cap.reason = "token-unavailable";
                        r = set_message(&cap, "The token that holds the private keys is not ready: %s",
                                        strempty(ctx->token_problem));
                } else if (purpose == CERT_PURPOSE_SIGN && !best->has_key) {
                        cap.reason = "no-private-key";
                        r = set_message(&cap,
                                        "The certificate for %s is valid, but its private key is not in the token. "
                                        "Ask your administrator to enroll it.",
                                        address);
                } else {
                        cap.possible = true;
                        cap.reason = "";
                        cap.message = TAKE_PTR(best->validation.message);
                        r = 0;
                }
        }
        if (r < 0)
                return r;
        if (!cap.message)
                return -ENOMEM;

        *ret = cap;
        cap = (Capability) {};
        return 0;
}

int capability_lookup(const CapabilityContext *ctx, const char *address, CertPurpose purpose, bool usable_only,
                      char ***ret) {
        _cleanup_(candidates_done) Candidates c = {};
        _cleanup_(strv_freep) char **l = NULL;
        int r;

        /* Everything, unfiltered: the lookup's order (newest first), without
         * validating a possibly very large store. */
        if (!address[0] && !usable_only)
                return ctx->lookup.find_by_address(ctx->lookup.userdata, NULL, ret);

        r = candidates_load(ctx, address, purpose, &c);
        if (r < 0)
                return r;
        qsort(c.items, c.n, sizeof(Candidate), candidate_compare_usable);

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < c.n; i++) {
                if (usable_only && c.items[i].validation.status != CERT_STATUS_VALID)
                        continue;
                r = strv_extend(&l, c.items[i].info->fingerprint);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- remembered answers ---- */

/* A few senders and the recipients of the messages in progress. */
#define CAPABILITY_CACHE_SIZE 64U

typedef struct CachedCapability {
        CertPurpose purpose;
        uint64_t lookup_generation;
        uint64_t context_generation;
        time_t now;
        bool token_ready;
        Capability capability; /* its address is the key; NULL: an empty slot */
} CachedCapability;

struct CapabilityCache {
        CachedCapability entries[CAPABILITY_CACHE_SIZE];
        size_t next;
};

int capability_cache_new(CapabilityCache **ret) {
        CapabilityCache *cache = calloc(1, sizeof(CapabilityCache));

        if (!cache)
                return -ENOMEM;
        *ret = cache;
        return 0;
}

CapabilityCache *capability_cache_free(CapabilityCache *cache) {
        if (!cache)
                return NULL;
        for (size_t i = 0; i < CAPABILITY_CACHE_SIZE; i++)
                capability_done(&cache->entries[i].capability);
        return mfree(cache);
}

static int capability_copy(const Capability *from, Capability *ret) {
        _cleanup_(capability_done) Capability c = {
                .possible = from->possible,
                .reason = from->reason,
        };

        c.address = strdup(from->address);
        c.message = from->message ? strdup(from->message) : NULL;
        if (!c.address || (from->message && !c.message))
                return -ENOMEM;
        if (from->chain) {
                c.chain = X509_chain_up_ref(from->chain);
                if (!c.chain)
                        return -ENOMEM;
        }
        c.info = cert_info_ref(from->info);
        *ret = c;
        c = (Capability){};
        return 0;
}

static bool cached_matches(const CachedCapability *e, uint64_t lookup_generation, const CapabilityContext *ctx,
                           const char *address, CertPurpose purpose) {
        return e->capability.address && e->purpose == purpose && e->lookup_generation == lookup_generation &&
               e->context_generation == ctx->generation && e->now == ctx->now && e->token_ready == ctx->token_ready &&
               streq(e->capability.address, address);
}

/* Where a new answer goes: the same address and purpose's old one, else one
 * that can never match again (another second or generation), else the
 * oldest of the ring. */
static CachedCapability *cache_slot(CapabilityCache *cache, uint64_t lookup_generation, const CapabilityContext *ctx,
                                    const char *address, CertPurpose purpose) {
        CachedCapability *dead = NULL, *e;

        for (size_t i = 0; i < CAPABILITY_CACHE_SIZE; i++) {
                e = &cache->entries[i];
                if (!e->capability.address)
                        dead = dead ?: e;
                else if (e->purpose == purpose && streq(e->capability.address, address))
                        return e;
                else if (e->now != ctx->now || e->lookup_generation != lookup_generation ||
                         e->context_generation != ctx->generation)
                        dead = dead ?: e;
        }
        if (dead)
                return dead;
        e = &cache->entries[cache->next];
        cache->next = (cache->next + 1) % CAPABILITY_CACHE_SIZE;
        return e;
}

int capability_for_cached(CapabilityCache *cache, const CapabilityContext *ctx, const char *address,
                          CertPurpose purpose, Capability *ret) {
        _cleanup_(capability_done) Capability c = {};
        CachedCapability *e;
        uint64_t generation;
        int r;

        if (!cache || !ctx->lookup.generation)
                return capability_for(ctx, address, purpose, ret);

        /* Read before answering: a change meanwhile makes the entry stale, never the other way round. */
        generation = ctx->lookup.generation(ctx->lookup.userdata);
        for (size_t i = 0; i < CAPABILITY_CACHE_SIZE; i++)
                if (cached_matches(&cache->entries[i], generation, ctx, address, purpose))
                        return capability_copy(&cache->entries[i].capability, ret);

        r = capability_for(ctx, address, purpose, &c);
        if (r < 0)
                return r;

        e = cache_slot(cache, generation, ctx, address, purpose);
        capability_done(&e->capability);
        if (capability_copy(&c, &e->capability) >= 0) {
                e->purpose = purpose;
                e->lookup_generation = generation;
                e->context_generation = ctx->generation;
                e->now = ctx->now;
                e->token_ready = ctx->token_ready;
        }
        *ret = c;
        c = (Capability){};
        return 0;
}
