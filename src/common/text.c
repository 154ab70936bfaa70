/* text.c — string helpers (see text.h).
 *
 * The column widths are a short table of Unicode ranges rather than wcwidth(3): wcwidth
 * depends on the process's locale (a till's service may run with LANG unset, in "C", where
 * every non-ASCII character is -1), and product names are UTF-8 whatever the locale. The
 * ranges cover what a shop's catalog holds: Latin, Swahili, accents (precomposed or
 * combining), dashes and quotes, CJK and emoji. */
#include "common/text.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

char *duka_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* The length (1-4) of the valid UTF-8 character at p, its code point in *cp; 0 when p does
 * not start one (a stray continuation byte, an overlong form, a surrogate, a cut sequence). */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t n;
    uint32_t min;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2, min = 0x80, *cp = p[0] & 0x1Fu;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3, min = 0x800, *cp = p[0] & 0x0Fu;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4, min = 0x10000, *cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) /* also stops at the NUL of a cut sequence */
            return 0;
        *cp = (*cp << 6) | (p[i] & 0x3Fu);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return n;
}

typedef struct range {
    uint32_t first, last;
} range;

/* Characters that take no column of their own: combining marks, zero-width spaces and
 * joiners, variation selectors. */
static const range zero_width[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},
    {0x064B, 0x065F}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x1AB0, 0x1AFF},
    {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x2060, 0x2064}, {0x20D0, 0x20FF},
    {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF},
};

/* Characters a terminal shows two columns wide: East Asian Wide and Fullwidth, emoji. */
static const range double_width[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x23E9, 0x23EC},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},
    {0x26F2, 0x26F5},   {0x2705, 0x2705},   {0x270A, 0x270B},   {0x2753, 0x2755},
    {0x2795, 0x2797},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
    {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
    {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F004, 0x1F004},
    {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251}, {0x1F300, 0x1F64F},
    {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F900, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

static bool in_ranges(uint32_t cp, const range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i].first && cp <= r[i].last)
            return true;
    return false;
}

/* One character of s: its bytes (1 for an invalid byte), its columns, and whether it is
 * shown as '?' (invalid or a control character). */
typedef struct glyph {
    size_t bytes;
    int columns;
    bool replaced;
} glyph;

static glyph next_glyph(const unsigned char *p)
{
    uint32_t cp = 0;
    glyph g = {utf8_decode(p, &cp), 1, false};
    if (g.bytes == 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
        g.bytes = g.bytes ? g.bytes : 1;
        g.replaced = true;
    } else if (in_ranges(cp, zero_width, sizeof(zero_width) / sizeof(zero_width[0]))) {
        g.columns = 0;
    } else if (in_ranges(cp, double_width, sizeof(double_width) / sizeof(double_width[0]))) {
        g.columns = 2;
    }
    return g;
}

int duka_text_width(const char *s)
{
    int width = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        glyph g = next_glyph(p);
        width += g.columns;
        p += g.bytes;
    }
    return width;
}

size_t duka_text_fit(char *out, size_t out_size, const char *s, int columns)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026, one column */
    if (out == NULL || out_size == 0)
        return 0;
    if (columns < 0)
        columns = 0;
    int total = duka_text_width(s);
    bool cut = total > columns;
    int budget = cut ? columns - 1 : columns; /* columns for s's own characters */
    size_t used = 0, room = out_size - 1;     /* bytes written; bytes allowed before the NUL */
    int width = 0;
    /* Characters in order while they fit: the first that does not ends the copy, so the
     * combining marks after a kept letter (no columns) are kept with it, and those after a
     * dropped one are dropped with it. */
    for (const unsigned char *p = (const unsigned char *)s; *p && budget > 0;) {
        glyph g = next_glyph(p);
        if (width + g.columns > budget)
            break;
        size_t bytes = g.replaced ? 1 : g.bytes;
        if (used + bytes > room) {
            room = used; /* out of buffer: nothing more, not even padding */
            break;
        }
        if (g.replaced)
            out[used] = '?';
        else
            memcpy(out + used, p, g.bytes);
        used += bytes;
        width += g.columns;
        p += g.bytes;
    }
    if (cut && columns > 0 && used + sizeof(ellipsis) - 1 <= room) {
        memcpy(out + used, ellipsis, sizeof(ellipsis) - 1);
        used += sizeof(ellipsis) - 1;
        width++;
    }
    while (width < columns && used < room) {
        out[used++] = ' ';
        width++;
    }
    out[used] = '\0';
    return used;
}

size_t duka_utf8_sequence(const char *s)
{
    uint32_t cp;
    return utf8_decode((const unsigned char *)s, &cp);
}

char *duka_utf8_sanitize(char *s)
{
    for (char *p = s; *p;) {
        size_t n = duka_utf8_sequence(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
    return s;
}
