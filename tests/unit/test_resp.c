#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "resp.h"
#include "seam.h"

#define S(x)	(x), (sizeof(x) - 1)

static const struct resp_limits	deflim = { 1048576, 1024, 65536 };

TestSuite(resp, .init = seam_setup, .fini = seam_teardown);
TestSuite(enc, .init = seam_setup, .fini = seam_teardown);

/* Renders a command as "argc:[len]bytes[len]bytes\n". */
static void
record(struct buf *out, const struct resp_parser *p)
{
	size_t	i;

	cr_assert_geq(p->argc, 1);
	cr_assert_eq(buf_appendf(out, "%zu:", p->argc), 0);
	for (i = 0; i < p->argc; i++) {
		cr_assert_eq(buf_appendf(out, "[%zu]", p->argvlen[i]), 0);
		cr_assert_eq(buf_append(out, p->argv[i], p->argvlen[i]), 0);
	}
	cr_assert_eq(buf_append(out, "\n", 1), 0);
}

/*
 * Plays a connection: input arrives in chunks of the given sizes (cycling),
 * and before every call the pending bytes move to a fresh heap block, so a
 * parser that kept a pointer across calls reads freed memory (ASan).
 * Output: every command, then "E:<error>" or "R:<bytes left over>".
 */
static void
run(const struct resp_limits *lim, const char *in, size_t len,
    const size_t *chunks, size_t nchunks, struct buf *out)
{
	struct resp_parser	 p;
	struct buf		 pending;
	enum resp_status	 st;
	size_t			 off = 0, ci = 0, n, consumed;
	char			*copy;

	resp_parser_init(&p, lim);
	buf_init(&pending, 0);
	buf_init(out, 0);
	while (off < len) {
		n = chunks[ci++ % nchunks];
		if (n > len - off)
			n = len - off;
		cr_assert_eq(buf_append(&pending, in + off, n), 0);
		off += n;
		for (;;) {
			copy = dq_memdup(pending.len ? pending.data : "",
			    pending.len);
			cr_assert_not_null(copy);
			consumed = 424242;
			st = resp_parse(&p, copy, pending.len, &consumed);
			if (st == RESP_ERROR) {
				dq_free(copy);
				cr_assert_eq(buf_appendf(out, "E:%s", p.error),
				    0);
				goto done;
			}
			cr_assert_leq(consumed, pending.len);
			if (st == RESP_OK) {
				cr_assert_gt(consumed, 0);
				record(out, &p);
			}
			dq_free(copy);
			buf_consume(&pending, consumed);
			if (st == RESP_INCOMPLETE)
				break;
		}
	}
	cr_assert_eq(buf_appendf(out, "R:%zu", pending.len), 0);
done:
	buf_free(&pending);
	resp_parser_free(&p);
}

static void
expect_run(const struct resp_limits *lim, const char *in, size_t len,
    const size_t *chunks, size_t nchunks, const char *want, size_t wantlen)
{
	struct buf	out;

	run(lim, in, len, chunks, nchunks, &out);
	cr_assert(out.len == wantlen && memcmp(out.data, want, wantlen) == 0,
	    "input \"%.*s\"\n got  \"%.*s\"\n want \"%.*s\"", (int)len, in,
	    (int)out.len, out.data, (int)wantlen, want);
	buf_free(&out);
}

/* All at once, a byte at a time, and in chunks of 2, 3 and 7. */
static void
expect_all(const struct resp_limits *lim, const char *in, size_t len,
    const char *want, size_t wantlen)
{
	static const size_t	sizes[] = { SIZE_MAX, 1, 2, 3, 7 };
	static const size_t	mixed[] = { 5, 1, 9, 2, 13, 1, 1, 4 };
	size_t			i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		expect_run(lim, in, len, &sizes[i], 1, want, wantlen);
	expect_run(lim, in, len, mixed, 8, want, wantlen);
}

#define EXPECT(in, want)	expect_all(&deflim, S(in), S(want))
#define EXPECT_LIM(lim, in, want) expect_all(lim, S(in), S(want))

