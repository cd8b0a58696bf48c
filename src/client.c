#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "client.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#define READ_CHUNK	(64 * 1024)
#define MAX_INLINE	(64 * 1024)
#define MAX_ARGC	(1024 * 1024)
/*
 * Requests a client may send ahead of the replies it has read: while its
 * replies wait (CLIENT_THROTTLED in worker.c) its commands do not run, but
 * its input is still read, or a client that writes a whole pipeline before
 * it reads (redis-py, hiredis) and the server would wait for each other
 * for ever.  Beyond this the client is closed, as Redis closes one at its
 * client-query-buffer-limit.  One argument stays bounded by max_bulk.
 */
#define IN_AHEAD_MAX	(64 * 1024 * 1024)

struct client *
client_new(int fd, uint64_t id, const char *addr, size_t max_bulk,
    size_t query_limit)
{
	struct resp_limits	 lim = { max_bulk, MAX_ARGC, MAX_INLINE };
	struct client		*c;

	if ((c = dq_calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = fd;
	c->id = id;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	buf_init(&c->in, query_limit > IN_AHEAD_MAX ? query_limit :
	    IN_AHEAD_MAX);
	buf_init(&c->out, 0);
	buf_init(&c->multi, query_limit);
	resp_parser_init(&c->parser, &lim);
	return c;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->multi);
	resp_parser_free(&c->parser);
	dq_free(c->name);
	dq_free(c->lib_name);
	dq_free(c->lib_ver);
	dq_free(c);
}

int
client_read(struct client *c)
{
	ssize_t	n;

	if (buf_reserve(&c->in, READ_CHUNK) == -1) {
		/* The query buffer limit: a frame larger than allowed. */
		log_warnx("client %s: query buffer limit of %zu bytes reached, "
		    "closing", c->addr, c->in.limit);
		return -1;
	}
	n = read(c->fd, c->in.data + c->in.len, READ_CHUNK);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		log_debug("client %s: read: %s", c->addr, strerror(errno));
		return -1;
	}
	if (n == 0)
		return -1;
	c->in.len += n;
	STAT_ADD(net_in, n);
	return 0;
}

int
client_write(struct client *c)
{
	ssize_t	n;

	while (c->sent < c->committed) {
		n = write(c->fd, c->out.data + c->sent, c->committed - c->sent);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			log_debug("client %s: write: %s", c->addr,
			    strerror(errno));
			return -1;
		}
		c->sent += n;
		c->last_out_ms = mono_ms();
		STAT_ADD(net_out, n);
	}
	if (c->sent == c->out.len) {
		/* All sent: reuse the buffer from the start. */
		c->out.len = c->sent = c->committed = 0;
		if (c->out.cap > 1024 * 1024)
			buf_shrink(&c->out);
	}
	return 0;
}

size_t
client_unsent(const struct client *c)
{
	return c->committed - c->sent;
}

size_t
client_held(const struct client *c)
{
	return c->out.len - c->sent;
}

size_t
client_mem(const struct client *c)
{
	return c->in.cap + c->out.cap + c->multi.cap +
	    resp_parser_mem(&c->parser);
}

static void
reply_failed(struct client *c, int rc)
{
	if (rc == 0)
		return;
	log_warnx("client %s: cannot grow the reply buffer, closing", c->addr);
	c->flags |= CLIENT_CLOSE_ASAP;
}

void
reply_simple(struct client *c, const char *s)
{
	reply_failed(c, resp_add_simple(&c->out, s));
}

void
reply_ok(struct client *c)
{
	reply_simple(c, "OK");
}

void
reply_error(struct client *c, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* An error is one line: an argument echoed back must not break it. */
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	STAT_ADD(errors, 1);
	reply_failed(c, resp_add_error(&c->out, "%s", msg));
}

void
reply_int(struct client *c, long long v)
{
	reply_failed(c, resp_add_int(&c->out, v));
}

void
reply_bulk(struct client *c, const void *p, size_t len)
{
	reply_failed(c, resp_add_bulk(&c->out, p, len));
}

void
reply_bulkstr(struct client *c, const char *s)
{
	reply_failed(c, resp_add_bulkstr(&c->out, s));
}

void
reply_nil(struct client *c)
{
	reply_failed(c, resp_add_nil(&c->out));
}

void
reply_nil_array(struct client *c)
{
	reply_failed(c, resp_add_nil_array(&c->out));
}

void
reply_array(struct client *c, size_t n)
{
	reply_failed(c, resp_add_array(&c->out, n));
}
