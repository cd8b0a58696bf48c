#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "glob.h"

static int
m(const char *pat, const char *str)
{
	return glob_match(pat, strlen(pat), str, strlen(str), 0);
}

static int
mi(const char *pat, const char *str)
{
	return glob_match(pat, strlen(pat), str, strlen(str), 1);
}

#define YES(p, s)	cr_assert_eq(m(p, s), 1, "\"%s\" should match \"%s\"", p, s)
#define NO(p, s)	cr_assert_eq(m(p, s), 0, "\"%s\" should not match \"%s\"", p, s)

Test(glob, literals_and_wildcards)
{
	YES("foo", "foo");
	NO("foo", "fo");
	NO("foo", "fooo");
	NO("foo", "Foo");
	YES("", "");
	NO("", "a");
	NO("a", "");
	YES("*", "anything");
	YES("*", "");
	YES("**", "");
	YES("foo*", "foo");
	YES("foo*", "foo_a");
	NO("foo*", "fo");
	NO("foo*", "key_x");
	YES("*foo", "barfoo");
	NO("*foo", "foobar");
	YES("*ll*", "hello");
	YES("h*llo", "hllo");
	YES("h*llo", "heeeello");
	NO("h*llo", "hello!");
	YES("h?llo", "hello");
	YES("h?llo", "hallo");
	NO("h?llo", "hllo");
	NO("h?llo", "heello");
	YES("???", "abc");
	NO("???", "ab");
	YES("user:*:group", "user:1000:group");
	NO("user:*:group", "user:1000:grou");
	YES("a*b*c", "a-b-c");
	YES("a*b*c", "abc");
	YES("a*b*c", "abbbbc");
	NO("a*b*c", "acb");
	YES("*a*", "bab");
	YES("*?", "x");
	NO("*?", "");
	YES("a**b", "ab");
	YES("a**b", "axxb");
	YES("*.txt", "a.b.txt");
	NO("*.txt", "a.txt.bak");
}

Test(glob, classes)
{
	YES("h[ae]llo", "hello");
	YES("h[ae]llo", "hallo");
	NO("h[ae]llo", "hillo");
	YES("h[^e]llo", "hallo");
	NO("h[^e]llo", "hello");
	YES("h[a-b]llo", "hbllo");
	NO("h[a-b]llo", "hcllo");
	YES("[a-z]", "m");
	NO("[a-z]", "M");
	YES("[z-a]", "m");		/* reversed range */
	YES("[0-9][0-9]", "42");
	NO("[0-9][0-9]", "4x");
	YES("[^0-9]", "x");
	NO("[^0-9]", "5");
	/*
	 * As in Redis, "c-]" is a range that eats the ']', so the class
	 * "[abc-]x" runs on to the end of the pattern and holds 'x'.
	 */
	YES("[abc-]x", "b");
	YES("[abc-]x", "x");
	NO("[abc-]x", "bx");
	/* "[a-c-e]" is the range a-c, then '-' and 'e' as literals. */
	YES("[a-c-e]", "e");
	YES("[a-c-e]", "-");
	NO("[a-c-e]", "d");
	/* "[]]" is an empty class followed by a literal ']'. */
	NO("[]]", "]");
	NO("[]]", "]]");
	/* "[]" is an empty class and matches nothing. */
	NO("[]", "a");
	NO("[]", "]");
	/* "[^]" negates the empty class: any one byte. */
	YES("[^]", "a");
	NO("[^]", "ab");
	/* Escapes inside a class. */
	YES("[\\]]", "]");
	YES("[\\-]", "-");
	NO("[\\-]", "a");
	YES("[a\\]b]", "b");
	/* "[a-]" is the range 'a' to ']', as in Redis. */
	YES("[a-]", "a");
	YES("[a-]", "_");
	NO("[a-]", "b");
	NO("[a-]", "\\");
	/* A class missing its ']' runs to the end of the pattern. */
	YES("[abc", "b");
	NO("[abc", "d");
	YES("x[abc", "xc");
	NO("[", "a");
	NO("[", "");
	YES("[^", "q");
	NO("[a]", "");
}

Test(glob, escapes)
{
	YES("\\*", "*");
	NO("\\*", "a");
	YES("\\?", "?");
	NO("\\?", "x");
	YES("\\[a]", "[a]");
	NO("\\[a]", "a");
	YES("a\\\\b", "a\\b");
	YES("\\a", "a");
	/* A trailing backslash matches itself. */
	YES("a\\", "a\\");
	NO("a\\", "a");
	YES("*\\*", "abc*");
	NO("*\\*", "abc");
	YES("foo\\*bar", "foo*bar");
	NO("foo\\*bar", "fooXbar");
}