/* One complete frame in one call. */
static void
parse_one(struct resp_parser *p, const char *in, size_t len, size_t want_consumed)
{
	size_t	consumed = 999;

	cr_assert_eq(resp_parse(p, in, len, &consumed), RESP_OK,
	    "error: %s", p->error);
	cr_assert_eq(consumed, want_consumed);
}

Test(resp, simple_multibulk)
{
	struct resp_parser	p;
	const char		in[] = "*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n";

	resp_parser_init(&p, &deflim);
	parse_one(&p, S(in), sizeof(in) - 1);
	cr_assert_eq(p.argc, 2);
	cr_assert_eq(p.argvlen[0], 4);
	cr_assert(memcmp(p.argv[0], "PING", 4) == 0);
	cr_assert_eq(p.argvlen[1], 2);
	cr_assert(memcmp(p.argv[1], "hi", 2) == 0);
	/* Multibulk arguments point into the caller's buffer. */
	cr_assert_eq(p.argv[0], in + 8);
	cr_assert_eq(p.argv[1], in + 18);
	/* The parser is ready for the next frame. */
	parse_one(&p, S("*1\r\n$0\r\n\r\n"), 10);
	cr_assert_eq(p.argc, 1);
	cr_assert_eq(p.argvlen[0], 0);
	resp_parser_free(&p);
}

Test(resp, frame_split_at_every_byte)
{
	const char	in[] = "*3\r\n$4\r\nQADD\r\n$3\r\na\0b\r\n"
			    "$12\r\n\r\n$*\0\r\n\r\nxyz\r\n";
	const size_t	n = sizeof(in) - 1;
	const char	want[] = "[4]QADD[3]a\0b[12]\r\n$*\0\r\n\r\nxyz";
	struct resp_parser p;
	size_t		k, consumed, i;
	char		*copy;
	struct buf	got;

	/* Growing one byte at a time, moved in memory before every call. */
	resp_parser_init(&p, &deflim);
	for (k = 0; k <= n; k++) {
		copy = dq_memdup(in, k);
		consumed = 77;
		if (k < n) {
			cr_assert_eq(resp_parse(&p, copy, k, &consumed),
			    RESP_INCOMPLETE, "prefix %zu", k);
			cr_assert_eq(consumed, 0, "prefix %zu", k);
		} else {
			cr_assert_eq(resp_parse(&p, copy, k, &consumed),
			    RESP_OK);
			cr_assert_eq(consumed, n);
			cr_assert_eq(p.argc, 3);
			buf_init(&got, 0);
			for (i = 0; i < p.argc; i++) {
				buf_appendf(&got, "[%zu]", p.argvlen[i]);
				buf_append(&got, p.argv[i], p.argvlen[i]);
			}
			cr_assert_eq(got.len, sizeof(want) - 1);
			cr_assert(memcmp(got.data, want, got.len) == 0);
			buf_free(&got);
		}
		dq_free(copy);
	}
	resp_parser_free(&p);

	/* Two parts, split at every offset, with a fresh parser each. */
	for (k = 0; k <= n; k++) {
		size_t	chunks[2] = { k, n - k };

		expect_run(&deflim, in, n, chunks, 2,
		    S("3:[4]QADD[3]a\0b[12]\r\n$*\0\r\n\r\nxyz\nR:0"));
	}
}

Test(resp, inline_split_at_every_byte)
{
	const char	in[] = "SET \"a b\\x41\" 'c\\'d'  e\r\n";
	size_t		k, n = sizeof(in) - 1;

	for (k = 0; k <= n; k++) {
		size_t	chunks[2] = { k, n - k };

		expect_run(&deflim, in, n, chunks, 2,
		    S("4:[3]SET[4]a bA[3]c'd[1]e\nR:0"));
	}
	EXPECT("SET \"a b\\x41\" 'c\\'d'  e\r\n",
	    "4:[3]SET[4]a bA[3]c'd[1]e\nR:0");
}

