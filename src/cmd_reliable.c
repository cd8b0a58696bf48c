/*
 * cmd_reliable: at-least-once delivery (SPEC 4.2).  Producer ids (QPUT,
 * QPUTAT), leases (QRESERVE, QACK, QNACK, QEXTEND), changes by id
 * (QRESCHEDULE, QCANCEL), inspection (QPEEK, QSTAT) and blocking
 * consumers (BSPOP, QRESERVE BLOCK).
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "cmd.h"
#include "resp.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "wake.h"
#include "worker.h"

#define REPLY_CAP	(64 * 1024 * 1024)
/*
 * Messages one QRESERVE leases at most.  Each moves in msgs.db, ids.db and
 * leases.db, in one transaction: about 400,000 small ones ran the lock
 * table (20,000 locks, shared by all processes) out, and the command
 * failed with "Cannot allocate memory" (other clients' commands could too).
 */
#define RESERVE_MAX	100000

static struct buf	items;		/* elements of a reply being built */

static int
arg_id(struct cmdctx *x, size_t i)
{
	if (x->argvlen[i] >= 1 && x->argvlen[i] <= STORE_ID_MAX)
		return 0;
	reply_error(x->c, "ERR invalid message id: must be 1 to %d bytes",
	    STORE_ID_MAX);
	return -1;
}

/* Ids starting with '#' are the server's (key.h). */
static int
arg_producer_id(struct cmdctx *x, size_t i)
{
	if (arg_id(x, i) == -1)
		return -1;
	if (x->argv[i][0] != '#')
		return 0;
	reply_error(x->c, "ERR invalid message id: ids starting with '#' "
	    "are reserved for server-assigned ids");
	return -1;
}

static int
arg_count(struct cmdctx *x, size_t i, long long *n)
{
	if (arg_ll(x, i, n) == -1)
		return -1;
	if (*n >= 0)
		return 0;
	reply_error(x->c, "ERR value is out of range, must be positive");
	return -1;
}

/* A lease: 1 ms to 100 years. */
static int
arg_lease(struct cmdctx *x, size_t i, long long *ms)
{
	if (parse_ll(x->argv[i], x->argvlen[i], ms) == 0 && *ms >= 1 &&
	    *ms <= MAX_DELAY_MS)
		return 0;
	reply_error(x->c, "ERR invalid lease_ms '%.*s': must be an integer "
	    "from 1 to %lld", (int)(x->argvlen[i] > 32 ? 32 : x->argvlen[i]),
	    x->argv[i], MAX_DELAY_MS);
	return -1;
}

/* The queue's qid, or STORE_NOTFOUND. */
static int
queue_of(struct cmdctx *x, uint32_t *qid)
{
	return store_queue_find(server.store, x->argv[1], x->argvlen[1], qid);
}

static void
reply_items(struct client *c, size_t n)
{
	reply_array(c, n);
	if (buf_append(&c->out, items.data, items.len) == -1)
		c->flags |= CLIENT_CLOSE_ASAP;
	items.len = 0;
	if (items.cap > REPLY_CAP / 4)
		buf_free(&items);
}

static int
put(struct cmdctx *x, uint64_t due)
{
	uint32_t	qid;
	int		r, created;

	if (check_disk_room(x) == -1)
		return STORE_OK;
	if ((r = store_queue_create(server.store, x->argv[1], x->argvlen[1],
	    &qid)) != STORE_OK ||
	    (r = store_msg_put(server.store, qid, x->argv[2], x->argvlen[2],
	    due, x->argv[3], x->argvlen[3], &created)) != STORE_OK)
		return r;
	wake_note(wake_bit(x->argv[1], x->argvlen[1]));
	STAT_ADD(enqueued, 1);
	reply_int(x->c, created);
	return STORE_OK;
}

/* QPUT queue id body delay_ms */
int
cmd_qput(struct cmdctx *x)
{
	long long	delay;

	if (arg_queue(x, 1) == -1 || arg_producer_id(x, 2) == -1 ||
	    arg_body(x, 3) == -1 || arg_delay(x, 4, &delay) == -1)
		return STORE_OK;
	return put(x, x->now + (uint64_t)delay);
}

