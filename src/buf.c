#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

#define BUF_MIN_CAP	64
/* Below this an idle buffer keeps its memory: reallocating costs more. */
#define BUF_KEEP_CAP	16384

static size_t
buf_max(const struct buf *b)
{
	return b->limit == 0 ? SIZE_MAX : b->limit;
}

void
buf_init(struct buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
}

void
buf_free(struct buf *b)
{
	dq_free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/*
 * Makes cap at least need, growing geometrically so that a run of small
 * appends costs amortized O(1).  The limit is the caller's business: the
 * formatted append needs one byte past it for vsnprintf's NUL.
 */
static int
buf_grow(struct buf *b, size_t need)
{
	size_t	 ncap;
	char	*p;

	if (need <= b->cap)
		return 0;
	ncap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	/* Do not grow far past what the limit will ever let us use. */
	if (ncap > buf_max(b) && need <= buf_max(b))
		ncap = buf_max(b);
	else if (ncap > buf_max(b))
		ncap = need;
	if ((p = dq_realloc(b->data, ncap)) == NULL)
		return -1;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
buf_reserve(struct buf *b, size_t extra)
{
	if (extra > buf_max(b) - b->len)
		return -1;
	return buf_grow(b, b->len + extra);
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_reserve(b, n) == -1)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int
buf_vappendf(struct buf *b, const char *fmt, va_list ap)
{
	va_list	 ap2;
	size_t	 room;
	int	 n;

	room = b->cap - b->len;
	va_copy(ap2, ap);
	n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if ((size_t)n > buf_max(b) - b->len)
		return -1;
	if ((size_t)n >= room) {
		/* It did not fit: grow, with room for the NUL, and redo. */
		if ((size_t)n == SIZE_MAX - b->len ||
		    buf_grow(b, b->len + (size_t)n + 1) == -1)
			return -1;
		va_copy(ap2, ap);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
		va_end(ap2);
		if (n < 0)
			return -1;
	}
	b->len += (size_t)n;
	return 0;
}

int
buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list	ap;
	int	rv;

	va_start(ap, fmt);
	rv = buf_vappendf(b, fmt, ap);
	va_end(ap);
	return rv;
}

void
buf_truncate(struct buf *b, size_t len)
{
	if (len < b->len)
		b->len = len;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void
buf_shrink(struct buf *b)
{
	char	*p;

	if (b->len == 0) {
		buf_free(b);
		return;
	}
	if (b->cap <= BUF_KEEP_CAP || b->len > b->cap / 4)
		return;
	/* Failing to shrink is harmless: keep the bigger block. */
	if ((p = dq_realloc(b->data, b->len)) != NULL) {
		b->data = p;
		b->cap = b->len;
	}
}
