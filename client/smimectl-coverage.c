/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdio.h>

#include "format-util.h"
#include "json-writer.h"
#include "macro.h"
#include "smimectl.h"
#include "terminal-util.h"

/* directory_fetched: 0 when the certificate did not come from the [Directory]. */
static void json_capability(JsonWriter *w, const smimed_capability *c, uint64_t directory_fetched) {
        json_begin_object(w);
        json_key_string(w, "address", c->address);
        json_key_bool(w, "possible", c->possible);
        json_key_string(w, "reason", c->reason);
        json_key_string(w, "message", c->message);
        if (c->fingerprint)
                json_key_string(w, "fingerprint", c->fingerprint);
        if (c->subject)
                json_key_string(w, "subject", c->subject);
        if (c->issuer)
                json_key_string(w, "issuer", c->issuer);
        if (c->summary)
                json_key_string(w, "summary", c->summary);
        if (c->fingerprint || c->not_after > 0) {
                char buf[FORMAT_TIME_MAX];

                json_key_string(w, "not_after", format_iso8601(buf, c->not_after));
        }
        if (c->fingerprint)
                json_key_bool(w, "from_directory", directory_fetched > 0);
        if (directory_fetched > 0) {
                char buf[FORMAT_TIME_MAX];

                json_key_string(w, "directory_fetched", format_iso8601(buf, directory_fetched));
        }
        json_end_object(w);
}

static uint64_t directory_fetched(const smimed_capabilities *caps, size_t i) {
        uint64_t fetched = 0;

        if (smimed_capabilities_from_directory(caps, i, &fetched) <= 0)
                return 0;
        return MAX(fetched, (uint64_t) 1);
}

static void json_capabilities(const smimed_capabilities *caps) {
        _cleanup_(json_writer_done) JsonWriter w = {.f = stdout, .pretty = arg_json_pretty};

        json_begin_object(&w);
        json_key(&w, "sign");
        if (caps->have_sign)
                json_capability(&w, &caps->sign, 0);
        else
                json_null(&w);
        json_key(&w, "encrypt");
        json_begin_array(&w);
        for (size_t i = 0; i < caps->n_encrypt; i++)
                json_capability(&w, &caps->encrypt[i], directory_fetched(caps, i));
        json_end_array(&w);
        json_end_object(&w);
}

/* "✅ sign     ADDR  SUMMARY" or "❌ encrypt  ADDR  REASON: MESSAGE"
 * ("yes"/"no " without emoji), the addresses padded to address_width;
 * a certificate from the [Directory] says so and since when. */
static void print_capability(const char *what, const smimed_capability *c, size_t address_width,
                             uint64_t directory_fetched) {
        const char *mark = glyph(stdout, c->possible ? GLYPH_YES : GLYPH_NO);

        fputs(color_on(stdout, c->possible ? COLOR_GOOD : COLOR_BAD), stdout);
        print_padded(stdout, mark, MAX(text_width(glyph(stdout, GLYPH_YES)), text_width(glyph(stdout, GLYPH_NO))));
        fputs(color_off(stdout), stdout);
        printf(" %-7s  ", what);
        print_padded(stdout, c->address, address_width);
        fputs("  ", stdout);
        if (c->possible && c->summary)
                print_text(stdout, c->summary);
        else {
                if (!c->possible && c->reason && c->reason[0]) {
                        print_text(stdout, c->reason);
                        fputs(": ", stdout);
                }
                print_text(stdout, c->message);
        }
        if (directory_fetched > 0) {
                char buf[FORMAT_TIME_MAX];

                printf(" (from the directory, fetched %s)", format_datetime(buf, directory_fetched));
        }
        putchar('\n');
}

int verb_coverage(smimed *s, int argc, char *argv[]) {
        _cleanup_(smimed_capabilities_done) smimed_capabilities caps = {};
        _cleanup_(smimed_error_done) smimed_error error = {};
        bool all = true;
        int r;

        (void) argc, (void) argv;

        r = smimed_get_capabilities(s, arg_from, (const char *const *) arg_to, &caps, &error);
        if (r < 0)
                return report_error(r, &error, "Cannot ask what is possible");

        if (arg_from && !(caps.have_sign && caps.sign.possible))
                all = false;
        for (size_t i = 0; i < caps.n_encrypt; i++)
                if (!caps.encrypt[i].possible)
                        all = false;

        if (arg_json)
                json_capabilities(&caps);
        else {
                size_t width = caps.have_sign ? text_width(caps.sign.address) : 0;

                for (size_t i = 0; i < caps.n_encrypt; i++)
                        width = MAX(width, text_width(caps.encrypt[i].address));
                if (caps.have_sign)
                        print_capability("sign", &caps.sign, width, 0);
                for (size_t i = 0; i < caps.n_encrypt; i++)
                        print_capability("encrypt", &caps.encrypt[i], width, directory_fetched(&caps, i));
        }
        /* An answer that is no differs from a failure to answer (1). */
        return all ? 0 : EXIT_NOT_POSSIBLE;
}