/* QPUTAT queue id body due_unix_ms: a time in the past is due now. */
int
cmd_qputat(struct cmdctx *x)
{
	long long	due;

	if (arg_queue(x, 1) == -1 || arg_producer_id(x, 2) == -1 ||
	    arg_body(x, 3) == -1)
		return STORE_OK;
	if (parse_ll(x->argv[4], x->argvlen[4], &due) == -1 || due < 0 ||
	    (uint64_t)due > x->now + MAX_DELAY_MS) {
		reply_error(x->c, "ERR invalid due_unix_ms '%.*s': must be an "
		    "integer from 0 to now + %lld",
		    (int)(x->argvlen[4] > 32 ? 32 : x->argvlen[4]), x->argv[4],
		    MAX_DELAY_MS);
		return STORE_OK;
	}
	/* A time in the past is now: it must not jump ahead of messages
	   already due. */
	return put(x, (uint64_t)due < x->now ? x->now : (uint64_t)due);
}

/*
 * Nothing to take: wait (CMD_BLOCKED) or, when the deadline has passed,
 * answer with the timeout reply.  The first run sets the deadline; the
 * worker runs the command again when woken (worker.c, wake.h).
 */
static int
block_or_time_out(struct cmdctx *x, long long timeout_ms, uint64_t bits,
    uint64_t head_due, void (*timeout_reply)(struct client *))
{
	struct client	*c = x->c;

	if (c->flags & CLIENT_EXEC) {		/* no waiting inside EXEC */
		timeout_reply(c);
		return STORE_OK;
	}
	if (!(c->flags & (CLIENT_ARMED | CLIENT_BLOCKED)))
		c->block_deadline = timeout_ms > 0 ?
		    mono_ms() + (uint64_t)timeout_ms : 0;
	else if (c->block_deadline != 0 && mono_ms() >= c->block_deadline) {
		timeout_reply(c);
		return STORE_OK;
	}
	c->block_bits = bits;
	c->block_due = head_due;
	return CMD_BLOCKED;
}

/* As Redis: whole milliseconds rounded up, so that only 0 waits for
   ever (1e-9 s is 1 ms, where it was 0: for ever). */
static long long
ms_rounded_up(double secs)
{
	double		ms = secs * 1000;
	long long	n = (long long)ms;

	return n < ms ? n + 1 : n;
}

/* The earliest due time among a queue's messages (0: none). */
static int
head_due(uint32_t qid, uint64_t *due)
{
	uint64_t	d;
	int		r;

	r = store_queue_head(server.store, qid, &d);
	if (r == STORE_NOTFOUND)
		return STORE_OK;
	if (r == STORE_OK && (*due == 0 || d < *due))
		*due = d;
	return r;
}

struct reserve {
	size_t		n;
	uint64_t	now;	/* the command's time: lateness */
};

static int
collect_reserved(void *arg, const struct store_msg *m)
{
	struct reserve	*rs = arg;

	if (resp_add_array(&items, 3) == -1 ||
	    resp_add_bulk(&items, m->id, m->idlen) == -1 ||
	    resp_add_bulk(&items, m->body, m->bodylen) == -1 ||
	    resp_add_int(&items, m->deliveries) == -1)
		return 1;
	stats_delivery(rs->now, m->due, m->deliveries);
	rs->n++;
	return items.len >= REPLY_CAP;
}

static void
reply_empty_array(struct client *c)
{
	reply_array(c, 0);
}

/* QRESERVE queue count lease_ms [BLOCK timeout_ms] */
int
cmd_qreserve(struct cmdctx *x)
{
	struct store_take	t;
	struct reserve		rs = { 0, x->now };
	long long		count, lease, timeout = -1;
	uint32_t		qid;
	uint64_t		due = 0;
	int			r;

	if (x->argc != 4 && x->argc != 6) {
		reply_syntax_error(x->c);
		return STORE_OK;
	}
	if (arg_count(x, 2, &count) == -1 || arg_lease(x, 3, &lease) == -1)
		return STORE_OK;
	if (x->argc == 6) {
		if (!arg_eq(x, 4, "block")) {
			reply_syntax_error(x->c);
			return STORE_OK;
		}
		if (arg_count(x, 5, &timeout) == -1)
			return STORE_OK;
	}
	items.len = 0;
	memset(&t, 0, sizeof(t));
	t.now = x->now;
	t.max = count > RESERVE_MAX ? RESERVE_MAX : (size_t)count;
	t.lease_ms = (uint64_t)lease;
	t.max_deliveries = (uint32_t)server.cfg->max_deliveries;
	t.fn = collect_reserved;
	t.arg = &rs;
	r = queue_of(x, &qid);
	if (r == STORE_OK)
		r = store_msg_take(server.store, qid, &t);
	if (r != STORE_OK && r != STORE_NOTFOUND)
		return r;
	if (rs.n != t.n)
		return STORE_ERR;	/* out of memory after the change */
	STAT_ADD(delivered, t.n);
	if (t.n == 0 && timeout >= 0 && count > 0) {
		if (r == STORE_OK && (r = head_due(qid, &due)) != STORE_OK)
			return r;
		return block_or_time_out(x, timeout,
		    wake_bit(x->argv[1], x->argvlen[1]), due,
		    reply_empty_array);
	}
	reply_items(x->c, t.n);
	return STORE_OK;
}

