#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "seam.h"

TestSuite(buf, .init = seam_setup, .fini = seam_teardown);

#define ASSERT_BUF(b, s)	do {					\
	cr_assert_eq((b)->len, sizeof(s) - 1, "len %zu, want %zu",	\
	    (b)->len, sizeof(s) - 1);					\
	cr_assert(memcmp((b)->data, (s), sizeof(s) - 1) == 0);		\
} while (0)

Test(buf, init_is_empty)
{
	struct buf	b;

	buf_init(&b, 10);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, 0);
	cr_assert_eq(b.limit, 10);
	buf_free(&b);
	cr_assert_eq(seam.calls, 0);
}

Test(buf, append_binary)
{
	struct buf	b;

	buf_init(&b, 0);
	cr_assert_eq(buf_append(&b, "ab\0c", 4), 0);
	cr_assert_eq(buf_append(&b, "", 0), 0);
	cr_assert_eq(buf_append(&b, "\r\n", 2), 0);
	ASSERT_BUF(&b, "ab\0c\r\n");
	cr_assert_geq(b.cap, b.len);
	buf_free(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, 0);
}

Test(buf, append_grows_to_large_sizes)
{
	struct buf	b;
	char		chunk[1000];
	size_t		i;

	buf_init(&b, 0);
	for (i = 0; i < 1000; i++) {
		memset(chunk, (int)('a' + i % 26), sizeof(chunk));
		cr_assert_eq(buf_append(&b, chunk, sizeof(chunk)), 0);
	}
	cr_assert_eq(b.len, 1000000);
	for (i = 0; i < 1000; i++)
		cr_assert_eq(b.data[i * 1000 + 999], (char)('a' + i % 26));
	/* Geometric growth: far fewer reallocations than appends. */
	cr_assert_lt(seam.calls, 40, "%d allocations", seam.calls);
	buf_free(&b);
}

Test(buf, appendf)
{
	struct buf	b;
	char		big[300];

	buf_init(&b, 0);
	cr_assert_eq(buf_appendf(&b, "%d:%s", 42, "x"), 0);
	cr_assert_eq(buf_appendf(&b, "%s", ""), 0);
	ASSERT_BUF(&b, "42:x");
	/* Longer than any initial capacity: takes the grow-and-redo path. */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(buf_appendf(&b, "[%s]", big), 0);
	cr_assert_eq(b.len, 4 + 2 + 299);
	cr_assert_eq(b.data[4], '[');
	cr_assert_eq(b.data[5 + 299], ']');
	cr_assert_eq(b.data[5 + 150], 'z');
	buf_free(&b);
}

Test(buf, limit_on_append)
{
	struct buf	b;

	buf_init(&b, 8);
	cr_assert_eq(buf_append(&b, "12345", 5), 0);
	cr_assert_eq(buf_append(&b, "6789", 4), -1);
	ASSERT_BUF(&b, "12345");
	cr_assert_eq(buf_append(&b, "678", 3), 0);
	ASSERT_BUF(&b, "12345678");
	cr_assert_eq(buf_append(&b, "9", 1), -1);
	ASSERT_BUF(&b, "12345678");
	/* The limit bounds the memory too, not only len. */
	cr_assert_leq(b.cap, 8);
	/* Room comes back after consuming. */
	buf_consume(&b, 3);
	ASSERT_BUF(&b, "45678");
	cr_assert_eq(buf_append(&b, "abc", 3), 0);
	ASSERT_BUF(&b, "45678abc");
	buf_free(&b);
}

Test(buf, limit_on_appendf)
{
	struct buf	b;

	buf_init(&b, 6);
	cr_assert_eq(buf_appendf(&b, "%s", "abc"), 0);
	cr_assert_eq(buf_appendf(&b, "%d", 1234), -1);
	ASSERT_BUF(&b, "abc");
	/* Exactly up to the limit is allowed. */
	cr_assert_eq(buf_appendf(&b, "%d", 123), 0);
	ASSERT_BUF(&b, "abc123");
	cr_assert_eq(buf_appendf(&b, "%s", "x"), -1);
	cr_assert_eq(buf_appendf(&b, "%s", ""), 0);
	ASSERT_BUF(&b, "abc123");
	buf_free(&b);
}

