/* web_assets.c — looking up the embedded web UI (see web_assets.h). */
#include "till/web_assets.h"

#include <string.h>

const duka_web_asset *duka_web_asset_find(const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < duka_web_asset_count; i++)
        if (strcmp(duka_web_assets[i].path, path) == 0)
            return &duka_web_assets[i];
    return NULL;
}

size_t duka_web_assets_total_bytes(void)
{
    size_t n = 0;
    for (size_t i = 0; i < duka_web_asset_count; i++)
        n += duka_web_assets[i].len;
    return n;
}
