/*
 * text.h — small string helpers shared by the parsers of outside input (CSV, config files).
 */
#ifndef DUKA_TEXT_H
#define DUKA_TEXT_H

#include <stddef.h>

/* Strips leading and trailing white space in place; returns the first non-space character. */
char *duka_trim(char *s);

/* Length of the UTF-8 sequence s starts with (1-4), or 0 when it is not well formed: a stray
 * continuation byte, a sequence cut short, an overlong form, a surrogate, past U+10FFFF. */
size_t duka_utf8_sequence(const char *s);

/* Replaces, in place, every byte that does not start a well-formed UTF-8 sequence with '?',
 * so the text can go into JSON (jansson refuses invalid UTF-8). Returns s. */
char *duka_utf8_sanitize(char *s);

#endif
