/*
 * RESP2 request parser and reply encoders.
 *
 * The parser follows Redis' processMultibulkBuffer() and
 * processInlineBuffer() (networking.c) and sdssplitargs() (sds.c), with a
 * few deliberate tightenings, all of which end in a protocol error rather
 * than in a silently different reading of the input:
 *  - a header line's CR must be followed by LF, and a bulk's data by CRLF
 *    (Redis skips two bytes without looking);
 *  - a header ("*N" or "$N") longer than max_inline fails as soon as that
 *    is known, with Redis' "too big ... count string", whether its CR has
 *    come yet or not (Redis' message depends on how the input was cut
 *    into reads; tests/fuzz/fuzz_resp.c checks that ours does not);
 *  - a '$' header that starts with the wrong byte fails at once instead of
 *    once its line is complete, with Redis' message.
 * Inline lines are binary safe: a NUL byte is an ordinary byte (sdssplitargs
 * would stop at it).
 *
 * Incremental state (see resp.h): every position is an offset from the
 * start of the frame.  Field use by state:
 *   ST_MBCOUNT  the "*N" line, at offset 0; bulklen: where the search for
 *               its CR resumes.
 *   ST_BULKHDR  a "$N" line starting at pos; bulklen: search resume point.
 *   ST_BULKDATA a bulk starting at pos, bulklen bytes long.
 *   ST_INLINE   an inline line, at offset 0; bulklen: where the search for
 *               its LF resumes.
 * Resuming the searches is what keeps a frame fed a byte at a time O(n).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "resp.h"
#include "util.h"

/* Redis' defaults, for a limit left at 0. */
#define DEF_MAX_BULK	(512UL * 1024 * 1024)
#define DEF_MAX_ARGC	(1024UL * 1024)
#define DEF_MAX_INLINE	(64UL * 1024)

#define PROTO		"ERR Protocol error: "

enum {
	ST_START,
	ST_MBCOUNT,
	ST_BULKHDR,
	ST_BULKDATA,
	ST_INLINE,
	ST_ERROR
};

/* Outcome of a search for the end of a header line. */
enum {
	LINE_FOUND,
	LINE_MORE,
	LINE_TOOBIG,
	LINE_BADEND
};

void
resp_parser_init(struct resp_parser *p, const struct resp_limits *lim)
{
	memset(p, 0, sizeof(*p));
	if (lim != NULL)
		p->lim = *lim;
	if (p->lim.max_bulk == 0)
		p->lim.max_bulk = DEF_MAX_BULK;
	if (p->lim.max_argc == 0)
		p->lim.max_argc = DEF_MAX_ARGC;
	if (p->lim.max_inline == 0)
		p->lim.max_inline = DEF_MAX_INLINE;
	resp_parser_reset(p);
}

void
resp_parser_reset(struct resp_parser *p)
{
	p->state = ST_START;
	p->pos = 0;
	p->nexpected = 0;
	p->bulklen = -1;
	p->nargs = 0;
	p->argc = 0;
	p->error[0] = '\0';
}

void
resp_parser_free(struct resp_parser *p)
{
	dq_free(p->offs);
	dq_free(p->lens);
	dq_free(p->argv);
	dq_free(p->scratch);
	p->offs = p->lens = p->argvlen = NULL;
	p->argv = NULL;
	p->scratch = NULL;
	p->capargs = p->scratchcap = 0;
	resp_parser_reset(p);
}

size_t
resp_parser_mem(const struct resp_parser *p)
{
	return p->capargs * (2 * sizeof(size_t) + sizeof(char *)) +
	    p->scratchcap;
}

