/*
 * The wheel's mover (store_wheel_turn) against a real environment: what a
 * pass moves, when it does nothing, passes split over several calls, and
 * that what it moved is taken in due order and never early; the move of an
 * older environment's far keys to far.db.
 */
#include <criterion/criterion.h>
#include <db.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "store.h"
#include "testenv.h"
#include "util.h"

#define W	1000		/* wheel_bucket_ms */

static struct config	 cfg;
static struct store	*s;
static char		 dir[] = "/tmp/dq-test-wheel-XXXXXX";
static size_t		 moved;

static void
count_moves(size_t n)
{
	moved += n;
}

static void
setup(void)
{
	testenv_config(&cfg, dir);
	cfg.wheel_bucket_ms = W;
	testenv_open(&cfg, &s);
	store_set_wheel_hook(s, count_moves);
	moved = 0;
}

static void
teardown(void)
{
	testenv_close(&cfg, s, dir);
}

static uint32_t
queue(const char *name)
{
	uint32_t	qid;

	cr_assert_eq(store_queue_create(s, name, strlen(name), &qid),
	    STORE_OK);
	return qid;
}

/* Adds messages due at t0 + delays[i], bodies "0", "1", ... */
static void
add(uint32_t qid, uint64_t t0, const uint64_t *delays, size_t n)
{
	char	body[16];
	size_t	i;

	for (i = 0; i < n; i++) {
		snprintf(body, sizeof(body), "%zu", i);
		cr_assert_eq(store_msg_add(s, qid, t0 + delays[i], body,
		    strlen(body), NULL, NULL), STORE_OK);
	}
	cr_assert_eq(store_commit(s), STORE_OK);
}

/* Runs passes at `now` until one is done; the number of calls. */
static int
turn(uint64_t now, size_t max)
{
	int	more, calls = 0;

	do {
		cr_assert_eq(store_wheel_turn(s, now, max, &more), STORE_OK);
		calls++;
	} while (more);
	return calls;
}

struct seen {
	uint64_t	due[64];
	size_t		n;
};

static int
record(void *arg, const struct store_msg *m)
{
	struct seen	*sn = arg;

	sn->due[sn->n++] = m->due;
	return 0;
}

static size_t
take(uint32_t qid, uint64_t now, struct seen *sn)
{
	struct store_take	t;

	memset(&t, 0, sizeof(t));
	t.now = now;
	t.max = 64;
	t.fn = record;
	t.arg = sn;
	cr_assert_eq(store_msg_take(s, qid, &t), STORE_OK);
	cr_assert_eq(store_commit(s), STORE_OK);
	return t.n;
}

TestSuite(wheel, .init = setup, .fini = teardown);

Test(wheel, moves_a_bucket_one_bucket_ahead)
{
	uint64_t	t0 = now_ms();
	uint64_t	d[] = { 10500, 10200, 20100, 10900, 500 };
	uint64_t	b10 = (t0 + 10200) - (t0 + 10200) % W;
	uint32_t	q = queue("q");
	struct seen	sn = { { 0 }, 0 };

	cr_assert_eq(store_wheel_ms(s), W);
	add(q, t0, d, 5);
	turn(t0, 100);
	cr_assert_eq(moved, 0, "nothing is a bucket from its start yet");
	/* Taken at t0 + 600: only the near one, whatever is far. */
	cr_assert_eq(take(q, t0 + 600, &sn), 1);
	/* A bucket moves once it starts within one bucket of now. */
	turn(b10 - W - 1, 100);
	cr_assert_eq(moved, 0);
	turn(b10 - W, 100);
	/* 10200, 10500 and 10900 span one bucket or two. */
	cr_assert_eq(moved, 1 + (t0 + 10500 < b10 + W) +
	    (t0 + 10900 < b10 + W));
	turn(t0 + 20100, 100);
	cr_assert_eq(moved, 4, "every far message moved, once");
	/* None before its due time, in due order. */
	sn.n = 0;
	cr_assert_eq(take(q, t0 + 10199, &sn), 0);
	cr_assert_eq(take(q, t0 + 10900, &sn), 3);
	cr_assert_eq(sn.due[0], t0 + 10200);
	cr_assert_eq(sn.due[1], t0 + 10500);
	cr_assert_eq(sn.due[2], t0 + 10900);
}

