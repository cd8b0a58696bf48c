/*
 * resp: the Redis protocol (RESP2), parsing requests and encoding replies.
 *
 * Requests come as multibulk arrays ("*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n") or
 * as inline commands ("PING hi\r\n", telnet style, with Redis' quoting
 * rules: "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single
 * quotes' with \' only).  The parser is incremental: it keeps its place
 * between calls, so a frame that arrives a byte at a time costs O(n) in
 * total, not O(n^2).
 *
 * Contract of resp_parse(p, buf, len):
 *   buf[0..len) holds the unconsumed input, starting at the first byte of
 *   the frame being parsed.  Between calls the caller may append bytes to
 *   the input and may move it in memory (realloc) but must not drop any of
 *   it until a frame is complete.  The parser stores offsets, never
 *   pointers, across calls.
 *   - RESP_OK: one command is complete.  p->argc, p->argv[i], p->argvlen[i]
 *     describe it; argv[] point into buf (multibulk) or into the parser's
 *     own scratch space (inline) and stay valid until the next call to
 *     resp_parse or resp_parser_reset, and only while buf is not moved.
 *     *consumed is the frame's length in bytes.  argc >= 1 always.
 *   - RESP_INCOMPLETE: more input is needed.  *consumed is 0, except that
 *     empty inline lines ("\r\n") and "*0\r\n" / "*-1\r\n" are skipped:
 *     they are consumed and produce no command.
 *   - RESP_ERROR: the input is not valid RESP or breaks a limit.  p->error
 *     holds Redis' message without the leading '-' or trailing CRLF, e.g.
 *     "ERR Protocol error: invalid bulk length".  The connection must be
 *     closed after the error is sent; the parser must be reset before reuse.
 */
#ifndef DQ_RESP_H
#define DQ_RESP_H

#include <stddef.h>

#include "buf.h"

enum resp_status {
	RESP_OK,
	RESP_INCOMPLETE,
	RESP_ERROR
};

struct resp_limits {
	size_t	max_bulk;	/* longest bulk string ($N) */
	size_t	max_argc;	/* most elements in one multibulk (*N) */
	size_t	max_inline;	/* longest inline line, CRLF excluded */
};

struct resp_parser {
	struct resp_limits lim;

	/* Result of the last RESP_OK. */
	size_t		  argc;
	const char	**argv;
	size_t		 *argvlen;
	char		  error[128];

	/* Private: incremental state. */
	int		  state;
	size_t		  pos;		/* bytes of the frame parsed so far */
	long long	  nexpected;	/* elements still to read (multibulk) */
	long long	  bulklen;	/* length of the bulk being read, or -1 */
	size_t		 *offs;		/* argument offsets into the frame */
	size_t		 *lens;
	size_t		  nargs;
	size_t		  capargs;
	char		 *scratch;	/* decoded inline arguments */
	size_t		  scratchcap;
};

void	resp_parser_init(struct resp_parser *, const struct resp_limits *);
void	resp_parser_reset(struct resp_parser *);	/* forget a partial frame */
void	resp_parser_free(struct resp_parser *);
/* Memory it holds for arguments, outside the query buffer. */
size_t	resp_parser_mem(const struct resp_parser *);
enum resp_status resp_parse(struct resp_parser *, const char *buf, size_t len,
	    size_t *consumed);

/*
 * Reply encoders.  Each appends one RESP2 value to a buf and returns 0, or
 * -1 (buf unchanged) when the buf's limit or memory is exhausted.
 */
int	resp_add_simple(struct buf *, const char *);	/* +OK */
int	resp_add_error(struct buf *, const char *, ...)	/* -ERR ... */
	    __attribute__((format(printf, 2, 3)));
int	resp_add_int(struct buf *, long long);		/* :42 */
int	resp_add_bulk(struct buf *, const void *, size_t);	/* $3 abc */
int	resp_add_bulkstr(struct buf *, const char *);
int	resp_add_nil(struct buf *);			/* $-1 */
int	resp_add_nil_array(struct buf *);		/* *-1 */
int	resp_add_array(struct buf *, size_t n);		/* *n header */

#endif
