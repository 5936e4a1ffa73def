/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <p11-kit/pkcs11.h>

/* Whether smimed may spend one of the token's PIN tries. A token counts
 * wrong PINs and locks itself after a few; smimed must never be what locks
 * it. No PKCS#11 calls here. */

typedef enum PinAttempt {
        PIN_ATTEMPT_ALLOWED,
        PIN_ATTEMPT_LOCKED,          /* CKF_USER_PIN_LOCKED: no try is left */
        PIN_ATTEMPT_REFUSED_BEFORE,  /* the token refused this very PIN already */
        PIN_ATTEMPT_FINAL_TRY,       /* CKF_USER_PIN_FINAL_TRY: the last try is for a person */
} PinAttempt;

/* flags: CK_TOKEN_INFO.flags. Only the user PIN flags matter. */
PinAttempt token_pin_attempt_allowed(CK_FLAGS flags, bool refused_before);

/* PINs the token refused, remembered as salted SHA-256 digests, in memory
 * only, so that the same wrong PIN is not tried again (a Reload with an
 * unchanged PIN file included). The oldest is forgotten past
 * REFUSED_PINS_MAX. */
#define REFUSED_PINS_MAX 16U

typedef struct RefusedPins {
        struct {
                unsigned char salt[16];
                unsigned char digest[32];
        } entries[REFUSED_PINS_MAX];
        unsigned n;        /* entries in use */
        unsigned next;     /* where the next one goes */
} RefusedPins;

int refused_pins_add(RefusedPins *pins, const char *pin);
bool refused_pins_contain(const RefusedPins *pins, const char *pin);
