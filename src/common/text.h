/*
 * text.h — small string helpers shared by the parsers of outside input (CSV, config files).
 */
#ifndef DUKA_TEXT_H
#define DUKA_TEXT_H

/* Strips leading and trailing white space in place; returns the first non-space character. */
char *duka_trim(char *s);

#endif