/* QACK and QCANCEL: queue id [id ...] -> how many applied. */
static int
each_id(struct cmdctx *x, enum store_op op)
{
	uint32_t	qid;
	long long	n = 0;
	size_t		i;
	int		r, done;

	for (i = 2; i < x->argc; i++)
		if (arg_id(x, i) == -1)
			return STORE_OK;
	if ((r = queue_of(x, &qid)) == STORE_NOTFOUND) {
		reply_int(x->c, 0);
		return STORE_OK;
	}
	if (r != STORE_OK)
		return r;
	for (i = 2; i < x->argc; i++) {
		if ((r = store_msg_op(server.store, qid, x->argv[i],
		    x->argvlen[i], op, 0, 0, &done)) != STORE_OK)
			return r;
		n += done;
	}
	if (op == STORE_ACK)
		STAT_ADD(acked, n);
	reply_int(x->c, n);
	return STORE_OK;
}

int
cmd_qack(struct cmdctx *x)
{
	return each_id(x, STORE_ACK);
}

int
cmd_qcancel(struct cmdctx *x)
{
	return each_id(x, STORE_CANCEL);
}

/* QNACK, QEXTEND, QRESCHEDULE: queue id ms -> 1 or 0. */
static int
one_id(struct cmdctx *x, enum store_op op)
{
	long long	ms;
	uint32_t	qid;
	int		r, done = 0;

	if (arg_id(x, 2) == -1)
		return STORE_OK;
	if (op == STORE_EXTEND ? arg_lease(x, 3, &ms) == -1 :
	    arg_delay(x, 3, &ms) == -1)
		return STORE_OK;
	r = queue_of(x, &qid);
	if (r == STORE_OK)
		r = store_msg_op(server.store, qid, x->argv[2], x->argvlen[2],
		    op, x->now + (uint64_t)ms,
		    (uint32_t)server.cfg->max_deliveries, &done);
	if (r != STORE_OK && r != STORE_NOTFOUND)
		return r;
	/* Perhaps due sooner than a blocked consumer expects (a shorter
	   lease too): let it look again. */
	if (done)
		wake_note(wake_bit(x->argv[1], x->argvlen[1]));
	reply_int(x->c, done);
	return STORE_OK;
}

int
cmd_qnack(struct cmdctx *x)
{
	return one_id(x, STORE_NACK);
}

int
cmd_qextend(struct cmdctx *x)
{
	return one_id(x, STORE_EXTEND);
}

int
cmd_qreschedule(struct cmdctx *x)
{
	return one_id(x, STORE_RESCHEDULE);
}

static int
collect_peek(void *arg, const struct store_msg *m)
{
	size_t	*n = arg;

	if (resp_add_array(&items, 4) == -1 ||
	    resp_add_bulk(&items, m->id, m->idlen) == -1 ||
	    resp_add_bulk(&items, m->body, m->bodylen) == -1 ||
	    resp_add_int(&items, (long long)m->due) == -1 ||
	    resp_add_int(&items, m->deliveries) == -1)
		return 1;
	(*n)++;
	return items.len >= REPLY_CAP;
}

/* QPEEK queue count */
int
cmd_qpeek(struct cmdctx *x)
{
	long long	count;
	uint32_t	qid;
	size_t		n = 0;
	int		r;

	if (arg_count(x, 2, &count) == -1)
		return STORE_OK;
	items.len = 0;
	r = queue_of(x, &qid);
	if (r == STORE_OK)
		r = store_msg_peek(server.store, qid, (size_t)count,
		    collect_peek, &n);
	if (r != STORE_OK && r != STORE_NOTFOUND)
		return r;
	reply_items(x->c, n);
	return STORE_OK;
}

