/*
 * cmd_multi: MULTI, EXEC and DISCARD, Redis' transactions.
 *
 * Between MULTI and EXEC a client's commands are checked (name, arity,
 * authentication), answered +QUEUED and kept, RESP-encoded, in the
 * client's `multi` buffer.  EXEC runs them one after the other inside the
 * worker's open transaction, so they commit together or not at all, and
 * replies with an array of their replies.  A command refused while
 * queueing makes EXEC answer -EXECABORT and run nothing, as in Redis.
 * Blocking commands (BSPOP, QRESERVE ... BLOCK) do not wait inside EXEC:
 * they answer at once as if their timeout had passed.
 *
 * A batch that deadlocks is run again from where each client stood
 * (worker.c): the queue's state is saved when a batch begins and put
 * back when it is rewound.  Within a batch the buffer only grows (an
 * EXEC leaves its commands in place, a new MULTI starts after them), so
 * that what a rewound EXEC ran is still there to run again; it is
 * emptied once the batch is over.
 */
#include <string.h>

#include "client.h"
#include "cmd.h"
#include "resp.h"
#include "store.h"
#include "worker.h"

void
multi_save(struct client *c)
{
	c->batch_multi_flags = c->flags & (CLIENT_MULTI | CLIENT_DIRTY);
	c->batch_multi_start = c->multi_start;
	c->batch_multi_len = c->multi.len;
	c->batch_multi_n = c->multi_n;
}

void
multi_restore(struct client *c)
{
	c->flags = (c->flags & ~(CLIENT_MULTI | CLIENT_DIRTY | CLIENT_EXEC)) |
	    c->batch_multi_flags;
	c->multi_start = c->batch_multi_start;
	buf_truncate(&c->multi, c->batch_multi_len);
	c->multi_n = c->batch_multi_n;
}

/* The batch is over: only an open MULTI's commands are kept. */
void
multi_settle(struct client *c)
{
	if (!(c->flags & CLIENT_MULTI)) {
		buf_free(&c->multi);
		c->multi_start = c->multi_n = 0;
		return;
	}
	buf_consume(&c->multi, c->multi_start);
	c->multi_start = 0;
}

/* A command that would have been queued was refused: EXEC will abort. */
void
multi_refused(struct client *c)
{
	if (c->flags & CLIENT_MULTI)
		c->flags |= CLIENT_DIRTY;
}

void
multi_queue(struct client *c, size_t argc, const char **argv,
    const size_t *argvlen)
{
	size_t	len = c->multi.len, i;

	if (resp_add_array(&c->multi, argc) == -1)
		goto full;
	for (i = 0; i < argc; i++)
		if (resp_add_bulk(&c->multi, argv[i], argvlen[i]) == -1)
			goto full;
	c->multi_n++;
	reply_simple(c, "QUEUED");
	return;
full:
	buf_truncate(&c->multi, len);
	c->flags |= CLIENT_DIRTY;
	reply_error(c, "ERR transaction too large: more than %zu bytes of "
	    "commands queued", c->multi.limit);
}

static void
multi_end(struct client *c)
{
	c->flags &= ~(CLIENT_MULTI | CLIENT_DIRTY);
	c->multi_start = c->multi.len;
	c->multi_n = 0;
}

void
multi_abort(struct client *c, const char *why)
{
	multi_end(c);
	reply_error(c, "EXECABORT Transaction discarded because of: %s", why);
}

int
cmd_multi(struct cmdctx *x)
{
	struct client	*c = x->c;

	if (c->flags & CLIENT_MULTI) {
		reply_error(c, "ERR MULTI calls can not be nested");
		return STORE_OK;
	}
	c->flags |= CLIENT_MULTI;
	c->flags &= ~CLIENT_DIRTY;
	c->multi_start = c->multi.len;
	c->multi_n = 0;
	reply_ok(c);
	return STORE_OK;
}

int
cmd_discard(struct cmdctx *x)
{
	if (!(x->c->flags & CLIENT_MULTI)) {
		reply_error(x->c, "ERR DISCARD without MULTI");
		return STORE_OK;
	}
	multi_end(x->c);
	reply_ok(x->c);
	return STORE_OK;
}

/* Runs the queued commands; a storage failure aborts the whole batch. */
static int
exec_queued(struct client *c, const char *cmds, size_t len, size_t n)
{
	struct resp_limits	lim = { len, len, len };
	struct resp_parser	p;
	size_t			off = 0, used;
	int			r = STORE_OK;

	resp_parser_init(&p, &lim);
	reply_array(c, n);
	c->flags |= CLIENT_EXEC;
	c->exec_n = n;
	store_isolate(server.store, 1);
	while (off < len && r == STORE_OK) {
		if (resp_parse(&p, cmds + off, len - off, &used) != RESP_OK) {
			r = STORE_ERR;	/* cannot be: we encoded it */
			break;
		}
		off += used;
		r = cmd_execute(c, p.argc, p.argv, p.argvlen);
	}
	c->flags &= ~CLIENT_EXEC;
	store_isolate(server.store, 0);
	resp_parser_free(&p);
	return r;
}

int
cmd_exec(struct cmdctx *x)
{
	struct client	*c = x->c;
	size_t		 start = c->multi_start, n = c->multi_n;

	if (!(c->flags & CLIENT_MULTI)) {
		reply_error(c, "ERR EXEC without MULTI");
		return STORE_OK;
	}
	if (c->flags & CLIENT_DIRTY) {
		multi_end(c);
		reply_error(c, "EXECABORT Transaction discarded because of "
		    "previous errors.");
		return STORE_OK;
	}
	multi_end(c);
	return exec_queued(c, c->multi.data + start, c->multi.len - start, n);
}