Test(resp, pipelined_frames)
{
	EXPECT("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n"
	    "PING inline\r\n*1\r\n$4\r\nQUIT\r\n",
	    "1:[4]PING\n2:[4]ECHO[1]x\n2:[4]PING[6]inline\n1:[4]QUIT\nR:0");
	/* A partial frame at the end stays pending. */
	EXPECT("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI",
	    "1:[4]PING\nR:10");
	EXPECT("PING\r\nPING\nPING\r\nPIN",
	    "1:[4]PING\n1:[4]PING\n1:[4]PING\nR:3");
}

Test(resp, empty_lines_and_empty_multibulks)
{
	struct resp_parser	p;
	size_t			consumed;

	resp_parser_init(&p, &deflim);
	consumed = 9;
	cr_assert_eq(resp_parse(&p, S("\r\n"), &consumed), RESP_INCOMPLETE);
	cr_assert_eq(consumed, 2);
	cr_assert_eq(resp_parse(&p, S("\n"), &consumed), RESP_INCOMPLETE);
	cr_assert_eq(consumed, 1);
	cr_assert_eq(resp_parse(&p, S("  \t \r\n"), &consumed),
	    RESP_INCOMPLETE);
	cr_assert_eq(consumed, 6);
	cr_assert_eq(resp_parse(&p, S("*0\r\n"), &consumed), RESP_INCOMPLETE);
	cr_assert_eq(consumed, 4);
	cr_assert_eq(resp_parse(&p, S("*-1\r\n"), &consumed), RESP_INCOMPLETE);
	cr_assert_eq(consumed, 5);
	cr_assert_eq(resp_parse(&p, S("*-100\r\n"), &consumed),
	    RESP_INCOMPLETE);
	cr_assert_eq(consumed, 7);
	cr_assert_eq(resp_parse(&p, "", 0, &consumed), RESP_INCOMPLETE);
	cr_assert_eq(consumed, 0);
	/* Skipped frames then a command: all consumed together. */
	cr_assert_eq(resp_parse(&p, S("\r\n*0\r\n\nPING\r\n"), &consumed),
	    RESP_OK);
	cr_assert_eq(consumed, 13);
	cr_assert_eq(p.argc, 1);
	cr_assert(memcmp(p.argv[0], "PING", 4) == 0);
	/* Skipped frames then a partial one: only the skipped part. */
	cr_assert_eq(resp_parse(&p, S("\r\n*0\r\n*1\r\n$4\r\nPI"), &consumed),
	    RESP_INCOMPLETE);
	cr_assert_eq(consumed, 6);
	cr_assert_eq(resp_parse(&p, S("*1\r\n$4\r\nPING\r\n"), &consumed),
	    RESP_OK);
	cr_assert_eq(consumed, 14);
	cr_assert_eq(p.argc, 1);
	resp_parser_free(&p);

	EXPECT("\r\n\r\n\n*0\r\n*-1\r\n   \r\nPING\r\n\r\n",
	    "1:[4]PING\nR:0");
}

Test(resp, inline_quoting)
{
	EXPECT("set foo bar\r\n", "3:[3]set[3]foo[3]bar\nR:0");
	EXPECT("  set   foo\tbar  \r\n", "3:[3]set[3]foo[3]bar\nR:0");
	EXPECT("PING\n", "1:[4]PING\nR:0");
	EXPECT("SET k \"\"\r\n", "3:[3]SET[1]k[0]\nR:0");
	EXPECT("SET k ''\r\n", "3:[3]SET[1]k[0]\nR:0");
	EXPECT("\"a\\nb\\r\\t\\b\\a\\\\\\\"\\z\"\r\n",
	    "1:[10]a\nb\r\t\b\a\\\"z\nR:0");
	EXPECT("\"\\x41\\x6a\\x00\\xFf\"\r\n", "1:[4]Aj\0\xff\nR:0");
	/* "\x4" is not a hex escape: backslash-x gives 'x'. */
	EXPECT("\"\\x4\"\r\n", "1:[2]x4\nR:0");
	EXPECT("\"\\xZZ\"\r\n", "1:[3]xZZ\nR:0");
	EXPECT("'it\\'s' 'a\\nb' '\"'\r\n", "3:[4]it's[4]a\\nb[1]\"\nR:0");
	/* A quote may open inside a word, as in sdssplitargs. */
	EXPECT("a\"b c\" d\r\n", "2:[4]ab c[1]d\nR:0");
	EXPECT("\"a\" \"b\"\r\n", "2:[1]a[1]b\nR:0");
	/* A lone CR inside the line separates arguments. */
	EXPECT("a\rb\n", "2:[1]a[1]b\nR:0");
	EXPECT("a\r\r\n", "1:[1]a\nR:0");
	/* NUL is an ordinary byte in an inline line. */
	EXPECT("A\0B C\r\n", "2:[3]A\0B[1]C\nR:0");
	/* Quoted arguments keep spaces and CR LF written as escapes. */
	EXPECT("QADD q \"hello world\\r\\n\" 0\r\n",
	    "4:[4]QADD[1]q[13]hello world\r\n[1]0\nR:0");
}