static enum resp_status
fail(struct resp_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum resp_status
fail(struct resp_parser *p, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(p->error, sizeof(p->error), fmt, ap);
	va_end(ap);
	p->state = ST_ERROR;
	p->argc = 0;
	return RESP_ERROR;
}

/*
 * Records one argument.  The arrays grow with the arguments actually
 * received, never with the count a client announces.
 */
static int
push_arg(struct resp_parser *p, size_t off, size_t len)
{
	size_t		 ncap;
	void		*np;

	if (p->nargs == p->capargs) {
		ncap = p->capargs == 0 ? 8 : p->capargs * 2;
		if ((np = dq_reallocarray(p->offs, ncap, sizeof(size_t))) ==
		    NULL)
			return -1;
		p->offs = np;
		if ((np = dq_reallocarray(p->lens, ncap, sizeof(size_t))) ==
		    NULL)
			return -1;
		p->lens = np;
		if ((np = dq_reallocarray(p->argv, ncap, sizeof(char *))) ==
		    NULL)
			return -1;
		p->argv = np;
		p->capargs = ncap;
	}
	p->offs[p->nargs] = off;
	p->lens[p->nargs] = len;
	p->nargs++;
	return 0;
}

/* Publishes the arguments collected so far as the result. */
static void
finish(struct resp_parser *p, const char *base)
{
	size_t	i;

	for (i = 0; i < p->nargs; i++)
		p->argv[i] = base + p->offs[i];
	p->argvlen = p->lens;
	p->argc = p->nargs;
	p->state = ST_START;
	p->pos = 0;
	p->bulklen = -1;
	p->nargs = 0;
}

/*
 * Looks for the CRLF ending the header line that starts at start, resuming
 * where the last call stopped.  On LINE_FOUND *cr is the CR's offset.
 */
static int
find_crlf(struct resp_parser *p, const char *buf, size_t len, size_t start,
    size_t *cr)
{
	const char	*q;
	size_t		 from;

	from = p->bulklen > 0 && (size_t)p->bulklen > start ?
	    (size_t)p->bulklen : start;
	q = memchr(buf + from, '\r', len - from);
	if (q == NULL) {
		p->bulklen = (long long)len;
		return len - start > p->lim.max_inline ? LINE_TOOBIG :
		    LINE_MORE;
	}
	from = (size_t)(q - buf);
	/* Too long whether its CR came with it or not: the same error
	   however the input was cut into reads. */
	if (from - start > p->lim.max_inline)
		return LINE_TOOBIG;
	if (from + 1 == len) {
		p->bulklen = (long long)from;
		return LINE_MORE;
	}
	if (buf[from + 1] != '\n')
		return LINE_BADEND;
	*cr = from;
	return LINE_FOUND;
}

static enum resp_status
parse_count(struct resp_parser *p, const char *buf, size_t len,
    size_t *consumed)
{
	long long	n;
	size_t		cr;

	switch (find_crlf(p, buf, len, 0, &cr)) {
	case LINE_MORE:
		return RESP_INCOMPLETE;
	case LINE_TOOBIG:
		return fail(p, PROTO "too big mbulk count string");
	case LINE_BADEND:
		return fail(p, PROTO "invalid multibulk length");
	}
	if (parse_ll(buf + 1, cr - 1, &n) == -1 || n > INT_MAX)
		return fail(p, PROTO "invalid multibulk length");
	if (n <= 0) {
		/* "*0" and "*-1" are no command: skip them, as Redis does. */
		*consumed = cr + 2;
		p->state = ST_START;
		p->bulklen = -1;
		return RESP_INCOMPLETE;
	}
	if ((unsigned long long)n > p->lim.max_argc)
		return fail(p, PROTO "invalid multibulk length "
		    "(%lld exceeds the limit of %zu)", n, p->lim.max_argc);
	p->nexpected = n;
	p->nargs = 0;
	p->pos = cr + 2;
	p->bulklen = -1;
	p->state = ST_BULKHDR;
	return RESP_OK;
}

static enum resp_status
parse_bulkhdr(struct resp_parser *p, const char *buf, size_t len)
{
	long long	n;
	size_t		cr;

	if (p->pos >= len)
		return RESP_INCOMPLETE;
	if (buf[p->pos] != '$')
		return fail(p, PROTO "expected '$', got '%c'", buf[p->pos]);
	switch (find_crlf(p, buf, len, p->pos, &cr)) {
	case LINE_MORE:
		return RESP_INCOMPLETE;
	case LINE_TOOBIG:
		return fail(p, PROTO "too big bulk count string");
	case LINE_BADEND:
		return fail(p, PROTO "invalid bulk length");
	}
	if (parse_ll(buf + p->pos + 1, cr - p->pos - 1, &n) == -1 || n < 0)
		return fail(p, PROTO "invalid bulk length");
	if ((unsigned long long)n > p->lim.max_bulk)
		return fail(p, PROTO "invalid bulk length "
		    "(%lld exceeds the limit of %zu)", n, p->lim.max_bulk);
	p->pos = cr + 2;
	p->bulklen = n;
	p->state = ST_BULKDATA;
	return RESP_OK;
}

static enum resp_status
parse_bulkdata(struct resp_parser *p, const char *buf, size_t len)
{
	size_t	n = (size_t)p->bulklen;

	/* n <= max_bulk, so n + 2 cannot wrap in practice; check anyway. */
	if (n > SIZE_MAX - 2 || len - p->pos < n + 2)
		return RESP_INCOMPLETE;
	if (buf[p->pos + n] != '\r' || buf[p->pos + n + 1] != '\n')
		return fail(p, PROTO "bulk data not followed by CRLF");
	if (push_arg(p, p->pos, n) == -1)
		return fail(p, "ERR out of memory");
	p->pos += n + 2;
	p->nexpected--;
	p->bulklen = -1;
	p->state = ST_BULKHDR;
	return RESP_OK;
}

static enum resp_status
parse_multibulk(struct resp_parser *p, const char *buf, size_t len,
    size_t *consumed)
{
	enum resp_status	st;

	if (p->state == ST_MBCOUNT) {
		st = parse_count(p, buf, len, consumed);
		if (st != RESP_OK)
			return st;
	}
	while (p->nexpected > 0) {
		if (p->state == ST_BULKHDR)
			st = parse_bulkhdr(p, buf, len);
		else
			st = parse_bulkdata(p, buf, len);
		if (st != RESP_OK)
			return st;
	}
	*consumed = p->pos;
	finish(p, buf);
	return RESP_OK;
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' ||
	    c == '\f' || c == '\r';
}

static int
hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes one double-quoted argument body starting after the quote at
 * s[*i]; appends to out.  Returns -1 on unbalanced quotes.
 */
static int
split_dquoted(const char *s, size_t n, size_t *i, char *out, size_t *o)
{
	size_t	j = *i;
	int	c;

	for (;;) {
		if (j == n)
			return -1;
		if (s[j] == '\\' && n - j >= 4 && s[j + 1] == 'x' &&
		    hex_val((unsigned char)s[j + 2]) != -1 &&
		    hex_val((unsigned char)s[j + 3]) != -1) {
			out[(*o)++] = (char)(hex_val((unsigned char)s[j + 2]) *
			    16 + hex_val((unsigned char)s[j + 3]));
			j += 4;
		} else if (s[j] == '\\' && n - j >= 2) {
			switch ((c = (unsigned char)s[j + 1])) {
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'b': c = '\b'; break;
			case 'a': c = '\a'; break;
			}
			out[(*o)++] = (char)c;
			j += 2;
		} else if (s[j] == '"') {
			/* A closing quote must end the argument. */
			if (j + 1 < n && !is_space((unsigned char)s[j + 1]))
				return -1;
			*i = j + 1;
			return 0;
		} else
			out[(*o)++] = s[j++];
	}
}

/* Same for 'single quotes', where only \' is an escape. */
static int
split_squoted(const char *s, size_t n, size_t *i, char *out, size_t *o)
{
	size_t	j = *i;

	for (;;) {
		if (j == n)
			return -1;
		if (s[j] == '\\' && n - j >= 2 && s[j + 1] == '\'') {
			out[(*o)++] = '\'';
			j += 2;
		} else if (s[j] == '\'') {
			if (j + 1 < n && !is_space((unsigned char)s[j + 1]))
				return -1;
			*i = j + 1;
			return 0;
		} else
			out[(*o)++] = s[j++];
	}
}

/*
 * Splits an inline line into arguments decoded into p->scratch, with
 * sdssplitargs' rules: quotes may open in the middle of a word
 * (a"b c" is one argument, "ab c").  Returns 0, -1 on unbalanced quotes,
 * -2 when out of memory.
 */
static int
split_inline(struct resp_parser *p, const char *s, size_t n)
{
	size_t	 i = 0, o = 0, start;
	char	*np;
	int	 r;

	/* Decoding never makes an argument longer than its source. */
	if (p->scratchcap < n) {
		if ((np = dq_realloc(p->scratch, n)) == NULL)
			return -2;
		p->scratch = np;
		p->scratchcap = n;
	}
	p->nargs = 0;
	for (;;) {
		while (i < n && is_space((unsigned char)s[i]))
			i++;
		if (i == n)
			return 0;
		start = o;
		while (i < n) {
			if (s[i] == '"' || s[i] == '\'') {
				i++;
				r = s[i - 1] == '"' ?
				    split_dquoted(s, n, &i, p->scratch, &o) :
				    split_squoted(s, n, &i, p->scratch, &o);
				if (r == -1)
					return -1;
				/* A closing quote ends the argument. */
				break;
			}
			if (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' ||
			    s[i] == '\t')
				break;
			p->scratch[o++] = s[i++];
		}
		if (push_arg(p, start, o - start) == -1)
			return -2;
	}
}

static enum resp_status
parse_inline(struct resp_parser *p, const char *buf, size_t len,
    size_t *consumed)
{
	const char	*nl;
	size_t		 from, end, linelen;

	from = p->bulklen > 0 ? (size_t)p->bulklen : 0;
	if ((nl = memchr(buf + from, '\n', len - from)) == NULL) {
		p->bulklen = (long long)len;
		/* A trailing CR may yet turn out to be half of the CRLF. */
		linelen = len > 0 && buf[len - 1] == '\r' ? len - 1 : len;
		if (linelen > p->lim.max_inline)
			goto toobig;
		return RESP_INCOMPLETE;
	}
	end = (size_t)(nl - buf);
	linelen = end > 0 && buf[end - 1] == '\r' ? end - 1 : end;
	if (linelen > p->lim.max_inline)
		goto toobig;
	switch (split_inline(p, buf, linelen)) {
	case -1:
		return fail(p, PROTO "unbalanced quotes in request");
	case -2:
		return fail(p, "ERR out of memory");
	}
	*consumed = end + 1;
	if (p->nargs == 0) {
		/* A blank line: skipped, like Redis does. */
		p->state = ST_START;
		p->bulklen = -1;
		return RESP_INCOMPLETE;
	}
	if (p->nargs > p->lim.max_argc)
		return fail(p, PROTO "too many arguments in inline request "
		    "(%zu exceeds the limit of %zu)", p->nargs,
		    p->lim.max_argc);
	finish(p, p->scratch);
	return RESP_OK;

toobig:
	return fail(p, PROTO "too big inline request "
	    "(exceeds the limit of %zu bytes)", p->lim.max_inline);
}

/*
 * Parses at most one frame at buf.  RESP_INCOMPLETE with *consumed > 0
 * means a frame that is no command was skipped.
 */
static enum resp_status
parse_frame(struct resp_parser *p, const char *buf, size_t len,
    size_t *consumed)
{
	*consumed = 0;
	if (p->state == ST_ERROR)
		return RESP_ERROR;
	if (p->state == ST_START) {
		if (len == 0)
			return RESP_INCOMPLETE;
		p->state = buf[0] == '*' ? ST_MBCOUNT : ST_INLINE;
		p->pos = 0;
		p->bulklen = -1;
		p->nargs = 0;
	}
	if (p->state == ST_INLINE)
		return parse_inline(p, buf, len, consumed);
	return parse_multibulk(p, buf, len, consumed);
}

enum resp_status
resp_parse(struct resp_parser *p, const char *buf, size_t len,
    size_t *consumed)
{
	enum resp_status	st;
	size_t			total = 0, n;

	p->argc = 0;
	/*
	 * Skip blank lines and empty multibulks here, so that the caller
	 * sees either a command or a need for more input; what was skipped
	 * is reported as consumed in both cases.
	 */
	for (;;) {
		st = parse_frame(p, buf + total, len - total, &n);
		if (st == RESP_INCOMPLETE && n > 0) {
			total += n;
			continue;
		}
		*consumed = total + (st == RESP_OK ? n : 0);
		if (st == RESP_ERROR)
			*consumed = 0;
		return st;
	}
}

/* Replies */

/*
 * Appends s, made safe for a status or error line: CR and LF would end the
 * line early and desynchronize the client, so they become spaces, as in
 * Redis' addReplyErrorFormat().
 */
static int
add_line(struct buf *b, char type, const char *s, size_t n)
{
	size_t	old = b->len, i;

	if (n > SIZE_MAX - 3 || buf_reserve(b, n + 3) == -1)
		return -1;
	b->data[b->len++] = type;
	memcpy(b->data + b->len, s, n);
	for (i = old + 1; i < old + 1 + n; i++) {
		if (b->data[i] == '\r' || b->data[i] == '\n')
			b->data[i] = ' ';
	}
	b->len += n;
	b->data[b->len++] = '\r';
	b->data[b->len++] = '\n';
	return 0;
}

int
resp_add_simple(struct buf *b, const char *s)
{
	return add_line(b, '+', s, strlen(s));
}

int
resp_add_error(struct buf *b, const char *fmt, ...)
{
	struct buf	tmp;
	va_list		ap;
	int		rv;

	/* Format aside, so that a failure leaves b untouched. */
	buf_init(&tmp, b->limit);
	va_start(ap, fmt);
	rv = buf_vappendf(&tmp, fmt, ap);
	va_end(ap);
	if (rv == 0)
		rv = add_line(b, '-', tmp.data != NULL ? tmp.data : "",
		    tmp.len);
	buf_free(&tmp);
	return rv;
}

/* Appends a header line such as ":42\r\n" or "$3\r\n", plus extra room. */
static int
add_header(struct buf *b, char type, long long v, size_t extra)
{
	char	num[24];
	size_t	n;

	n = fmt_ll(num, sizeof(num), v);
	if (extra > SIZE_MAX - n - 3 || buf_reserve(b, 1 + n + 2 + extra) == -1)
		return -1;
	b->data[b->len++] = type;
	memcpy(b->data + b->len, num, n);
	b->len += n;
	b->data[b->len++] = '\r';
	b->data[b->len++] = '\n';
	return 0;
}

int
resp_add_int(struct buf *b, long long v)
{
	return add_header(b, ':', v, 0);
}

int
resp_add_bulk(struct buf *b, const void *p, size_t n)
{
	if (n > LLONG_MAX || n > SIZE_MAX - 2 ||
	    add_header(b, '$', (long long)n, n + 2) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len++] = '\r';
	b->data[b->len++] = '\n';
	return 0;
}

int
resp_add_bulkstr(struct buf *b, const char *s)
{
	if (s == NULL)
		return resp_add_nil(b);
	return resp_add_bulk(b, s, strlen(s));
}

int
resp_add_nil(struct buf *b)
{
	return buf_append(b, "$-1\r\n", 5);
}

int
resp_add_nil_array(struct buf *b)
{
	return buf_append(b, "*-1\r\n", 5);
}

int
resp_add_array(struct buf *b, size_t n)
{
	if (n > LLONG_MAX)
		return -1;
	return add_header(b, '*', (long long)n, 0);
}
