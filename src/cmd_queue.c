/*
 * cmd_queue: the seed's commands (SADD, SPOP, SCARD, DEL, KEYS) and the
 * keyspace commands that real clients and tools use on queues.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "cmd.h"
#include "glob.h"
#include "resp.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "wake.h"
#include "worker.h"

#define REPLY_CAP	(64 * 1024 * 1024) /* one reply's messages, at most */

/* Replies whose element count is known only at the end are built here. */
static struct buf	scratch;

static void
reply_scratch_array(struct client *c, size_t n)
{
	reply_array(c, n);
	if (buf_append(&c->out, scratch.data, scratch.len) == -1)
		c->flags |= CLIENT_CLOSE_ASAP;
	scratch.len = 0;
	/* A large KEYS or SCAN reply does not keep its memory. */
	if (scratch.cap > REPLY_CAP / 4)
		buf_free(&scratch);
}

/*
 * SADD and QADD: queue body delay_ms [body delay_ms ...], all pairs or
 * none.  SADD answers the count, QADD the new ids.
 */
static int
enqueue(struct cmdctx *x, int with_ids)
{
	char		id[STORE_ID_MAX];
	long long	delay;
	uint32_t	qid;
	size_t		i, idlen = 0;
	int		r;

	if ((x->argc - 2) % 2 != 0) {
		reply_error(x->c, "ERR wrong number of arguments for '%s' "
		    "command", with_ids ? "qadd" : "sadd");
		return STORE_OK;
	}
	if (arg_queue(x, 1) == -1)
		return STORE_OK;
	/* Every argument is checked before anything is written. */
	for (i = 2; i < x->argc; i += 2)
		if (arg_body(x, i) == -1 || arg_delay(x, i + 1, &delay))
			return STORE_OK;
	if (check_disk_room(x) == -1)
		return STORE_OK;
	if ((r = store_queue_create(server.store, x->argv[1], x->argvlen[1],
	    &qid)) != STORE_OK)
		return r;
	scratch.len = 0;
	for (i = 2; i < x->argc; i += 2) {
		arg_delay(x, i + 1, &delay);
		if ((r = store_msg_add(server.store, qid, x->now + delay,
		    x->argv[i], x->argvlen[i], id, &idlen)) != STORE_OK)
			return r;
		if (with_ids && resp_add_bulk(&scratch, id, idlen) == -1)
			return STORE_ERR;
	}
	wake_note(wake_bit(x->argv[1], x->argvlen[1]));
	STAT_ADD(enqueued, (x->argc - 2) / 2);
	if (with_ids)
		reply_scratch_array(x->c, (x->argc - 2) / 2);
	else
		reply_int(x->c, (long long)(x->argc - 2) / 2);
	return STORE_OK;
}

int
cmd_sadd(struct cmdctx *x)
{
	return enqueue(x, 0);
}

int
cmd_qadd(struct cmdctx *x)
{
	return enqueue(x, 1);
}

struct collect {
	size_t		n;
	uint64_t	now;	/* the command's time: lateness */
};

static int
collect_body(void *arg, const struct store_msg *m)
{
	struct collect	*cl = arg;

	if (resp_add_bulk(&scratch, m->body, m->bodylen) == -1)
		return 1;
	stats_delivery(cl->now, m->due, m->deliveries);
	cl->n++;
	return scratch.len >= REPLY_CAP;
}