Test(resp, inline_unbalanced_quotes)
{
	EXPECT("SET \"abc\r\n",
	    "E:ERR Protocol error: unbalanced quotes in request");
	EXPECT("SET 'abc\r\n",
	    "E:ERR Protocol error: unbalanced quotes in request");
	EXPECT("SET \"a\"b\r\n",
	    "E:ERR Protocol error: unbalanced quotes in request");
	EXPECT("SET 'a'b\r\n",
	    "E:ERR Protocol error: unbalanced quotes in request");
	EXPECT("\"abc\\\"\r\n",
	    "E:ERR Protocol error: unbalanced quotes in request");
	EXPECT("\"abc\\\r\n",
	    "E:ERR Protocol error: unbalanced quotes in request");
	/* The command before the bad line is still delivered. */
	EXPECT("PING\r\n\"x\r\nPING\r\n",
	    "1:[4]PING\nE:ERR Protocol error: unbalanced quotes in request");
}

Test(resp, binary_bulks)
{
	EXPECT("*2\r\n$3\r\n\0\0\0\r\n$4\r\n\r\n\r\n\r\n",
	    "2:[3]\0\0\0[4]\r\n\r\n\nR:0");
	EXPECT("*1\r\n$10\r\n*1\r\n$4\r\nPI\r\n",
	    "1:[10]*1\r\n$4\r\nPI\nR:0");
	EXPECT("*1\r\n$0\r\n\r\n", "1:[0]\nR:0");
}

Test(resp, bad_multibulk_counts)
{
	EXPECT("*abc\r\n", "E:ERR Protocol error: invalid multibulk length");
	EXPECT("*\r\n", "E:ERR Protocol error: invalid multibulk length");
	EXPECT("*1x\r\n", "E:ERR Protocol error: invalid multibulk length");
	EXPECT("*01\r\n", "E:ERR Protocol error: invalid multibulk length");
	EXPECT("*+1\r\n", "E:ERR Protocol error: invalid multibulk length");
	EXPECT("* 1\r\n", "E:ERR Protocol error: invalid multibulk length");
	EXPECT("*-0\r\n", "E:ERR Protocol error: invalid multibulk length");
	EXPECT("*2147483648\r\n",
	    "E:ERR Protocol error: invalid multibulk length");
	EXPECT("*99999999999999999999\r\n",
	    "E:ERR Protocol error: invalid multibulk length");
	EXPECT("*1\0\r\n", "E:ERR Protocol error: invalid multibulk length");
	/* CR must be followed by LF. */
	EXPECT("*1\rX$1\r\na\r\n",
	    "E:ERR Protocol error: invalid multibulk length");
	/* A bare LF does not end a multibulk header. */
	EXPECT("*1\n$1\r\na\r\n",
	    "E:ERR Protocol error: invalid multibulk length");
	/* Not yet complete: no error before the CR LF arrives. */
	EXPECT("*12", "R:3");
	EXPECT("*12\r", "R:4");
}

