/*
 * text.h — small string helpers shared by the parsers of outside input (CSV, config files)
 * and by the text output of the CLI.
 */
#ifndef DUKA_TEXT_H
#define DUKA_TEXT_H

#include <stddef.h>

/* Strips leading and trailing white space in place; returns the first non-space character. */
char *duka_trim(char *s);

/* Display columns of the UTF-8 text s, as a terminal shows it: one per character, two for a
 * wide one (CJK, Hangul, fullwidth forms, most emoji), none for a combining mark, zero-width
 * joiner or variation selector. A byte that does not start a valid character (invalid or cut
 * UTF-8) and a control character count one column each: duka_text_fit shows them as '?'. */
int duka_text_width(const char *s);

/* Writes s into out, fitted to exactly `columns` display columns: padded with spaces when it
 * is narrower; when it is wider, cut after the last character that fits with "…" in the last
 * column (and a space when a wide character would have straddled the edge). It never cuts
 * inside a character and keeps combining marks with the character before them. Invalid bytes
 * and control characters become '?'. out (out_size bytes) is always NUL-terminated when
 * out_size > 0; 4 * columns + 1 bytes always suffice unless s stacks several combining marks
 * on one letter, and a smaller buffer ends early at a character boundary. Returns the bytes
 * written, without the NUL. */
size_t duka_text_fit(char *out, size_t out_size, const char *s, int columns);
/* Length of the UTF-8 sequence s starts with (1-4), or 0 when it is not well formed: a stray
 * continuation byte, a sequence cut short, an overlong form, a surrogate, past U+10FFFF. */
size_t duka_utf8_sequence(const char *s);

/* Replaces, in place, every byte that does not start a well-formed UTF-8 sequence with '?',
 * so the text can go into JSON (jansson refuses invalid UTF-8). Returns s. */
char *duka_utf8_sanitize(char *s);

#endif
