/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libsmimed-internal.h"
#include "macro.h"

/* The message calls from and to memory: the input goes in a sealed memfd,
 * smimed writes the result to a memfd of ours, read back after the reply.
 * No pipe is involved, so however large the result, nothing has to be read
 * while the call is in progress. */

void memory_io_done(MemoryIO *io) {
        /* closep() leaves the number behind: this may run twice on one io. */
        closep(&io->input);
        closep(&io->output);
        *io = (MemoryIO){.input = -1, .output = -1};
}

int memory_io_open(const void *input, size_t size, MemoryIO *io, smimed_error *error) {
        *io = (MemoryIO){.input = -1, .output = -1};

        if (!input)
                return error_set(error, -EINVAL, NULL, "No message given.");
        if (size == 0)
                return error_set(error, -EINVAL, NULL, "The message is empty.");

        io->input = memfd_from_data("smimed-input", input, size);
        if (io->input < 0)
                return error_set(error, io->input, NULL, strerror(-io->input));
        io->output = memfd_create("smimed-output", MFD_CLOEXEC);
        if (io->output < 0)
                return error_set(error, -errno, NULL, strerror(errno));
        return 0;
}

int memory_io_read_output(MemoryIO *io, void **ret, size_t *ret_size, smimed_error *error) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;

        if (!ret && !ret_size)
                return 0;
        if (fstat(io->output, &st) < 0)
                return error_set(error, -errno, NULL, strerror(errno));
        if ((uintmax_t) st.st_size >= SIZE_MAX)
                return error_set(error, -EFBIG, NULL, strerror(EFBIG));
        if (!ret) {
                *ret_size = (size_t) st.st_size;
                return 0;
        }

        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return error_set(error, -ENOMEM, NULL, strerror(ENOMEM));
        while (size < (size_t) st.st_size) {
                ssize_t n = pread(io->output, buf + size, (size_t) st.st_size - size, (off_t) size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(error, -errno, NULL, strerror(errno));
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        buf[size] = '\0';

        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

_public_ int smimed_sign_with_options(smimed *s, const char *sender, const void *input, size_t size,
                                      const smimed_options *o, void **ret_output, size_t *ret_size, smimed_result *ret,
                                      smimed_error *error) {
        _cleanup_(memory_io_done) MemoryIO io = {-1, -1};
        _cleanup_(smimed_result_done) smimed_result res = {};
        int r;

        r = message_check_arguments(s, MESSAGE_SIGN, sender, NULL, o, error);
        if (r >= 0)
                r = memory_io_open(input, size, &io, error);
        if (r >= 0)
                r = smimed_sign_fd_with_options(s, sender, io.input, io.output, o, &res, error);
        if (r >= 0)
                r = memory_io_read_output(&io, ret_output, ret_size, error);
        if (r < 0)
                return r;
        if (ret) {
                *ret = res;
                res = (smimed_result){};
        }
        return 0;
}

_public_ int smimed_encrypt_with_options(smimed *s, const char *const *recipients, const void *input, size_t size,
                                         const smimed_options *o, void **ret_output, size_t *ret_size,
                                         smimed_result *ret, smimed_error *error) {
        _cleanup_(memory_io_done) MemoryIO io = {-1, -1};
        _cleanup_(smimed_result_done) smimed_result res = {};
        int r;

        r = message_check_arguments(s, MESSAGE_ENCRYPT, NULL, recipients, o, error);
        if (r >= 0)
                r = memory_io_open(input, size, &io, error);
        if (r >= 0)
                r = smimed_encrypt_fd_with_options(s, recipients, io.input, io.output, o, &res, error);
        if (r >= 0)
                r = memory_io_read_output(&io, ret_output, ret_size, error);
        if (r < 0)
                return r;
        if (ret) {
                *ret = res;
                res = (smimed_result){};
        }
        return 0;
}

static int open_memory(smimed *s, MessageMethod method, const void *input, size_t size, const smimed_options *o,
                       void **ret_output, size_t *ret_size, smimed_message_status *ret, smimed_error *error) {
        _cleanup_(memory_io_done) MemoryIO io = {-1, -1};
        _cleanup_(smimed_message_status_done) smimed_message_status st = {};
        int r;

        r = message_check_arguments(s, method, NULL, NULL, o, error);
        if (r >= 0)
                r = memory_io_open(input, size, &io, error);
        if (r >= 0)
                r = method == MESSAGE_DECRYPT ? smimed_decrypt_fd_with_options(s, io.input, io.output, o, &st, error)
                                              : smimed_verify_fd_with_options(s, io.input, io.output, o, &st, error);
        if (r >= 0)
                r = memory_io_read_output(&io, ret_output, ret_size, error);
        if (r < 0)
                return r;
        if (ret) {
                *ret = st;
                st = (smimed_message_status){};
        }
        return 0;
}

_public_ int smimed_decrypt_with_options(smimed *s, const void *input, size_t size, const smimed_options *o,
                                         void **ret_output, size_t *ret_size, smimed_message_status *ret,
                                         smimed_error *error) {
        return open_memory(s, MESSAGE_DECRYPT, input, size, o, ret_output, ret_size, ret, error);
}

_public_ int smimed_verify_with_options(smimed *s, const void *input, size_t size, const smimed_options *o,
                                        void **ret_output, size_t *ret_size, smimed_message_status *ret,
                                        smimed_error *error) {
        return open_memory(s, MESSAGE_VERIFY, input, size, o, ret_output, ret_size, ret, error);
}

/* ---- the legacy option structs ---- */

_public_ int smimed_sign(smimed *s, const char *sender, const void *input, size_t size,
                         const smimed_sign_options *legacy, void **ret_output, size_t *ret_size, smimed_result *ret,
                         smimed_error *error) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r;

        r = options_from_sign(legacy, &o);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        return smimed_sign_with_options(s, sender, input, size, o, ret_output, ret_size, ret, error);
}

_public_ int smimed_encrypt(smimed *s, const char *const *recipients, const void *input, size_t size,
                            const smimed_encrypt_options *legacy, void **ret_output, size_t *ret_size,
                            smimed_result *ret, smimed_error *error) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r;

        r = options_from_encrypt(legacy, &o);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        return smimed_encrypt_with_options(s, recipients, input, size, o, ret_output, ret_size, ret, error);
}

_public_ int smimed_decrypt(smimed *s, const void *input, size_t size, bool verify, void **ret_output,
                            size_t *ret_size, smimed_message_status *ret, smimed_error *error) {
        _cleanup_(smimed_options_freep) smimed_options *o = NULL;
        int r;

        r = options_from_verify(verify, &o);
        if (r < 0)
                return error_set(error, r, NULL, strerror(-r));
        return smimed_decrypt_with_options(s, input, size, o, ret_output, ret_size, ret, error);
}

_public_ int smimed_verify(smimed *s, const void *input, size_t size, void **ret_output, size_t *ret_size,
                           smimed_message_status *ret, smimed_error *error) {
        return smimed_verify_with_options(s, input, size, NULL, ret_output, ret_size, ret, error);
}

_public_ int smimed_open(smimed *s, const void *input, size_t size, void **ret_output, size_t *ret_size,
                         smimed_message_status *ret, smimed_error *error) {
        return smimed_decrypt_with_options(s, input, size, NULL, ret_output, ret_size, ret, error);
}