Test(resp, bad_bulk_headers)
{
	EXPECT("*1\r\n$abc\r\n", "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$-1\r\n", "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$-5\r\n", "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$\r\n", "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$01\r\n", "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$+1\r\n", "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$1 \r\n", "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$99999999999999999999\r\n",
	    "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$1\rXa\r\n",
	    "E:ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\nX", "E:ERR Protocol error: expected '$', got 'X'");
	EXPECT("*1\r\n:1\r\n", "E:ERR Protocol error: expected '$', got ':'");
	EXPECT("*2\r\n$1\r\na\r\n*1\r\n",
	    "E:ERR Protocol error: expected '$', got '*'");
	EXPECT("*1\r\n\r\n", "E:ERR Protocol error: expected '$', got '\r'");
	EXPECT("*1\r\n$3", "R:6");
}

Test(resp, bulk_data_must_end_in_crlf)
{
	EXPECT("*1\r\n$3\r\nabcXY",
	    "E:ERR Protocol error: bulk data not followed by CRLF");
	EXPECT("*1\r\n$3\r\nabc\rX",
	    "E:ERR Protocol error: bulk data not followed by CRLF");
	EXPECT("*1\r\n$3\r\nabc\n\r",
	    "E:ERR Protocol error: bulk data not followed by CRLF");
	EXPECT("*1\r\n$3\r\nabcd\r\n",
	    "E:ERR Protocol error: bulk data not followed by CRLF");
	/* Shorter than announced: waits for more. */
	EXPECT("*1\r\n$3\r\nab\r\n", "R:12");
	EXPECT("*1\r\n$3\r\nabc\r", "R:12");
}

Test(resp, limits)
{
	struct resp_limits	lim = { 10, 3, 16 };

	/* Bulk length. */
	EXPECT_LIM(&lim, "*1\r\n$10\r\n0123456789\r\n", "1:[10]0123456789\nR:0");
	EXPECT_LIM(&lim, "*1\r\n$11\r\n",
	    "E:ERR Protocol error: invalid bulk length "
	    "(11 exceeds the limit of 10)");
	EXPECT("*1\r\n$2000000\r\n",
	    "E:ERR Protocol error: invalid bulk length "
	    "(2000000 exceeds the limit of 1048576)");
	/* Element count. */
	EXPECT_LIM(&lim, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
	    "3:[1]a[1]b[1]c\nR:0");
	EXPECT_LIM(&lim, "*4\r\n",
	    "E:ERR Protocol error: invalid multibulk length "
	    "(4 exceeds the limit of 3)");
	EXPECT_LIM(&lim, "a b c\r\n", "3:[1]a[1]b[1]c\nR:0");
	EXPECT_LIM(&lim, "a b c d\r\n",
	    "E:ERR Protocol error: too many arguments in inline request "
	    "(4 exceeds the limit of 3)");
	/* Inline line length: 16 fits, CR LF or LF not counted. */
	EXPECT_LIM(&lim, "0123456789abcdef\r\n", "1:[16]0123456789abcdef\nR:0");
	EXPECT_LIM(&lim, "0123456789abcdef\n", "1:[16]0123456789abcdef\nR:0");
	EXPECT_LIM(&lim, "0123456789abcdef\r", "R:17");
	EXPECT_LIM(&lim, "0123456789abcdefg\r\n",
	    "E:ERR Protocol error: too big inline request "
	    "(exceeds the limit of 16 bytes)");
	/* Without a newline in sight, as soon as it is too long. */
	EXPECT_LIM(&lim, "0123456789abcdefg",
	    "E:ERR Protocol error: too big inline request "
	    "(exceeds the limit of 16 bytes)");
	/* Header lines without CR: Redis' "too big ... count string". */
	EXPECT_LIM(&lim, "*0000000000000000000",
	    "E:ERR Protocol error: too big mbulk count string");
	EXPECT_LIM(&lim, "*1\r\n$0000000000000000000",
	    "E:ERR Protocol error: too big bulk count string");
	EXPECT_LIM(&lim, "*000000000000000", "R:16");
	/* With the CR already there: the same error, whatever the reads
	   (a fuzzer found "invalid multibulk length" in one read and "too
	   big" in several). */
	EXPECT_LIM(&lim, "*0000000000000000000\r\n",
	    "E:ERR Protocol error: too big mbulk count string");
	EXPECT_LIM(&lim, "*0000000000000000000\r",
	    "E:ERR Protocol error: too big mbulk count string");
	EXPECT_LIM(&lim, "*1\r\n$0000000000000000000\r\n",
	    "E:ERR Protocol error: too big bulk count string");
	EXPECT_LIM(&lim, "*000000000000001\r\n",
	    "E:ERR Protocol error: invalid multibulk length");
}

