/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <openssl/evp.h>

#include "config.h"

/* [Policy], decided here for every method: the bus files only translate
 * what these return (-ESHUTDOWN Disabled, -EPERM PolicyViolation, -EINVAL
 * InvalidArgument). Each failure comes with a message naming the setting. */

/* Enabled=no: no message is signed, encrypted, decrypted or verified. */
int policy_check_enabled(const Config *config, char **ret_message);

/* The digest to sign with: asked (by its bus name, "sha-256" …), or the
 * first of sha-256, sha-384, sha-512 that AllowedDigests= allows when
 * asked is NULL. -EINVAL: not a digest smimed knows; -EPERM: not allowed. */
int policy_sign_digest(const Config *config, const char *asked, const EVP_MD **ret, char **ret_message);

/* The content cipher: asked, or DefaultCipher= when NULL. -EINVAL: unknown. */
int policy_cipher(const Config *config, const char *asked, const EVP_CIPHER **ret, char **ret_message);

/* Whether a signature made with digest nid is weak: MD5 and unknown ones
 * always, SHA-1 unless AllowSHA1Signatures=yes, the rest as AllowedDigests=
 * says. */
bool policy_digest_is_weak(const Config *config, int nid);