Test(wheel, a_pass_runs_once_per_bucket)
{
	uint64_t	t0 = now_ms();
	uint64_t	d[] = { 30000 };
	uint32_t	q = queue("q");

	add(q, t0, d, 1);
	cr_assert_eq(turn(t0 + 40000, 100), 1);
	cr_assert_eq(moved, 1);
	/* Within the same bucket a pass returns at once. */
	cr_assert_eq(turn(t0 + 40000 + W / 4, 100), 1);
	cr_assert_eq(moved, 1);
}

Test(wheel, a_pass_split_over_calls_moves_every_queue)
{
	uint64_t	t0 = now_ms();
	uint64_t	d[20];
	uint32_t	q1 = queue("a"), q2 = queue("b"), q3 = queue("c");
	size_t		i;
	int		calls;

	for (i = 0; i < 20; i++)
		d[i] = 5000 + 100 * i;
	add(q1, t0, d, 20);
	add(q3, t0, d, 20);
	(void)q2;		/* empty, between two that are not */
	calls = turn(t0 + 60000, 7);
	cr_assert_eq(moved, 40);
	cr_assert_geq(calls, 6, "at most 7 per call: %d calls", calls);
}

Test(wheel, a_consumer_moves_a_due_bucket_itself)
{
	uint64_t	t0 = now_ms();
	uint64_t	d[] = { 5000, 5100, 9000 };
	uint32_t	q = queue("q");
	struct seen	sn = { { 0 }, 0 };

	add(q, t0, d, 3);
	/* The housekeeper never ran: the taker moves what is due. */
	cr_assert_eq(take(q, t0 + 5100, &sn), 2);
	cr_assert_eq(sn.due[0], t0 + 5000);
	cr_assert_eq(sn.due[1], t0 + 5100);
	cr_assert_geq(moved, 2);
	cr_assert_eq(take(q, t0 + 8999, &sn), 0);
	cr_assert_eq(take(q, t0 + 9000, &sn), 1);
}

/*
 * QSTAT walks the smaller side of now, which may be hundreds of thousands
 * of keys, and QPEEK may read them all: a walk that kept a read lock on
 * every page it passed ran out of Berkeley DB's lock table (20,000) and
 * failed with ENOMEM.
 */
struct order {
	size_t		n, disorder;
	uint64_t	due, seq;
};

static int
count_in_order(void *arg, const struct store_msg *m)
{
	struct order	*o = arg;

	if (o->n > 0 && (m->due < o->due || (m->due == o->due &&
	    m->seq <= o->seq)))
		o->disorder++;
	o->n++;
	o->due = m->due;
	o->seq = m->seq;
	return 0;
}

Test(wheel, stat_of_a_queue_with_many_ready_and_many_waiting,
    .timeout = 120)
{
	static char	body[200];
	struct store_qstat qs;
	struct order	co = { 0, 0, 0, 0 };
	uint64_t	t0 = now_ms();
	uint32_t	q = queue("q");
	int		i, j;

	memset(body, 'x', sizeof(body));
	for (i = 0; i < 600; i++) {
		for (j = 0; j < 1000; j++)
			cr_assert_eq(store_msg_add(s, q, i < 300 ? t0 - 1000 :
			    t0 + 3600000 + j, body, sizeof(body), NULL, NULL),
			    STORE_OK);
		cr_assert_eq(store_commit(s), STORE_OK);
	}
	cr_assert_eq(store_queue_stat(s, q, t0, &qs), STORE_OK, "%s",
	    store_errstr(s));
	store_abort(s);
	cr_assert_eq(qs.ready, 300000);
	cr_assert_eq(qs.delayed, 300000);
	cr_assert_eq(qs.next_due, (int64_t)(t0 + 3600000));
	/* And QPEEK of them all, the far ones read message by message. */
	cr_assert_eq(store_msg_peek(s, q, SIZE_MAX, count_in_order, &co),
	    STORE_OK, "%s", store_errstr(s));
	store_abort(s);
	cr_assert_eq(co.n, 600000);
	cr_assert_eq(co.disorder, 0);
}

/* QPEEK merges the near keys with the far buckets, read one at a time,
   in due order, whatever the count asked for. */