Test(resp, huge_count_allocates_lazily)
{
	struct resp_parser	p;
	size_t			consumed;
	struct resp_limits	lim = { 1048576, 1000000, 65536 };

	resp_parser_init(&p, &lim);
	cr_assert_eq(resp_parse(&p, S("*1000000\r\n$1\r\na\r\n"), &consumed),
	    RESP_INCOMPLETE);
	cr_assert_eq(consumed, 0);
	/* No allocation sized by the announced count. */
	cr_assert_lt(seam.biggest, 4096, "allocated %zu bytes", seam.biggest);
	resp_parser_free(&p);
}

Test(resp, error_is_sticky_until_reset)
{
	struct resp_parser	p;
	size_t			consumed;

	resp_parser_init(&p, &deflim);
	cr_assert_eq(resp_parse(&p, S("*x\r\n"), &consumed), RESP_ERROR);
	cr_assert_str_eq(p.error, "ERR Protocol error: invalid multibulk length");
	cr_assert_eq(resp_parse(&p, S("PING\r\n"), &consumed), RESP_ERROR);
	resp_parser_reset(&p);
	cr_assert_eq(resp_parse(&p, S("PING\r\n"), &consumed), RESP_OK);
	cr_assert_eq(consumed, 6);
	cr_assert_eq(p.argc, 1);
	/* Reset also forgets a partial frame. */
	cr_assert_eq(resp_parse(&p, S("*2\r\n$4\r\nECHO\r\n"), &consumed),
	    RESP_INCOMPLETE);
	resp_parser_reset(&p);
	cr_assert_eq(resp_parse(&p, S("*1\r\n$4\r\nPING\r\n"), &consumed),
	    RESP_OK);
	cr_assert_eq(p.argc, 1);
	resp_parser_free(&p);
}

Test(resp, out_of_memory_is_an_error)
{
	struct resp_parser	p;
	size_t			consumed;

	resp_parser_init(&p, &deflim);
	seam.budget = 0;
	cr_assert_eq(resp_parse(&p, S("*1\r\n$1\r\na\r\n"), &consumed),
	    RESP_ERROR);
	cr_assert_str_eq(p.error, "ERR out of memory");
	resp_parser_reset(&p);
	cr_assert_eq(resp_parse(&p, S("PING\r\n"), &consumed), RESP_ERROR);
	cr_assert_str_eq(p.error, "ERR out of memory");
	seam.budget = -1;
	resp_parser_reset(&p);
	cr_assert_eq(resp_parse(&p, S("PING\r\n"), &consumed), RESP_OK);
	resp_parser_free(&p);
}