Test(buf, limit_on_reserve)
{
	struct buf	b;

	buf_init(&b, 100);
	cr_assert_eq(buf_reserve(&b, 100), 0);
	cr_assert_geq(b.cap, 100);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(buf_reserve(&b, 101), -1);
	cr_assert_eq(buf_reserve(&b, SIZE_MAX), -1);
	buf_free(&b);

	/* No limit: SIZE_MAX is refused (no memory), not wrapped around. */
	buf_init(&b, 0);
	cr_assert_eq(buf_append(&b, "x", 1), 0);
	cr_assert_eq(buf_reserve(&b, SIZE_MAX), -1);
	cr_assert_eq(buf_reserve(&b, SIZE_MAX - 1), -1);
	ASSERT_BUF(&b, "x");
	buf_free(&b);
}

Test(buf, consume_and_truncate)
{
	struct buf	b;

	buf_init(&b, 0);
	cr_assert_eq(buf_append(&b, "hello world", 11), 0);
	buf_consume(&b, 0);
	ASSERT_BUF(&b, "hello world");
	buf_consume(&b, 6);
	ASSERT_BUF(&b, "world");
	buf_truncate(&b, 3);
	ASSERT_BUF(&b, "wor");
	buf_truncate(&b, 3);
	ASSERT_BUF(&b, "wor");
	buf_consume(&b, 3);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(buf_append(&b, "ab", 2), 0);
	buf_consume(&b, 100);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(buf_append(&b, "cd", 2), 0);
	buf_truncate(&b, 0);
	cr_assert_eq(b.len, 0);
	buf_free(&b);
}

Test(buf, shrink)
{
	struct buf	b;
	char		big[100000];

	memset(big, 'q', sizeof(big));
	buf_init(&b, 0);
	cr_assert_eq(buf_append(&b, big, sizeof(big)), 0);
	buf_consume(&b, sizeof(big) - 10);
	buf_shrink(&b);
	cr_assert_lt(b.cap, 1000);
	cr_assert_eq(b.len, 10);
	cr_assert(memcmp(b.data, big, 10) == 0);
	buf_consume(&b, 10);
	buf_shrink(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.cap, 0);
	/* Usable after shrinking to nothing. */
	cr_assert_eq(buf_append(&b, "ok", 2), 0);
	ASSERT_BUF(&b, "ok");
	buf_free(&b);
}

Test(buf, shrink_failure_is_harmless)
{
	struct buf	b;
	char		big[100000];

	memset(big, 'q', sizeof(big));
	buf_init(&b, 0);
	cr_assert_eq(buf_append(&b, big, sizeof(big)), 0);
	buf_consume(&b, sizeof(big) - 5);
	seam.budget = 0;
	buf_shrink(&b);
	cr_assert_eq(b.len, 5);
	cr_assert_geq(b.cap, 5);
	cr_assert(memcmp(b.data, "qqqqq", 5) == 0);
	seam.budget = -1;
	buf_free(&b);
}

Test(buf, allocation_failure_leaves_buffer_unchanged)
{
	struct buf	b;
	char		big[5000];
	size_t		cap;
	char		*data;

	buf_init(&b, 0);
	seam.budget = 0;
	cr_assert_eq(buf_append(&b, "abc", 3), -1);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, 0);
	cr_assert_eq(buf_appendf(&b, "%d", 7), -1);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(buf_reserve(&b, 1), -1);
	cr_assert_eq(b.cap, 0);

	seam.budget = -1;
	cr_assert_eq(buf_append(&b, "abc", 3), 0);
	cap = b.cap;
	data = b.data;
	memset(big, 'x', sizeof(big));
	seam.budget = 0;
	cr_assert_eq(buf_append(&b, big, sizeof(big)), -1);
	cr_assert_eq(b.cap, cap);
	cr_assert_eq(b.data, data);
	ASSERT_BUF(&b, "abc");
	cr_assert_eq(buf_appendf(&b, "%.*s", 4000, big), -1);
	cr_assert_eq(b.cap, cap);
	ASSERT_BUF(&b, "abc");
	/* Fits in the spare room: no allocation needed, so it works. */
	cr_assert_eq(buf_appendf(&b, "%s", "de"), 0);
	ASSERT_BUF(&b, "abcde");
	seam.budget = -1;
	cr_assert_eq(buf_append(&b, big, sizeof(big)), 0);
	cr_assert_eq(b.len, 5 + sizeof(big));
	buf_free(&b);
}
