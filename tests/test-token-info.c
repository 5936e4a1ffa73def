/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* token_get_info(): CKR_GENERAL_ERROR, as SoftHSM2 answers now and then
 * when several processes open one token at once, is asked again; other
 * errors are not; a module that keeps failing is given up on. The module
 * here is a function table with only C_GetTokenInfo, counting its calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "token-info.h"

static unsigned calls, failures;
static CK_RV failure;

static CK_RV fake_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO *info) {
        calls++;
        if (calls <= failures)
                return failure;
        memset(info, 0, sizeof(*info));
        memcpy(info->label, "fake", 4);
        info->flags = (CK_FLAGS) slot;
        return CKR_OK;
}

static CK_RV ask(CK_RV fail_with, unsigned n_failures, CK_TOKEN_INFO *info) {
        CK_FUNCTION_LIST module = {.C_GetTokenInfo = fake_get_token_info};

        calls = 0;
        failures = n_failures;
        failure = fail_with;
        return token_get_info(&module, 7, info);
}

static void test_general_error_is_asked_again(void **state) {
        CK_TOKEN_INFO info;

        (void) state;
        assert_int_equal(ask(CKR_GENERAL_ERROR, 0, &info), CKR_OK);
        assert_int_equal(calls, 1);
        assert_int_equal(ask(CKR_GENERAL_ERROR, TOKEN_INFO_TRIES - 1, &info), CKR_OK);
        assert_int_equal(calls, TOKEN_INFO_TRIES);
        assert_int_equal(info.flags, 7);
        assert_memory_equal(info.label, "fake", 4);
}

static void test_gives_up(void **state) {
        CK_TOKEN_INFO info;

        (void) state;
        assert_int_equal(ask(CKR_GENERAL_ERROR, 1000, &info), CKR_GENERAL_ERROR);
        assert_int_equal(calls, TOKEN_INFO_TRIES);
}

static void test_other_errors_are_answers(void **state) {
        CK_TOKEN_INFO info;

        (void) state;
        assert_int_equal(ask(CKR_TOKEN_NOT_PRESENT, 1, &info), CKR_TOKEN_NOT_PRESENT);
        assert_int_equal(calls, 1);
        assert_int_equal(ask(CKR_DEVICE_REMOVED, 1, &info), CKR_DEVICE_REMOVED);
        assert_int_equal(calls, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_general_error_is_asked_again),
                cmocka_unit_test(test_gives_up),
                cmocka_unit_test(test_other_errors_are_answers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