static double
since(const struct timespec *t0)
{
	struct timespec	t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Feeding a byte at a time must cost O(n) in total, not O(n^2). */
Test(resp, byte_at_a_time_is_linear)
{
	struct resp_limits	 lim = { 8 << 20, 16, 8 << 20 };
	struct resp_parser	 p;
	struct timespec		 t0;
	size_t			 n = 4 << 20, hdr, k, consumed;
	char			*in;

	in = dq_malloc(n + 64);
	cr_assert_not_null(in);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* One big bulk. */
	hdr = (size_t)snprintf(in, 64, "*1\r\n$%zu\r\n", n);
	memset(in + hdr, 'v', n);
	memcpy(in + hdr + n, "\r\n", 2);
	resp_parser_init(&p, &lim);
	for (k = 1; k < hdr + n + 2; k++)
		cr_assert_eq(resp_parse(&p, in, k, &consumed), RESP_INCOMPLETE);
	cr_assert_eq(resp_parse(&p, in, k, &consumed), RESP_OK);
	cr_assert_eq(p.argvlen[0], n);
	resp_parser_free(&p);

	/* One long inline line. */
	memset(in, 'i', n);
	memcpy(in + n, "\r\n", 2);
	resp_parser_init(&p, &lim);
	for (k = 1; k < n + 2; k++)
		cr_assert_eq(resp_parse(&p, in, k, &consumed), RESP_INCOMPLETE);
	cr_assert_eq(resp_parse(&p, in, k, &consumed), RESP_OK);
	cr_assert_eq(p.argvlen[0], n);
	resp_parser_free(&p);

	dq_free(in);
	cr_assert_lt(since(&t0), 10.0, "took %.1fs", since(&t0));
}

Test(resp, zero_limits_mean_defaults)
{
	struct resp_limits	lim = { 0, 0, 0 };
	struct resp_parser	p;

	resp_parser_init(&p, &lim);
	cr_assert_eq(p.lim.max_bulk, 512UL * 1024 * 1024);
	cr_assert_eq(p.lim.max_argc, 1024UL * 1024);
	cr_assert_eq(p.lim.max_inline, 64UL * 1024);
	resp_parser_free(&p);
}

/* Encoders */

#define ASSERT_BUF(b, s)	do {					\
	cr_assert((b)->len == sizeof(s) - 1 &&				\
	    memcmp((b)->data, (s), sizeof(s) - 1) == 0,			\
	    "got \"%.*s\" want \"%s\"", (int)(b)->len, (b)->data, (s));	\
} while (0)

Test(enc, exact_bytes)
{
	struct buf	b;

	buf_init(&b, 0);
	cr_assert_eq(resp_add_simple(&b, "OK"), 0);
	ASSERT_BUF(&b, "+OK\r\n");
	buf_truncate(&b, 0);
	cr_assert_eq(resp_add_simple(&b, ""), 0);
	ASSERT_BUF(&b, "+\r\n");
	buf_truncate(&b, 0);
	cr_assert_eq(resp_add_error(&b, "ERR unknown command '%s'", "x"), 0);
	ASSERT_BUF(&b, "-ERR unknown command 'x'\r\n");
	buf_truncate(&b, 0);
	cr_assert_eq(resp_add_error(&b, "%s", "NOAUTH Authentication required."),
	    0);
	ASSERT_BUF(&b, "-NOAUTH Authentication required.\r\n");
	buf_truncate(&b, 0);
	cr_assert_eq(resp_add_int(&b, 0), 0);
	cr_assert_eq(resp_add_int(&b, 42), 0);
	cr_assert_eq(resp_add_int(&b, -1), 0);
	cr_assert_eq(resp_add_int(&b, LLONG_MAX), 0);
	cr_assert_eq(resp_add_int(&b, LLONG_MIN), 0);
	ASSERT_BUF(&b, ":0\r\n:42\r\n:-1\r\n:9223372036854775807\r\n"
	    ":-9223372036854775808\r\n");
	buf_truncate(&b, 0);
	cr_assert_eq(resp_add_bulk(&b, "abc", 3), 0);
	cr_assert_eq(resp_add_bulk(&b, "", 0), 0);
	cr_assert_eq(resp_add_bulk(&b, NULL, 0), 0);
	cr_assert_eq(resp_add_bulk(&b, "a\0\r\nb", 5), 0);
	ASSERT_BUF(&b, "$3\r\nabc\r\n$0\r\n\r\n$0\r\n\r\n$5\r\na\0\r\nb\r\n");
	buf_truncate(&b, 0);
	cr_assert_eq(resp_add_bulkstr(&b, "hello"), 0);
	cr_assert_eq(resp_add_bulkstr(&b, NULL), 0);
	cr_assert_eq(resp_add_nil(&b), 0);
	cr_assert_eq(resp_add_nil_array(&b), 0);
	cr_assert_eq(resp_add_array(&b, 0), 0);
	cr_assert_eq(resp_add_array(&b, 3), 0);
	ASSERT_BUF(&b, "$5\r\nhello\r\n$-1\r\n$-1\r\n*-1\r\n*0\r\n*3\r\n");
	buf_free(&b);
}

