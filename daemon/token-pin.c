/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "token-pin.h"

PinAttempt token_pin_attempt_allowed(CK_FLAGS flags, bool refused_before) {
        if (flags & CKF_USER_PIN_LOCKED)
                return PIN_ATTEMPT_LOCKED;
        /* Known to be wrong: trying it again only spends a try. */
        if (refused_before)
                return PIN_ATTEMPT_REFUSED_BEFORE;
        /* A daemon that spends the last try locks the token for good when the
         * PIN is wrong; a person checking it by hand can tell and stop. */
        if (flags & CKF_USER_PIN_FINAL_TRY)
                return PIN_ATTEMPT_FINAL_TRY;
        return PIN_ATTEMPT_ALLOWED;
}

static int pin_digest(const unsigned char salt[static 16], const char *pin, unsigned char ret[static 32]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned size = 0;
        int ok;

        ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, salt, 16) &&
             EVP_DigestUpdate(ctx, pin, strlen(pin)) && EVP_DigestFinal_ex(ctx, ret, &size) && size == 32;
        EVP_MD_CTX_free(ctx);
        return ok ? 0 : -EIO;
}

int refused_pins_add(RefusedPins *pins, const char *pin) {
        unsigned i = pins->next;

        if (refused_pins_contain(pins, pin))
                return 0;
        if (RAND_bytes(pins->entries[i].salt, sizeof(pins->entries[i].salt)) != 1 ||
            pin_digest(pins->entries[i].salt, pin, pins->entries[i].digest) < 0)
                return -EIO;
        pins->next = (i + 1) % REFUSED_PINS_MAX;
        if (pins->n < REFUSED_PINS_MAX)
                pins->n++;
        return 0;
}

bool refused_pins_contain(const RefusedPins *pins, const char *pin) {
        for (unsigned i = 0; i < pins->n; i++) {
                unsigned char digest[32];

                if (pin_digest(pins->entries[i].salt, pin, digest) < 0)
                        continue;
                if (CRYPTO_memcmp(digest, pins->entries[i].digest, sizeof(digest)) == 0)
                        return true;
        }
        return false;
}
