/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of when smimed may spend a PIN try: the token's user PIN
 * flags in every combination, and the memory of refused PINs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "token-pin.h"

/* The flags a token sets in CK_TOKEN_INFO that are about PINs, and some that
 * are not, which must not change the answer. */
static const CK_FLAGS user_pin_flags[] = {
        CKF_USER_PIN_COUNT_LOW,
        CKF_USER_PIN_FINAL_TRY,
        CKF_USER_PIN_LOCKED,
        CKF_USER_PIN_TO_BE_CHANGED,
};
static const CK_FLAGS other_flags[] = {
        0,
        CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_RNG,
        CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY | CKF_SO_PIN_LOCKED | CKF_SO_PIN_TO_BE_CHANGED,
        CKF_PROTECTED_AUTHENTICATION_PATH | CKF_WRITE_PROTECTED,
};

static void test_table(void **state) {
        (void) state;
        assert_int_equal(token_pin_attempt_allowed(0, false), PIN_ATTEMPT_ALLOWED);
        assert_int_equal(token_pin_attempt_allowed(CKF_USER_PIN_COUNT_LOW, false), PIN_ATTEMPT_ALLOWED);
        assert_int_equal(token_pin_attempt_allowed(CKF_USER_PIN_TO_BE_CHANGED, false), PIN_ATTEMPT_ALLOWED);
        assert_int_equal(token_pin_attempt_allowed(CKF_USER_PIN_FINAL_TRY, false), PIN_ATTEMPT_FINAL_TRY);
        assert_int_equal(token_pin_attempt_allowed(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY, false),
                         PIN_ATTEMPT_FINAL_TRY);
        assert_int_equal(token_pin_attempt_allowed(CKF_USER_PIN_LOCKED, false), PIN_ATTEMPT_LOCKED);
        assert_int_equal(token_pin_attempt_allowed(CKF_USER_PIN_LOCKED, true), PIN_ATTEMPT_LOCKED);
        assert_int_equal(token_pin_attempt_allowed(0, true), PIN_ATTEMPT_REFUSED_BEFORE);
        assert_int_equal(token_pin_attempt_allowed(CKF_USER_PIN_FINAL_TRY, true), PIN_ATTEMPT_REFUSED_BEFORE);
        /* The security officer's PIN is not smimed's business. */
        assert_int_equal(token_pin_attempt_allowed(CKF_SO_PIN_LOCKED | CKF_SO_PIN_FINAL_TRY, false),
                         PIN_ATTEMPT_ALLOWED);
}

/* Every subset of the user PIN flags, with each set of other flags, with and
 * without a refused PIN: a try is spent only when nothing speaks against it,
 * and a locked token is reported as locked whatever else holds. */
static void test_every_combination(void **state) {
        unsigned n = 0;

        (void) state;
        for (unsigned subset = 0; subset < (1U << ELEMENTSOF(user_pin_flags)); subset++)
                for (size_t o = 0; o < ELEMENTSOF(other_flags); o++)
                        for (int refused = 0; refused <= 1; refused++) {
                                CK_FLAGS flags = other_flags[o];
                                PinAttempt want, got;

                                for (size_t b = 0; b < ELEMENTSOF(user_pin_flags); b++)
                                        if (subset & (1U << b))
                                                flags |= user_pin_flags[b];

                                if (flags & CKF_USER_PIN_LOCKED)
                                        want = PIN_ATTEMPT_LOCKED;
                                else if (refused)
                                        want = PIN_ATTEMPT_REFUSED_BEFORE;
                                else if (flags & CKF_USER_PIN_FINAL_TRY)
                                        want = PIN_ATTEMPT_FINAL_TRY;
                                else
                                        want = PIN_ATTEMPT_ALLOWED;

                                got = token_pin_attempt_allowed(flags, refused);
                                if (got != want)
                                        fail_msg("flags 0x%lx, refused %d: got %d, want %d", (unsigned long) flags,
                                                 refused, (int) got, (int) want);
                                n++;
                        }
        assert_int_equal(n, 16 * ELEMENTSOF(other_flags) * 2);
}

static void test_refused_pins(void **state) {
        RefusedPins pins = {};

        (void) state;
        assert_false(refused_pins_contain(&pins, "1234"));
        assert_false(refused_pins_contain(&pins, ""));

        assert_int_equal(refused_pins_add(&pins, "1234"), 0);
        assert_true(refused_pins_contain(&pins, "1234"));
        assert_false(refused_pins_contain(&pins, "12345"));
        assert_false(refused_pins_contain(&pins, "123"));
        assert_false(refused_pins_contain(&pins, "1234\n"));
        assert_false(refused_pins_contain(&pins, ""));

        /* The same PIN twice takes one place. */
        assert_int_equal(refused_pins_add(&pins, "1234"), 0);
        assert_int_equal(pins.n, 1);

        /* Nothing of the PIN itself is kept. */
        assert_null(memmem(&pins, sizeof(pins), "1234", 4));
}

static void test_refused_pins_salted(void **state) {
        RefusedPins a = {}, b = {};

        (void) state;
        assert_int_equal(refused_pins_add(&a, "same-pin"), 0);
        assert_int_equal(refused_pins_add(&b, "same-pin"), 0);
        /* A fresh salt each time: equal PINs do not give equal digests. */
        assert_memory_not_equal(a.entries[0].digest, b.entries[0].digest, sizeof(a.entries[0].digest));
        assert_true(refused_pins_contain(&a, "same-pin"));
        assert_true(refused_pins_contain(&b, "same-pin"));
}

static void test_refused_pins_forget_the_oldest(void **state) {
        RefusedPins pins = {};
        char pin[32];

        (void) state;
        for (unsigned i = 0; i < REFUSED_PINS_MAX + 1; i++) {
                snprintf(pin, sizeof(pin), "pin-%u", i);
                assert_int_equal(refused_pins_add(&pins, pin), 0);
        }
        assert_int_equal(pins.n, REFUSED_PINS_MAX);
        assert_false(refused_pins_contain(&pins, "pin-0"));
        for (unsigned i = 1; i < REFUSED_PINS_MAX + 1; i++) {
                snprintf(pin, sizeof(pin), "pin-%u", i);
                assert_true(refused_pins_contain(&pins, pin));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_every_combination),
                cmocka_unit_test(test_refused_pins),
                cmocka_unit_test(test_refused_pins_salted),
                cmocka_unit_test(test_refused_pins_forget_the_oldest),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
