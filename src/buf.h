/*
 * buf: a growable byte buffer with a hard upper bound.
 *
 * A buf owns its bytes.  Appends fail (return -1, buffer unchanged) when
 * memory runs out or when the result would exceed the buffer's limit, so a
 * client can never make a buffer grow without bound.  A limit of 0 means
 * SIZE_MAX.
 */
#ifndef DQ_BUF_H
#define DQ_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*data;
	size_t	 len;		/* bytes in use */
	size_t	 cap;		/* bytes allocated */
	size_t	 limit;		/* most bytes it may hold; 0: no limit */
};

void	buf_init(struct buf *, size_t limit);
void	buf_free(struct buf *);			/* releases memory, len = 0 */
int	buf_reserve(struct buf *, size_t extra);	/* room for extra more bytes */
int	buf_append(struct buf *, const void *, size_t);
int	buf_appendf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	buf_vappendf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
void	buf_truncate(struct buf *, size_t len);	/* len <= b->len */
void	buf_consume(struct buf *, size_t n);	/* drop n bytes from the front */
void	buf_shrink(struct buf *);		/* give back memory when idle */

#endif
