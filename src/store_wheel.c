/*
 * store_wheel: messages due far in the future (doc/storage.md, "The
 * wheel").
 *
 * A message due more than one bucket (wheel_ms) after its enqueue gets a
 * far key (key.h): (qid, bucket start, seq, due), in far.db.  A queue's
 * far keys sort bucket by bucket and within a bucket by arrival (key.c),
 * so an enqueue writes to the newest pages of one of the
 * few buckets of the coming hours, pages the cache holds, instead of a
 * random page of a tree of millions that it does not.  The housekeeper
 * moves each bucket to near keys, sorted by due time, one bucket ahead of
 * its start; a taker that finds a bucket already due (the housekeeper was
 * down) moves it itself.  Nothing is ever delivered from a far key:
 * takers only walk near keys, so the order and the never-early rule of
 * SPOP are unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "key.h"
#include "store_int.h"
#include "util.h"

#define FAR_SEEK_LEN	12	/* qid, MSG_FAR: before every far key */

uint64_t
st_far_bucket(const struct store *s, uint64_t due, uint64_t now)
{
	uint64_t	b = msg_bucket(due, s->wheel_ms);

	return b > now + s->wheel_ms ? b : 0;
}

int
st_far_seek(struct store *s, int shard, uint32_t qid, uint64_t from,
    uint32_t flags, DBC **c, DBT *key, DBT *val)
{
	unsigned char	kb[FAR_SEEK_LEN];
	int		r;

	if ((r = st_cursor_open(s, s->far[shard], c, (flags & DB_RMW) ? 0 :
	    DB_READ_COMMITTED)) != STORE_OK)
		return r;
	be32_put(kb, qid);
	be64_put(kb + 4, MSG_FAR | from);
	dbt_set(key, kb, sizeof(kb));
	if (flags & DB_RMW)
		return st_cursor_get(s, *c, key, val, DB_SET_RANGE | flags,
		    0, "far seek");
	dbt_set(val, NULL, 0);
	val->flags = DB_DBT_PARTIAL;	/* keys only */
	return st_rc(s, (*c)->get(*c, key, val, DB_SET_RANGE | flags),
	    "far seek");
}

/* Decodes a far key of qid; 0 at anything else (the walk ends). */
static int
far_key(const DBT *key, uint32_t qid, struct msg_key *mk)
{
	return msg_key_decode(key->data, key->size, mk) == 0 &&
	    mk->qid == qid && mk->bucket != 0;
}

static int
move_shard(struct store *s, int shard, uint32_t qid, uint64_t until,
    size_t max, size_t *n)
{
	struct msg_key	 mk;
	DBC		*c;
	DBT		 key, val;
	int		 r;

	r = st_far_seek(s, shard, qid, 0, DB_RMW, &c, &key, &val);
	while (r == STORE_OK && *n < max) {
		if (!far_key(&key, qid, &mk) || mk.bucket > until)
			break;
		/* The value is in s->rbuf (st_cursor_get), safe from the
		   writes under the cursor. */
		if ((r = st_cursor_del(s, c, "far del")) != STORE_OK)
			break;
		mk.bucket = 0;
		if ((r = st_add_defer(s, &mk, s->rbuf, val.size, NULL, 0)) !=
		    STORE_OK)
			break;
		(*n)++;
		dbt_set(&key, NULL, 0);
		r = st_cursor_get(s, c, &key, &val, DB_NEXT | DB_RMW, 0,
		    "far next");
	}
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	return st_cursor_close(s, c, r);
}

int
st_wheel_move_queue(struct store *s, uint32_t qid, uint64_t until,
    size_t max, size_t *n)
{
	int	i, r = STORE_OK;

	*n = 0;
	for (i = 0; i < FAR_SHARDS && r == STORE_OK && *n < max; i++)
		r = move_shard(s, i, qid, until, max, n);
	return r;
}

/*
 * The first far key at or after (qid, bucket from) over every far
 * database: qid's, or that of the next queue that has any; STORE_NOTFOUND
 * if there is none.
 */
static int
far_first(struct store *s, uint32_t qid, uint64_t from,
    struct msg_key *first)
{
	struct msg_key	 mk;
	DBC		*c;
	DBT		 key, val;
	int		 i, r, found = 0;