/* SPOP queue [count] */
int
cmd_spop(struct cmdctx *x)
{
	struct store_take t;
	long long	count = 1;
	struct collect	cl = { 0, x->now };
	uint32_t	qid;
	int		r;

	if (x->argc > 3) {
		reply_syntax_error(x->c);
		return STORE_OK;
	}
	if (x->argc == 3) {
		if (arg_ll(x, 2, &count) == -1)
			return STORE_OK;
		if (count < 0) {
			reply_error(x->c, "ERR value is out of range, must be "
			    "positive");
			return STORE_OK;
		}
	}
	scratch.len = 0;
	memset(&t, 0, sizeof(t));
	t.now = x->now;
	t.max = (size_t)count;
	t.max_deliveries = (uint32_t)server.cfg->max_deliveries;
	t.fn = collect_body;
	t.arg = &cl;
	t.no_id = 1;
	r = store_queue_find(server.store, x->argv[1], x->argvlen[1], &qid);
	if (r == STORE_OK)
		r = store_msg_take(server.store, qid, &t);
	if (r != STORE_OK && r != STORE_NOTFOUND)
		return r;
	if (cl.n != t.n) {
		/* collect_body ran out of memory after the delete. */
		return STORE_ERR;
	}
	STAT_ADD(delivered, cl.n);
	if (x->argc == 3) {
		reply_array(x->c, cl.n);
		if (buf_append(&x->c->out, scratch.data, scratch.len) == -1)
			x->c->flags |= CLIENT_CLOSE_ASAP;
	} else if (cl.n == 0)
		reply_nil(x->c);
	else if (buf_append(&x->c->out, scratch.data, scratch.len) == -1)
		x->c->flags |= CLIENT_CLOSE_ASAP;
	if (scratch.cap > REPLY_CAP / 4)
		buf_free(&scratch);
	return STORE_OK;
}

/* Number of messages of a queue by name; 0 when it does not exist. */
static int
queue_size(const char *name, size_t len, int64_t *count)
{
	uint32_t	qid;
	int		r;

	*count = 0;
	r = store_queue_find(server.store, name, len, &qid);
	if (r == STORE_NOTFOUND)
		return STORE_OK;
	if (r != STORE_OK)
		return r;
	return store_queue_count(server.store, qid, count);
}

int
cmd_scard(struct cmdctx *x)
{
	int64_t	n;
	int	r;

	if ((r = queue_size(x->argv[1], x->argvlen[1], &n)) != STORE_OK)
		return r;
	reply_int(x->c, n);
	return STORE_OK;
}

/* DEL queue [queue ...]: the messages are purged in the background. */
int
cmd_del(struct cmdctx *x)
{
	int64_t		count;
	long long	n = 0;
	size_t		i;
	int		r;

	for (i = 1; i < x->argc; i++) {
		r = store_queue_delete(server.store, x->argv[i],
		    x->argvlen[i], &count);
		if (r != STORE_OK && r != STORE_NOTFOUND)
			return r;
		if (count > 0)
			n++;
	}
	reply_int(x->c, n);
	return STORE_OK;
}

int
cmd_exists(struct cmdctx *x)
{
	int64_t		count;
	long long	n = 0;
	size_t		i;
	int		r;

	for (i = 1; i < x->argc; i++) {
		if ((r = queue_size(x->argv[i], x->argvlen[i], &count)) !=
		    STORE_OK)
			return r;
		n += count > 0;
	}
	reply_int(x->c, n);
	return STORE_OK;
}

int
cmd_type(struct cmdctx *x)
{
	int64_t	count;
	int	r;

	if ((r = queue_size(x->argv[1], x->argvlen[1], &count)) != STORE_OK)
		return r;
	/* "set": the seed's commands are set commands, and tools that
	   sample keys by type (redis-cli --bigkeys) then ask SCARD. */
	reply_simple(x->c, count > 0 ? "set" : "none");
	return STORE_OK;
}

/* Walks queues, keeping the non-empty ones whose name matches. */
struct walk {
	const char	*pat;
	size_t		 patlen;
	size_t		 n;
	int		 r;
	int		 emit;		/* append names to scratch */
};

