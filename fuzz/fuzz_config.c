/*
 * fuzz_config.c — the till's config file reader under a fuzzer.
 *
 * Each input is written to one temporary file (made once per process with mkstemp and
 * rewritten for every input), then loaded with duka_config_load(). The environment is
 * cleared of every setting name and DUKA_CONFIG first, so only the file decides.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[256];
static int fd = -1;

static void remove_file(void)
{
    if (fd >= 0) {
        close(fd);
        unlink(path);
        fd = -1;
    }
}

static void setup(void)
{
    unsetenv("DUKA_CONFIG");
    for (int i = 0; i < DUKA_SETTING_COUNT; i++)
        unsetenv(duka_setting_name((duka_setting_id)i));
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/duka-fuzz-config-XXXXXX", dir && dir[0] ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0)
        abort();
    atexit(remove_file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0)
        setup();
    if (ftruncate(fd, 0) != 0)
        abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    duka_config cfg;
    duka_err err = {0};
    if (duka_config_load(&cfg, NULL, path, &err) == DUKA_OK) {
        for (int i = 0; i < DUKA_SETTING_COUNT; i++)
            if (cfg.source[i] != DUKA_SOURCE_DEFAULT && cfg.source[i] != DUKA_SOURCE_FILE)
                abort(); /* only the file may have set anything */
    } else if (err.rc == DUKA_OK) {
        abort();
    }
    return 0;
}
