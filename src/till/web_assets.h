/*
 * web_assets.h — the till's web UI, compiled into the binary.
 *
 * The files of src/till/web (HTML, CSS, JavaScript, icons) become byte arrays at build time
 * (cmake/embed_web.cmake), each with its content type and an ETag, so that a till serves its
 * whole UI with no network, no file beside the binary and nothing to install at the shop.
 */
#ifndef DUKA_WEB_ASSETS_H
#define DUKA_WEB_ASSETS_H

#include <stddef.h>

typedef struct duka_web_asset {
    const char *path;         /* "/index.html" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, as in the header */
} duka_web_asset;

extern const duka_web_asset duka_web_assets[];
extern const size_t duka_web_asset_count;

/* The asset served at path ("/" is "/index.html"), or NULL. */
const duka_web_asset *duka_web_asset_find(const char *path);

/* The bytes of every asset together (the page weight a first load costs at most). */
size_t duka_web_assets_total_bytes(void);

#endif