Test(wheel, peek_merges_buckets_in_due_order)
{
	uint64_t	t0 = now_ms();
	uint64_t	d[] = { 9300, 100, 5200, 9100, 5100, 300, 7400, 9200 };
	uint32_t	q = queue("q");
	struct seen	sn = { { 0 }, 0 };
	size_t		i;

	add(q, t0, d, 8);
	cr_assert_eq(store_msg_peek(s, q, SIZE_MAX, record, &sn),
	    STORE_OK);
	store_abort(s);
	cr_assert_eq(sn.n, 8);
	for (i = 1; i < sn.n; i++)
		cr_assert_lt(sn.due[i - 1], sn.due[i], "%zu", i);
	cr_assert_eq(sn.due[0], t0 + 100);
	cr_assert_eq(sn.due[7], t0 + 9300);
	sn.n = 0;
	cr_assert_eq(store_msg_peek(s, q, 4, record, &sn), STORE_OK);
	store_abort(s);
	cr_assert_eq(sn.n, 4);
	cr_assert_eq(sn.due[3], t0 + 5200);
}

/* QSTAT of q at now: ready, delayed and next_due as expected. */
static void
stat_is(uint32_t q, uint64_t now, int64_t ready, int64_t delayed,
    int64_t next_due)
{
	struct store_qstat qs;

	cr_assert_eq(store_queue_stat(s, q, now, &qs), STORE_OK);
	store_abort(s);
	cr_assert_eq(qs.ready, ready);
	cr_assert_eq(qs.delayed, delayed);
	cr_assert_eq(qs.next_due, next_due);
}

/* The records of one database of env, all moved into another. */
static void
move_all(DB_ENV *env, DB_TXN *txn, const char *from, const char *to)
{
	DB	*a, *b;
	DBC	*c;
	DBT	 key, val;
	int	 ret;

	cr_assert_eq(db_create(&a, env, 0), 0);
	cr_assert_eq(db_create(&b, env, 0), 0);
	cr_assert_eq(a->open(a, txn, from, NULL, DB_BTREE, 0, 0), 0);
	cr_assert_eq(b->open(b, txn, to, NULL, DB_BTREE, 0, 0), 0);
	cr_assert_eq(a->cursor(a, txn, &c, 0), 0);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((ret = c->get(c, &key, &val, DB_NEXT)) == 0) {
		cr_assert_eq(b->put(b, txn, &key, &val, 0), 0);
		cr_assert_eq(c->del(c, 0), 0);
	}
	cr_assert_eq(ret, DB_NOTFOUND);
	cr_assert_eq(c->close(c), 0);
	cr_assert_eq(a->close(a, 0), 0);
	cr_assert_eq(b->close(b, 0), 0);
}

/* Makes home look as an older build left it: the records of each
   moves[i][0] in moves[i][1], and seq.db without the mark of the move. */
static void
make_older(const char *home, const char *const moves[][2], size_t n,
    const char *mark)
{
	DB_ENV	*env;
	DB_TXN	*txn;
	DB	*seq;
	DBT	 key;
	size_t	 i;

	cr_assert_eq(db_env_create(&env, 0), 0);
	cr_assert_eq(env->open(env, home, DB_CREATE | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN, 0600), 0);
	cr_assert_eq(env->txn_begin(env, NULL, &txn, 0), 0);
	for (i = 0; i < n; i++)
		move_all(env, txn, moves[i][0], moves[i][1]);
	cr_assert_eq(db_create(&seq, env, 0), 0);
	cr_assert_eq(seq->open(seq, txn, "seq.db", NULL, DB_BTREE, 0, 0), 0);
	memset(&key, 0, sizeof(key));
	key.data = (void *)mark;
	key.size = (uint32_t)strlen(mark);
	cr_assert_eq(seq->del(seq, txn, &key, 0), 0);
	cr_assert_eq(seq->close(seq, 0), 0);
	cr_assert_eq(txn->commit(txn, 0), 0);
	cr_assert_eq(env->close(env, 0), 0);
}

/* As the builds before far.db: far keys in msgs.db. */
static void
make_old(const char *home)
{
	static const char *const moves[][2] = { { "far.db", "msgs.db" } };

	make_older(home, moves, 1, "far_db");
}

/*
 * Before far.db, msgs.db held the far keys too.  The first start of such
 * an environment moves them over: they are counted, peeked and delivered
 * when due, as if they had been made here.
 */
