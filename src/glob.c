/*
 * Glob matching with Redis' stringmatchlen() rules, done iteratively.
 *
 * Every token other than '*' (a literal, '\x', '?', a class) matches exactly
 * one byte.  With that, a star only ever has to be retried from the most
 * recent star: if a later star fails to find a match, moving an earlier
 * star cannot help, since the later star can absorb anything the earlier
 * one would.  So remembering one backtrack point is enough, and the match
 * costs at most O(patlen * len) steps, however many stars the pattern has.
 *
 * Deliberate differences from Redis, all at its edges:
 *  - a pattern of only stars matches the empty string (Redis' function
 *    says no, and its callers special-case "*" to hide that);
 *  - bytes compare as unsigned, so ranges over bytes >= 0x80 behave;
 *  - with nocase, an escaped byte inside a class ignores case too.
 */
#include <stddef.h>

#include "glob.h"

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
same(int a, int b, int nocase)
{
	return nocase ? lower(a) == lower(b) : a == b;
}

/*
 * Matches byte c against the class whose '[' is at pat[i].  Returns 1 or 0
 * and stores in *next the index just past the class.  As in Redis, a class
 * missing its ']' runs to the end of the pattern, "[a-]" is the range
 * 'a' to ']', and a reversed range "[z-a]" is taken as "[a-z]".
 */
static int
match_class(const unsigned char *pat, size_t plen, size_t i, int c,
    int nocase, size_t *next)
{
	int	neg = 0, match = 0, lo, hi, t;

	i++;
	if (i < plen && pat[i] == '^') {
		neg = 1;
		i++;
	}
	for (; i < plen && pat[i] != ']'; i++) {
		if (pat[i] == '\\' && plen - i >= 2) {
			i++;
			if (same(pat[i], c, nocase))
				match = 1;
		} else if (plen - i >= 3 && pat[i + 1] == '-') {
			lo = pat[i];
			hi = pat[i + 2];
			if (lo > hi) {
				t = lo;
				lo = hi;
				hi = t;
			}
			t = c;
			if (nocase) {
				lo = lower(lo);
				hi = lower(hi);
				t = lower(c);
			}
			if (t >= lo && t <= hi)
				match = 1;
			i += 2;
		} else if (same(pat[i], c, nocase))
			match = 1;
	}
	*next = i < plen ? i + 1 : plen;
	return neg ? !match : match;
}

/* Matches one non-star token at pat[i] against byte c. */
static int
match_token(const unsigned char *pat, size_t plen, size_t i, int c,
    int nocase, size_t *next)
{
	switch (pat[i]) {
	case '?':
		*next = i + 1;
		return 1;
	case '[':
		return match_class(pat, plen, i, c, nocase, next);
	case '\\':
		/* A trailing backslash is a literal backslash. */
		if (plen - i >= 2)
			i++;
		/* FALLTHROUGH */
	default:
		*next = i + 1;
		return same(pat[i], c, nocase);
	}
}

int
glob_match(const char *pattern, size_t patlen, const char *string, size_t len,
    int nocase)
{
	const unsigned char	*pat = (const unsigned char *)pattern;
	const unsigned char	*str = (const unsigned char *)string;
	size_t			 pi = 0, si = 0, next;
	size_t			 star_pi = 0, star_si = 0;
	int			 have_star = 0;

	while (si < len) {
		if (pi < patlen && pat[pi] == '*') {
			while (pi < patlen && pat[pi] == '*')
				pi++;
			if (pi == patlen)
				return 1;
			have_star = 1;
			star_pi = pi;
			star_si = si;
			continue;
		}
		if (pi < patlen &&
		    match_token(pat, patlen, pi, str[si], nocase, &next)) {
			pi = next;
			si++;
			continue;
		}
		if (!have_star)
			return 0;
		/* Let the last star swallow one more byte and retry. */
		pi = star_pi;
		si = ++star_si;
	}
	while (pi < patlen && pat[pi] == '*')
		pi++;
	return pi == patlen;
}

int
glob_special(const char *pat, size_t patlen)
{
	size_t	i;

	for (i = 0; i < patlen; i++)
		switch (pat[i]) {
		case '*':
		case '?':
		case '[':
		case '\\':
			return 1;
		}
	return 0;
}