	for (i = 0; i < FAR_SHARDS; i++) {
		r = st_far_seek(s, i, qid, from, 0, &c, &key, &val);
		if (r == STORE_OK && msg_key_decode(key.data, key.size,
		    &mk) == -1)
			r = STORE_ERR;
		if ((r = st_cursor_close(s, c, r)) == STORE_NOTFOUND)
			continue;
		if (r != STORE_OK)
			return r;
		if (!found || mk.qid < first->qid || (mk.qid == first->qid &&
		    mk.bucket < first->bucket))
			*first = mk;
		found = 1;
	}
	return found ? STORE_OK : STORE_NOTFOUND;
}

/*
 * The mover's pass over all queues.  A far key is only ever made for a
 * bucket after now + wheel_ms: once a pass has moved every bucket up to
 * some limit, no far key at or below it can appear again, and the next
 * pass is due when the limit moves on, once per bucket.
 */
int
store_wheel_turn(struct store *s, uint64_t now, size_t max, int *more)
{
	struct msg_key	 mk = { 0, 0, 0, 0 };
	uint64_t	 until = msg_bucket(now + s->wheel_ms, s->wheel_ms);
	uint32_t	 qid;
	size_t		 n = 0, moved;
	int		 r, done = 0;

	*more = 0;
	if (s->wheel_qid == 0 && until == s->wheel_done)
		return STORE_OK;
	if (s->wheel_qid == 0)
		s->wheel_pass = until;
	if ((r = st_txn(s)) != STORE_OK)
		return r;
	for (qid = s->wheel_qid; r == STORE_OK && n < max;) {
		if ((r = far_first(s, qid, 0, &mk)) == STORE_NOTFOUND) {
			r = STORE_OK;
			done = 1;
			break;
		}
		if (r != STORE_OK)
			break;
		if (mk.qid != qid) {
			qid = mk.qid;	/* the next queue with messages */
			continue;
		}
		if (mk.bucket <= until) {
			r = st_wheel_move_queue(s, qid, until, max - n, &moved);
			n += moved;
			if (n >= max)
				break;	/* more of this queue, perhaps */
		}
		if (qid == UINT32_MAX) {
			done = 1;
			break;
		}
		qid++;
	}
	if (r != STORE_OK) {
		store_abort(s);
		return r;
	}
	if ((r = n > 0 ? store_commit(s) : (store_abort(s), STORE_OK)) !=
	    STORE_OK)
		return r;
	if (n > 0 && s->wheel_hook != NULL)
		s->wheel_hook(n);
	s->wheel_qid = done ? 0 : qid;
	if (done)
		s->wheel_done = s->wheel_pass;
	*more = !done;
	return STORE_OK;
}

static int
count_shard(struct store *s, int shard, uint32_t qid, uint64_t from,
    uint64_t to, int64_t *n, uint64_t *next)
{
	struct msg_key	 mk;
	DBC		*c;
	DBT		 key, val;
	int		 r;

	/*
	 * Buckets come in order of their start, and a bucket holds nothing
	 * due before its start: the walk ends at the first bucket that
	 * starts after `to` and after the best next due time found.
	 */
	r = st_far_seek(s, shard, qid, msg_bucket(from, s->wheel_ms), 0, &c,
	    &key, &val);
	while (r == STORE_OK && far_key(&key, qid, &mk)) {
		if (mk.bucket > to && (next == NULL ||
		    (*next != 0 && mk.bucket >= *next)))
			break;
		if (mk.due >= from && mk.due <= to)
			(*n)++;
		else if (mk.due > to && next != NULL &&
		    (*next == 0 || mk.due < *next))
			*next = mk.due;
		r = st_rc(s, c->get(c, &key, &val, DB_NEXT), "far next");
	}
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	return st_cursor_close(s, c, r);
}

int
st_far_count(struct store *s, uint32_t qid, uint64_t from, uint64_t to,
    int64_t *n, uint64_t *next)
{
	int	i, r = STORE_OK;

	for (i = 0; i < FAR_SHARDS && r == STORE_OK; i++)
		r = count_shard(s, i, qid, from, to, n, next);
	return r;
}