static void
reply_field(struct client *c, const char *name, long long v)
{
	reply_bulkstr(c, name);
	reply_int(c, v);
}

/* QSTAT queue: flat field/value pairs. */
int
cmd_qstat(struct cmdctx *x)
{
	struct store_qstat	q;
	uint32_t		qid;
	int			r;

	memset(&q, 0, sizeof(q));
	q.next_due = -1;
	r = queue_of(x, &qid);
	if (r == STORE_OK)
		r = store_queue_stat(server.store, qid, x->now, &q);
	if (r != STORE_OK && r != STORE_NOTFOUND)
		return r;
	reply_array(x->c, 18);
	reply_field(x->c, "messages", q.c[STORE_C_MESSAGES]);
	reply_field(x->c, "ready", q.ready);
	reply_field(x->c, "delayed", q.delayed);
	reply_field(x->c, "reserved", q.reserved);
	reply_field(x->c, "next_due_ms", q.next_due);
	reply_field(x->c, "enqueued_total", q.c[STORE_C_ENQUEUED]);
	reply_field(x->c, "delivered_total", q.c[STORE_C_DELIVERED]);
	reply_field(x->c, "acked_total", q.c[STORE_C_ACKED]);
	reply_field(x->c, "dead_lettered_total", q.c[STORE_C_DEAD]);
	return STORE_OK;
}

struct bspop {
	const char	*name;
	size_t		 namelen;
	int		 got;
	uint64_t	 now;	/* the command's time: lateness */
};

static int
collect_bspop(void *arg, const struct store_msg *m)
{
	struct bspop	*b = arg;

	if (resp_add_array(&items, 2) == -1 ||
	    resp_add_bulk(&items, b->name, b->namelen) == -1 ||
	    resp_add_bulk(&items, m->body, m->bodylen) == -1)
		return 1;
	stats_delivery(b->now, m->due, m->deliveries);
	b->got = 1;
	return 1;
}

static void
reply_nil_array_cb(struct client *c)
{
	reply_nil_array(c);
}

/* BSPOP queue [queue ...] timeout: like BLPOP, seconds, 0 forever. */
int
cmd_bspop(struct cmdctx *x)
{
	struct store_take	t;
	struct bspop		b;
	double			secs;
	uint64_t		bits = 0, due = 0;
	uint32_t		qid;
	size_t			i;
	int			r;

	if (parse_double(x->argv[x->argc - 1], x->argvlen[x->argc - 1],
	    &secs) == -1 || secs > 3153600000.0) {
		reply_error(x->c, "ERR timeout is not a float or out of range");
		return STORE_OK;
	}
	if (secs < 0) {
		reply_error(x->c, "ERR timeout is negative");
		return STORE_OK;
	}
	for (i = 1; i < x->argc - 1; i++)
		if (arg_queue(x, i) == -1)
			return STORE_OK;
	items.len = 0;
	for (i = 1; i < x->argc - 1; i++) {
		bits |= wake_bit(x->argv[i], x->argvlen[i]);
		r = store_queue_find(server.store, x->argv[i], x->argvlen[i],
		    &qid);
		if (r == STORE_NOTFOUND)
			continue;
		if (r != STORE_OK)
			return r;
		memset(&t, 0, sizeof(t));
		memset(&b, 0, sizeof(b));
		b.name = x->argv[i];
		b.namelen = x->argvlen[i];
		b.now = x->now;
		t.now = x->now;
		t.no_id = 1;
		t.max = 1;
		t.max_deliveries = (uint32_t)server.cfg->max_deliveries;
		t.fn = collect_bspop;
		t.arg = &b;
		if ((r = store_msg_take(server.store, qid, &t)) != STORE_OK)
			return r;
		if (t.n > 0) {
			if (!b.got)
				return STORE_ERR;
			STAT_ADD(delivered, 1);
			if (buf_append(&x->c->out, items.data, items.len) ==
			    -1)
				x->c->flags |= CLIENT_CLOSE_ASAP;
			items.len = 0;
			return STORE_OK;
		}
		if ((r = head_due(qid, &due)) != STORE_OK)
			return r;
	}
	return block_or_time_out(x, ms_rounded_up(secs), bits, due,
	    reply_nil_array_cb);
}
