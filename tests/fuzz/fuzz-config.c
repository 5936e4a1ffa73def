/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimed.conf as the daemon parses it at start and on Reload(). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ConfigError error = {};
        Config *config = NULL;
        char *text = malloc(size + 1);

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        if (config_parse(text, "fuzz.conf", &config, &error) < 0)
                free(config_error_to_string(&error));
        config_free(config);
        config_error_done(&error);
        free(text);
        return 0;
}