/* The first bucket of qid from `from` on, over every far database. */
static int
first_bucket(struct store *s, uint32_t qid, uint64_t from, uint64_t *bucket)
{
	struct msg_key	mk;
	int		r;

	if ((r = far_first(s, qid, from, &mk)) == STORE_OK && mk.qid != qid)
		r = STORE_NOTFOUND;
	if (r == STORE_OK)
		*bucket = mk.bucket;
	return r;
}

int
st_far_head(struct store *s, uint32_t qid, uint64_t *bucket)
{
	return first_bucket(s, qid, 0, bucket);
}

static int
ref_cmp(const void *a, const void *b)
{
	const struct far_ref	*x = a, *y = b;

	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

/* Appends a far key to *ap. */
static int
ref_add(struct store *s, const struct msg_key *mk, struct far_ref **ap,
    size_t *cap, size_t *n)
{
	struct far_ref	*p;

	if (*n == *cap) {
		if ((p = dq_reallocarray(*ap, *cap ? 2 * *cap : 64,
		    sizeof(*p))) == NULL) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			return STORE_ERR;
		}
		*ap = p;
		*cap = *cap ? 2 * *cap : 64;
	}
	(*ap)[*n].due = mk->due;
	(*ap)[*n].seq = mk->seq;
	(*ap)[(*n)++].bucket = mk->bucket;
	return STORE_OK;
}

/* Keys only; one bucket at a time, so memory is one bucket's keys. */
int
st_far_bucket_read(struct store *s, uint32_t qid, uint64_t from,
    struct far_ref **ap, size_t *cap, size_t *np)
{
	struct msg_key	 mk;
	DBC		*c;
	DBT		 key, val;
	uint64_t	 bucket;
	size_t		 n = 0;
	int		 i, r;

	*np = 0;
	if ((r = first_bucket(s, qid, from, &bucket)) != STORE_OK)
		return r == STORE_NOTFOUND ? STORE_OK : r;
	for (i = 0; i < FAR_SHARDS; i++) {
		r = st_far_seek(s, i, qid, bucket, 0, &c, &key, &val);
		while (r == STORE_OK && far_key(&key, qid, &mk) &&
		    mk.bucket == bucket &&
		    (r = ref_add(s, &mk, ap, cap, &n)) == STORE_OK)
			r = st_rc(s, c->get(c, &key, &val, DB_NEXT),
			    "far next");
		if (r == STORE_NOTFOUND)
			r = STORE_OK;
		if ((r = st_cursor_close(s, c, r)) != STORE_OK)
			return r;
	}
	if (n > 1)
		qsort(*ap, n, sizeof(**ap), ref_cmp);
	*np = n;
	return STORE_OK;
}

/* A far record of an older layout, into its writer's far database. */
static int
far_put(struct store *s, DBT *key, DBT *val, const char *what)
{
	struct msg_key	 mk;
	DB		*db;

	if (msg_key_decode(key->data, key->size, &mk) == -1 ||
	    mk.bucket == 0) {
		snprintf(s->err, sizeof(s->err), "%s: malformed far key",
		    what);
		return STORE_ERR;
	}
	db = st_far_db(s, mk.seq);
	return st_rc(s, db->put(db, s->txn, key, val, DB_NOOVERWRITE), what);
}

/*
 * Moves up to max far records of msgs.db (an environment made before
 * far.db) to the far databases, from the first queue with any: *n says
 * how many.
 */
static int
split_some(struct store *s, size_t max, size_t *n)
{
	unsigned char	 kb[FAR_SEEK_LEN];
	uint32_t	 qid = 0;
	DBC		*c;
	DBT		 key, val;
	int		 r;

	*n = 0;
	if ((r = st_cursor_open(s, s->msgs, &c, 0)) != STORE_OK)
		return r;
	do {
		be32_put(kb, qid);
		be64_put(kb + 4, MSG_FAR);
		dbt_set(&key, kb, sizeof(kb));
		dbt_set(&val, NULL, 0);
		r = st_rc(s, c->get(c, &key, &val, DB_SET_RANGE | DB_RMW),
		    "split seek");
		while (r == STORE_OK && *n < max &&
		    key.size == MSG_FAR_KEY_LEN && be32_get(key.data) == qid) {
			if ((r = far_put(s, &key, &val, "split put")) !=
			    STORE_OK ||
			    (r = st_cursor_del(s, c, "split del")) !=
			    STORE_OK)
				break;
			(*n)++;
			r = st_rc(s, c->get(c, &key, &val, DB_NEXT | DB_RMW),
			    "split next");
		}
		/* Past this queue's far keys: the next queue, if any. */
		if (r == STORE_OK && *n < max && key.size >= QID_LEN &&
		    be32_get(key.data) > qid)
			qid = be32_get(key.data);
		else if (r == STORE_OK && *n < max && qid < UINT32_MAX &&
		    be32_get(key.data) == qid)
			qid++;
		else
			break;
	} while (r == STORE_OK);
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	return st_cursor_close(s, c, r);
}

