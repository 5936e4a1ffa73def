/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/* Parsed certificates by their DER. d2i_X509() costs 100–200 µs in
 * OpenSSL 3.0 (its decoders set up the public key every time), and the same
 * few certificates (a signer and its chain, the token's certificates, the
 * usual recipients) are read from the store and cross between smimed and
 * its workers with every message. The last X509_CACHE_ENTRIES parsed are kept; a hit returns a new
 * reference to the same X509, so nobody may change one it got from here.
 * Thread-safe. No bus, no token. */

#define X509_CACHE_ENTRIES 256U

/* The certificate that is exactly the size bytes at der (all of them,
 * nothing after it), or NULL when they are not one (or out of memory). */
X509 *x509_cache_parse(const uint8_t *der, size_t size);

/* Drops every entry (the tests; and at exit, so that nothing looks leaked). */
void x509_cache_clear(void);

/* How many parses were answered from the cache (the tests). */
uint64_t x509_cache_hits(void);