Test(enc, line_breaks_cannot_escape_status_lines)
{
	struct buf	b;

	buf_init(&b, 0);
	cr_assert_eq(resp_add_error(&b, "ERR bad\r\n+OK%s", "\n"), 0);
	ASSERT_BUF(&b, "-ERR bad  +OK \r\n");
	buf_truncate(&b, 0);
	cr_assert_eq(resp_add_simple(&b, "a\r\nb"), 0);
	ASSERT_BUF(&b, "+a  b\r\n");
	buf_free(&b);
}

Test(enc, round_trip_through_parser)
{
	struct buf		b;
	struct resp_parser	p;
	size_t			consumed;

	/* A request encoded with the encoders parses back to itself. */
	buf_init(&b, 0);
	cr_assert_eq(resp_add_array(&b, 2), 0);
	cr_assert_eq(resp_add_bulk(&b, "ECHO", 4), 0);
	cr_assert_eq(resp_add_bulk(&b, "\0\r\n", 3), 0);
	resp_parser_init(&p, &deflim);
	cr_assert_eq(resp_parse(&p, b.data, b.len, &consumed), RESP_OK);
	cr_assert_eq(consumed, b.len);
	cr_assert_eq(p.argc, 2);
	cr_assert_eq(p.argvlen[1], 3);
	cr_assert(memcmp(p.argv[1], "\0\r\n", 3) == 0);
	resp_parser_free(&p);
	buf_free(&b);
}

Test(enc, limit_failure_leaves_buffer_unchanged)
{
	struct buf	b;

	buf_init(&b, 10);
	cr_assert_eq(buf_append(&b, "12345", 5), 0);
	cr_assert_eq(resp_add_bulk(&b, "abc", 3), -1);		/* 9 bytes */
	ASSERT_BUF(&b, "12345");
	cr_assert_eq(resp_add_int(&b, 12345678), -1);		/* 11 */
	ASSERT_BUF(&b, "12345");
	cr_assert_eq(resp_add_simple(&b, "OKAY"), -1);		/* 7 */
	ASSERT_BUF(&b, "12345");
	cr_assert_eq(resp_add_error(&b, "ERR %d", 1), -1);	/* 8 */
	ASSERT_BUF(&b, "12345");
	cr_assert_eq(resp_add_bulkstr(&b, "abc"), -1);
	ASSERT_BUF(&b, "12345");
	cr_assert_eq(resp_add_array(&b, 123456), -1);		/* 9 */
	ASSERT_BUF(&b, "12345");
	/* Exactly up to the limit fits. */
	cr_assert_eq(resp_add_int(&b, 12), 0);			/* 5 */
	ASSERT_BUF(&b, "12345:12\r\n");
	cr_assert_eq(resp_add_nil(&b), -1);
	cr_assert_eq(resp_add_nil_array(&b), -1);
	cr_assert_eq(resp_add_array(&b, 0), -1);
	cr_assert_eq(resp_add_bulk(&b, "", 0), -1);
	ASSERT_BUF(&b, "12345:12\r\n");
	buf_free(&b);
}

Test(enc, allocation_failure_leaves_buffer_unchanged)
{
	struct buf	b;

	buf_init(&b, 0);
	seam.budget = 0;
	cr_assert_eq(resp_add_simple(&b, "OK"), -1);
	cr_assert_eq(resp_add_error(&b, "ERR %s", "x"), -1);
	cr_assert_eq(resp_add_int(&b, 1), -1);
	cr_assert_eq(resp_add_bulk(&b, "x", 1), -1);
	cr_assert_eq(resp_add_nil(&b), -1);
	cr_assert_eq(resp_add_array(&b, 1), -1);
	cr_assert_eq(b.len, 0);
	cr_assert_null(b.data);
	seam.budget = -1;
	cr_assert_eq(resp_add_simple(&b, "OK"), 0);
	/* The error formats aside: failing there leaves b as it was. */
	seam.budget = 0;
	cr_assert_eq(resp_add_error(&b, "ERR %s", "x"), -1);
	ASSERT_BUF(&b, "+OK\r\n");
	seam.budget = -1;
	buf_free(&b);
}
