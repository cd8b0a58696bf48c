/*
 * glob: Redis' glob-style pattern matching (KEYS, SCAN MATCH).
 *
 * '*' any run of bytes, '?' any one byte, '[abc]' '[^abc]' '[a-z]' a class,
 * '\x' the byte x literally.  Binary safe: both the pattern and the string
 * are (pointer, length) and may contain NUL.  Returns 1 on a match, 0
 * otherwise.  Matching is bounded: pathological patterns such as "*a*a*a*b"
 * finish in polynomial time.
 */
#ifndef DQ_GLOB_H
#define DQ_GLOB_H

#include <stddef.h>

int	glob_match(const char *pat, size_t patlen, const char *str, size_t len,
	    int nocase);
/* The pattern has a special byte ('*', '?', '[', '\\'): it is no plain
   name. */
int	glob_special(const char *pat, size_t patlen);

#endif