/*
 * A move done once at the start (store.c, move_once), in transactions of
 * up to 1000 records: step moves the next ones and says whether it is
 * done; *moved counts them.
 */
static int
move_in_rounds(struct store *s, int (*step)(struct store *, void *, size_t,
    size_t *, int *), void *arg, size_t *moved)
{
	size_t	n;
	int	r, done = 0;

	*moved = 0;
	while (!done) {
		if ((r = st_txn(s)) != STORE_OK)
			return r;
		if ((r = step(s, arg, 1000, &n, &done)) != STORE_OK) {
			store_abort(s);
			return r;	/* alone at the start: no deadlock */
		}
		if ((r = store_commit(s)) != STORE_OK)
			return r;
		*moved += n;
	}
	return STORE_OK;
}

/* A round of split_some: each starts from the first queue again. */
static int
split_step(struct store *s, void *arg, size_t max, size_t *n, int *done)
{
	int	r;

	(void)arg;
	r = split_some(s, max, n);
	*done = *n == 0;
	return r;
}

int
st_wheel_split(struct store *s, size_t *moved)
{
	return move_in_rounds(s, split_step, NULL, moved);
}

/* Where spread_some walks on from: the last key it looked at. */
struct spread_pos {
	unsigned char	key[MSG_KEY_MAX];
	size_t		len;		/* 0: from the first */
};

/*
 * Moves up to max records of far.db that belong in another far database
 * (an environment made when far.db was the only one), walking on from the
 * spread_pos at arg; *done once the walk reached the end.
 */
static int
spread_some(struct store *s, void *arg, size_t max, size_t *n, int *done)
{
	struct spread_pos	*pos = arg;
	struct msg_key		 mk;
	DBC			*c;
	DBT			 key, val;
	int			 r;

	*n = 0;
	if ((r = st_cursor_open(s, s->far[0], &c, 0)) != STORE_OK)
		return r;
	dbt_set(&key, pos->key, pos->len);
	dbt_set(&val, NULL, 0);
	r = st_rc(s, c->get(c, &key, &val, (pos->len ? DB_SET_RANGE :
	    DB_FIRST) | DB_RMW), "spread seek");
	while (r == STORE_OK && *n < max) {
		if (msg_key_decode(key.data, key.size, &mk) == -1 ||
		    mk.bucket == 0) {
			snprintf(s->err, sizeof(s->err), "malformed far key");
			r = STORE_ERR;
			break;
		}
		memcpy(pos->key, key.data, key.size);
		pos->len = key.size;
		if (st_far_db(s, mk.seq) != s->far[0]) {
			if ((r = far_put(s, &key, &val, "spread put")) !=
			    STORE_OK ||
			    (r = st_cursor_del(s, c, "spread del")) != STORE_OK)
				break;
			(*n)++;
		}
		r = st_rc(s, c->get(c, &key, &val, DB_NEXT | DB_RMW),
		    "spread next");
	}
	*done = r == STORE_NOTFOUND;
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	return st_cursor_close(s, c, r);
}

int
st_wheel_spread(struct store *s, size_t *moved)
{
	struct spread_pos	pos = { { 0 }, 0 };

	return move_in_rounds(s, spread_some, &pos, moved);
}

void
store_set_wheel_hook(struct store *s, void (*fn)(size_t))
{
	s->wheel_hook = fn;
}

uint64_t
store_wheel_ms(const struct store *s)
{
	return s->wheel_ms;
}