/* A queue of KEYS, DBSIZE or SCAN: counted (and named) if not empty. */
static int
walk_total(void *arg, uint32_t qid, const void *name, size_t len,
    const int64_t c[STORE_NCOUNTERS])
{
	struct walk	*w = arg;

	(void)qid;
	if (c[STORE_C_MESSAGES] <= 0)
		return 0;
	if (w->pat != NULL && !glob_match(w->pat, w->patlen, name, len, 0))
		return 0;
	if (w->emit && resp_add_bulk(&scratch, name, len) == -1) {
		w->r = STORE_ERR;
		return 1;
	}
	w->n++;
	return 0;
}

/* KEYS [pattern]: no pattern means "*", as the seed's clients send. */
int
cmd_keys(struct cmdctx *x)
{
	struct walk	w = { NULL, 0, 0, STORE_OK, 1 };
	int		r;

	if (x->argc > 2) {
		reply_error(x->c, "ERR wrong number of arguments for 'keys' "
		    "command");
		return STORE_OK;
	}
	if (x->argc == 2 && !(x->argvlen[1] == 1 && x->argv[1][0] == '*')) {
		w.pat = x->argv[1];
		w.patlen = x->argvlen[1];
	}
	scratch.len = 0;
	r = store_queue_totals(server.store, walk_total, &w);
	if (r == STORE_OK)
		r = w.r;
	if (r != STORE_OK)
		return r;
	reply_scratch_array(x->c, w.n);
	return STORE_OK;
}

int
cmd_dbsize(struct cmdctx *x)
{
	struct walk	w = { NULL, 0, 0, STORE_OK, 0 };
	int		r;

	r = store_queue_totals(server.store, walk_total, &w);
	if (r == STORE_OK)
		r = w.r;
	if (r != STORE_OK)
		return r;
	reply_int(x->c, (long long)w.n);
	return STORE_OK;
}

/*
 * A cursor as Redis reads one (strtoull after its strict parse): a plus
 * sign and leading zeros are allowed, "00" and "+5" being 0 and 5.
 */
static int
scan_cursor(const char *s, size_t len, uint64_t *cursor)
{
	if (len > 1 && s[0] == '+') {
		s++;
		len--;
	}
	while (len > 1 && s[0] == '0') {
		s++;
		len--;
	}
	return parse_u64(s, len, cursor);
}

/* SCAN cursor [MATCH pattern] [COUNT n] [TYPE type] */
int
cmd_scan(struct cmdctx *x)
{
	struct walk	w = { NULL, 0, 0, STORE_OK, 1 };
	uint64_t	cursor;
	long long	count = 10;
	char		next[24];
	size_t		i;
	int		r, other_type = 0;

	if (scan_cursor(x->argv[1], x->argvlen[1], &cursor) == -1) {
		reply_error(x->c, "ERR invalid cursor");
		return STORE_OK;
	}
	for (i = 2; i < x->argc; i += 2) {
		if (i + 1 >= x->argc) {
			reply_syntax_error(x->c);
			return STORE_OK;
		}
		if (arg_eq(x, i, "match")) {
			w.pat = x->argv[i + 1];
			w.patlen = x->argvlen[i + 1];
		} else if (arg_eq(x, i, "count")) {
			if (arg_ll(x, i + 1, &count) == -1)
				return STORE_OK;
			if (count < 1) {
				reply_syntax_error(x->c);
				return STORE_OK;
			}
		} else if (arg_eq(x, i, "type"))
			other_type = !eqcase(x->argv[i + 1], x->argvlen[i + 1],
			    "set");
		else {
			reply_syntax_error(x->c);
			return STORE_OK;
		}
	}
	scratch.len = 0;
	r = store_queue_scan(server.store, &cursor, (size_t)count, walk_total,
	    &w);
	if (r == STORE_OK)
		r = w.r;
	if (r != STORE_OK)
		return r;
	if (other_type) {
		scratch.len = 0;
		w.n = 0;
	}
	snprintf(next, sizeof(next), "%llu", (unsigned long long)cursor);
	reply_array(x->c, 2);
	reply_bulkstr(x->c, next);
	reply_scratch_array(x->c, w.n);
	return STORE_OK;
}