Test(wheel, an_older_environments_far_keys_move_to_far_db)
{
	char		 err[512];
	uint64_t	 t0 = now_ms();
	uint64_t	 d[] = { 100, 5200, 9100, 5100 };
	uint32_t	 q = queue("q"), q2 = queue("q2");
	struct seen	 sn = { { 0 }, 0 };

	add(q, t0, d, 4);
	add(q2, t0, d + 1, 2);
	store_close(s);
	make_old(cfg.data_dir);
	cr_assert_eq(store_recover(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_open(&cfg, 0, &s, err, sizeof(err)), 0, "%s", err);
	stat_is(q, t0 + 5150, 2, 2, (int64_t)(t0 + 5200));
	cr_assert_eq(store_msg_peek(s, q2, SIZE_MAX, record, &sn), STORE_OK);
	store_abort(s);
	cr_assert_eq(sn.n, 2);
	sn.n = 0;
	cr_assert_eq(take(q, t0 + 9100, &sn), 4);
	cr_assert_eq(sn.due[0], t0 + 100);
	cr_assert_eq(sn.due[1], t0 + 5100);
	cr_assert_eq(sn.due[3], t0 + 9100);
	cr_assert_eq(take(q2, t0 + 9100, &sn), 2);
	/* Done once: the next start finds nothing to move. */
	store_close(s);
	cr_assert_eq(store_recover(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_open(&cfg, 0, &s, err, sizeof(err)), 0, "%s", err);
}

/*
 * QSTAT walks both sides of now side by side: a far bucket that has
 * started (the housekeeper is behind) holds ready messages, counted as
 * ready whichever side ends first.
 */
Test(wheel, stat_counts_a_started_buckets_messages_ready)
{
	uint64_t	t0 = now_ms();
	uint64_t	few[] = { 5100, 5200, 9000 };
	uint64_t	many[20];
	uint32_t	q = queue("q");
	size_t		i;

	for (i = 0; i < 20; i++)
		many[i] = 3600000 + i;
	add(q, t0, few, 3);
	/* Far ahead: the later side is long, the ready side ends first. */
	add(q, t0, many, 20);
	stat_is(q, t0 + 5200, 2, 21, (int64_t)(t0 + 9000));
	/* 60 due near keys: the later side (23 far keys) ends first. */
	for (i = 0; i < 20; i++)
		many[i] = 1 + i;
	add(q, t0, many, 20);
	add(q, t0, many, 20);
	add(q, t0, many, 20);
	stat_is(q, t0 + 5200, 62, 21, (int64_t)(t0 + 9000));
}

/*
 * A pass whose commit fails (a deadlock on a write deferred to the commit)
 * leaves no transaction open: the housekeeper's next operation ran in the
 * dead one ("previous transaction deadlock return not resolved").
 */
Test(wheel, a_failed_commit_ends_the_transaction)
{
	uint64_t	t0 = now_ms();
	uint64_t	d[] = { 10200, 10300, 10400 };
	uint32_t	q = queue("q");
	int		more;

	add(q, t0, d, 3);
	store_fake_deadlocks(s, 1);
	cr_assert_eq(store_wheel_turn(s, t0 + 10400, 100, &more),
	    STORE_RETRY);
	cr_assert_not(store_in_txn(s), "the failed pass left its "
	    "transaction open");
	cr_assert_eq(moved, 0);
	turn(t0 + 10400, 100);
	cr_assert_eq(moved, 3, "the next pass moved what the failed one "
	    "had not");
}

/* Records in file of the environment at home (opened alone). */
static size_t
records_in(const char *home, const char *file)
{
	DB_ENV	*env;
	DB	*db;
	DBC	*c;
	DBT	 key, val;
	size_t	 n = 0;
	int	 ret;

	cr_assert_eq(db_env_create(&env, 0), 0);
	cr_assert_eq(env->open(env, home, DB_CREATE | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN, 0600), 0);
	cr_assert_eq(db_create(&db, env, 0), 0);
	cr_assert_eq(db->open(db, NULL, file, NULL, DB_BTREE, 0, 0), 0);
	cr_assert_eq(db->cursor(db, NULL, &c, 0), 0);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((ret = c->get(c, &key, &val, DB_NEXT)) == 0)
		n++;
	cr_assert_eq(ret, DB_NOTFOUND);
	cr_assert_eq(c->close(c), 0);
	cr_assert_eq(db->close(db, 0), 0);
	cr_assert_eq(env->close(env, 0), 0);
	return n;
}

/*
 * Four writers (process slots 0 to 3) add far messages to one queue, two
 * each, due 5100 + 100 * slot and 9100 + 100 * slot; the server id of
 * slot 2's first goes to id2.
 */
static void
add_from_four_slots(uint32_t q, uint64_t t0, char *id2, size_t *id2len)
{
	char		 err[512];
	struct store	*w;
	int		 slot;

	for (slot = 0; slot < 4; slot++) {
		w = s;
		if (slot > 0)
			cr_assert_eq(store_open(&cfg, slot, &w, err,
			    sizeof(err)), 0, "%s", err);
		cr_assert_eq(store_msg_add(w, q, t0 + 5100 + 100 * slot, "a",
		    1, slot == 2 ? id2 : NULL, slot == 2 ? id2len : NULL),
		    STORE_OK);
		cr_assert_eq(store_msg_add(w, q, t0 + 9100 + 100 * slot, "b",
		    1, NULL, NULL), STORE_OK);
		cr_assert_eq(store_commit(w), STORE_OK);
		if (slot > 0)
			store_close(w);
	}
}

/* s opened again, after a store_close, with its hook. */
static void
reopen(void)
{
	testenv_open(&cfg, &s);
	store_set_wheel_hook(s, count_moves);
}

/* What add_from_four_slots added, read through s: all of it. */
static void
four_slots_read(uint32_t q, uint64_t t0, const char *id2, size_t id2len)
{
	struct seen	 sn = { { 0 }, 0 };
	int		 done;

	stat_is(q, t0, 0, 8, (int64_t)(t0 + 5100));
	cr_assert_eq(store_msg_peek(s, q, SIZE_MAX, record, &sn), STORE_OK);
	store_abort(s);
	cr_assert_eq(sn.n, 8);
	cr_assert_eq(sn.due[0], t0 + 5100);
	cr_assert_eq(sn.due[3], t0 + 5400);
	cr_assert_eq(sn.due[7], t0 + 9400);
	/* Found by its id, in the far database of the slot that made it. */
	cr_assert_eq(store_msg_op(s, q, id2, id2len, STORE_CANCEL, 0, 0,
	    &done), STORE_OK);
	cr_assert_eq(store_commit(s), STORE_OK);
	cr_assert_eq(done, 1, "the message of slot 2 not found by its id");
	stat_is(q, t0, 0, 7, (int64_t)(t0 + 5100));
	turn(t0 + 9400, 100);
	cr_assert_eq(moved, 7, "the mover missed a far database: %zu", moved);
	sn.n = 0;
	cr_assert_eq(take(q, t0 + 9400, &sn), 7);
	cr_assert_eq(sn.due[0], t0 + 5100);
	cr_assert_eq(sn.due[1], t0 + 5200);
	cr_assert_eq(sn.due[2], t0 + 5400, "the cancelled one is gone");
	cr_assert_eq(sn.due[6], t0 + 9400);
}

/*
 * Each process adds its far keys to a far database of its own (by the
 * slot in their sequence), so that two workers never wait on each other's
 * pages; every read sees them all: QSTAT, QPEEK, lookups by id, the mover
 * and SPOP.
 */
Test(wheel, far_keys_of_four_writers_in_four_databases)
{
	char		id2[64];
	size_t		id2len;
	uint32_t	q = queue("q");
	uint64_t	t0 = now_ms();

	add_from_four_slots(q, t0, id2, &id2len);
	store_close(s);
	cr_assert_eq(records_in(cfg.data_dir, "far.db"), 2);
	cr_assert_eq(records_in(cfg.data_dir, "far1.db"), 2);
	cr_assert_eq(records_in(cfg.data_dir, "far3.db"), 2);
	reopen();
	four_slots_read(q, t0, id2, id2len);
}

/* As the builds with far.db alone: every far key in it. */
static void
make_one_far_db(const char *home)
{
	static const char *const moves[][2] = { { "far1.db", "far.db" },
		{ "far2.db", "far.db" }, { "far3.db", "far.db" } };

	make_older(home, moves, 3, "far_shards");
}

/*
 * An environment from the builds with far.db alone: its first start moves
 * each far key to the far database of the slot in its sequence, where
 * lookups by id look; the next start has nothing to move.
 */
Test(wheel, far_keys_of_one_far_db_move_to_their_writers_databases)
{
	char		id2[64];
	size_t		id2len;
	uint32_t	q = queue("q");
	uint64_t	t0 = now_ms();

	add_from_four_slots(q, t0, id2, &id2len);
	store_close(s);
	make_one_far_db(cfg.data_dir);
	cr_assert_eq(records_in(cfg.data_dir, "far.db"), 8);
	reopen();
	store_close(s);
	cr_assert_eq(records_in(cfg.data_dir, "far.db"), 2);
	cr_assert_eq(records_in(cfg.data_dir, "far2.db"), 2);
	reopen();
	four_slots_read(q, t0, id2, id2len);
}
