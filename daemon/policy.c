/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include <openssl/objects.h>

#include "macro.h"
#include "message.h"
#include "policy.h"
#include "smime-out.h"

int policy_check_enabled(const Config *config, char **ret_message) {
        if (config->policy_enabled)
                return 0;
        return message_fail(ret_message, -ESHUTDOWN, "S/MIME is turned off by policy ([Policy] Enabled=no).");
}

int policy_sign_digest(const Config *config, const char *asked, const EVP_MD **ret, char **ret_message) {
        static const char *const usual[] = {"sha-256", "sha-384", "sha-512"};
        const EVP_MD *md;

        if (!asked) {
                for (size_t i = 0; !asked && i < ELEMENTSOF(usual); i++)
                        if (config_digest_allowed(config, usual[i]))
                                asked = usual[i];
                if (!asked)
                        return message_fail(ret_message, -EPERM,
                                            "No digest smimed signs with is allowed by [Policy] AllowedDigests=.");
        }
        md = smime_digest_from_name(asked);
        if (!md)
                return message_fail(ret_message, -EINVAL,
                                    "Unknown digest \"%s\" (expected sha-256, sha-384 or sha-512).", asked);
        if (!config_digest_allowed(config, asked))
                return message_fail(ret_message, -EPERM,
                                    "The digest %s is not allowed by policy ([Policy] AllowedDigests=%s).", asked,
                                    config->allowed_digests);
        *ret = md;
        return 0;
}

int policy_cipher(const Config *config, const char *asked, const EVP_CIPHER **ret, char **ret_message) {
        const EVP_CIPHER *cipher = smime_cipher_from_name(asked ?: config->default_cipher);

        if (!cipher)
                return message_fail(ret_message, -EINVAL,
                                    "Unknown cipher \"%s\" (expected aes-256-cbc, aes-128-cbc, aes-256-gcm or "
                                    "aes-128-gcm).",
                                    asked);
        *ret = cipher;
        return 0;
}

bool policy_digest_is_weak(const Config *config, int nid) {
        const char *name = smime_digest_name(nid);

        if (nid == NID_sha1)
                return !config->allow_sha1_signatures;
        return !name || !config_digest_allowed(config, name);
}