Test(glob, nocase)
{
	cr_assert_eq(mi("HELLO", "hello"), 1);
	cr_assert_eq(m("HELLO", "hello"), 0);
	cr_assert_eq(mi("H[A-Z]LLO", "hello"), 1);
	cr_assert_eq(m("H[A-Z]LLO", "hello"), 0);
	cr_assert_eq(mi("[a-z]", "Q"), 1);
	cr_assert_eq(mi("[^a-z]", "Q"), 0);
	cr_assert_eq(mi("h[E]llo", "hello"), 1);
	cr_assert_eq(mi("max*", "MAXCLIENTS"), 1);
	cr_assert_eq(mi("\\A", "a"), 1);
	cr_assert_eq(mi("[\\A]", "a"), 1);
	/* Only ASCII letters fold. */
	cr_assert_eq(mi("\xc9", "\xe9"), 0);
	cr_assert_eq(mi("@", "`"), 0);
}

Test(glob, binary_with_nul)
{
	const char	pat[] = "a\0*\0z";
	const char	yes[] = "a\0xyz\0z";
	const char	no[] = "a\0xyz\0y";
	const char	cls[] = "[\0-\x01]";

	cr_assert_eq(glob_match(pat, sizeof(pat) - 1, yes, sizeof(yes) - 1, 0),
	    1);
	cr_assert_eq(glob_match(pat, sizeof(pat) - 1, no, sizeof(no) - 1, 0),
	    0);
	/* The string's NUL is not an end: "a" must not match "a\0". */
	cr_assert_eq(glob_match("a", 1, "a\0", 2, 0), 0);
	cr_assert_eq(glob_match("a?", 2, "a\0", 2, 0), 1);
	cr_assert_eq(glob_match(cls, sizeof(cls) - 1, "\0", 1, 0), 1);
	cr_assert_eq(glob_match(cls, sizeof(cls) - 1, "\x01", 1, 0), 1);
	cr_assert_eq(glob_match(cls, sizeof(cls) - 1, "\x02", 1, 0), 0);
	/* High bytes compare unsigned, so ranges over them work. */
	cr_assert_eq(glob_match("[\x80-\xff]", 5, "\xfe", 1, 0), 1);
	cr_assert_eq(glob_match("[\x80-\xff]", 5, "a", 1, 0), 0);
	/* Lengths bound the pattern: "ab" cut to "a". */
	cr_assert_eq(glob_match("ab", 1, "a", 1, 0), 1);
	cr_assert_eq(glob_match("*", 1, "abc", 2, 0), 1);
	cr_assert_eq(glob_match("[ab]", 3, "b", 1, 0), 1);
}

static double
elapsed(struct timespec *t0)
{
	struct timespec	t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

Test(glob, pathological_patterns_are_fast)
{
	struct timespec	 t0;
	char		*s, *p;
	size_t		 n = 100000, i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* keyspace.tcl "Regression for pattern matching long nested loops" */
	cr_assert_eq(m("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0);

	s = dq_malloc(n + 1);
	cr_assert_not_null(s);
	memset(s, 'a', n);
	s[n] = '\0';
	cr_assert_eq(m("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s), 0);
	cr_assert_eq(m("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", s), 1);
	cr_assert_eq(m("*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*b", s), 0);
	cr_assert_eq(mi("*A*A*A*A*A*A*A*A*A*A*A*A*A*A*A*A*[b]", s), 0);
	s[n - 1] = 'b';
	cr_assert_eq(m("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s), 1);

	/*
	 * "Regression for pattern matching very long nested loops": 50000
	 * "*?" against 50000 a's.  Redis gives up (its recursion guard); a
	 * correct answer is a match, and it must come quickly.
	 */
	p = dq_malloc(100000 + 1);
	cr_assert_not_null(p);
	for (i = 0; i < 50000; i++)
		memcpy(p + 2 * i, "*?", 2);
	cr_assert_eq(glob_match(p, 100000, s, 50000, 0), 1);
	cr_assert_eq(glob_match(p, 100000, s, 49999, 0), 0);
	dq_free(p);
	dq_free(s);
	cr_assert_lt(elapsed(&t0), 5.0, "glob took %.2fs", elapsed(&t0));
}

/* CONFIG GET echoes a plain name as asked, a pattern's matches as spelled. */
Test(glob, special)
{
	cr_assert_eq(glob_special("maxclients", 10), 0);
	cr_assert_eq(glob_special("", 0), 0);
	cr_assert_eq(glob_special("metrics.port", 12), 0);
	cr_assert_eq(glob_special("max*", 4), 1);
	cr_assert_eq(glob_special("port?", 5), 1);
	cr_assert_eq(glob_special("[mp]ort", 7), 1);
	cr_assert_eq(glob_special("a\\b", 3), 1);
	/* binary safe: a NUL is no special byte, and the length is obeyed */
	cr_assert_eq(glob_special("a\0*", 2), 0);
	cr_assert_eq(glob_special("a\0*", 3), 1);
}
