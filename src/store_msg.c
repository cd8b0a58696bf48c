/*
 * store_msg: messages.  Enqueue, take (SPOP, QRESERVE), operations by id,
 * leases and dead letters.  See store.h and doc/storage.md.
 *
 * A reserved message stays in msgs.db, re-keyed by the end of its lease and
 * flagged MSG_F_RESERVED, with a twin key in leases.db.  When the lease runs
 * out the key is simply due: whoever reaches it first (a consumer at the
 * head of the queue, or the housekeeper walking leases.db) ends the lease.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "key.h"
#include "log.h"
#include "store_int.h"
#include "util.h"

/*
 * Message sequence numbers order messages with equal due times.  They are
 * the enqueue time in microseconds, made strictly increasing within the
 * process, with the process' slot in the low bits: enqueue order across
 * all workers without a shared counter or lock, unique without a lookup.
 * A clock stepped back could repeat a number; the puts refuse to
 * overwrite, and the next number is tried.
 */
static uint64_t
next_seq(struct store *s)
{
	struct timespec	ts;
	uint64_t	us, seq;

	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	seq = us << SEQ_SLOT_BITS | (uint64_t)s->slot_bits;
	if (seq <= s->last_seq)
		seq = ((s->last_seq >> SEQ_SLOT_BITS) + 1) << SEQ_SLOT_BITS |
		    (uint64_t)s->slot_bits;
	s->last_seq = seq;
	return seq;
}

/* The message's id; a server id that still names its key is not stored. */
static void
msg_set_id(struct store_msg *m, const DBT *val, const struct msg_hdr *h)
{
	if (h->idlen == 0) {
		m->idlen = msg_server_id(m->sid, sizeof(m->sid), m->due,
		    m->seq);
		m->id = m->sid;
	} else {
		m->id = (const char *)val->data + MSG_HDR_LEN;
		m->idlen = h->idlen;
	}
}

/*
 * Decodes a record.  A server id is formatted only with_id: SPOP does not
 * show ids, and formatting them was 1.4 % of a drain (perf).
 */
static int
msg_decode(const DBT *key, const DBT *val, struct store_msg *m,
    struct msg_key *mk, struct msg_hdr *h, int with_id)
{
	if (msg_key_decode(key->data, key->size, mk) == -1 ||
	    msg_hdr_decode(val->data, val->size, h) == -1)
		return -1;
	m->qid = mk->qid;
	m->due = mk->due;
	m->seq = mk->seq;
	m->deliveries = h->deliveries;
	m->body = (const char *)val->data + MSG_HDR_LEN + h->idlen;
	m->bodylen = val->size - MSG_HDR_LEN - h->idlen;
	m->id = NULL;
	m->idlen = 0;
	if (with_id || h->idlen > 0)
		msg_set_id(m, val, h);
	return 0;
}

static int
msg_from(const DBT *key, const DBT *val, struct store_msg *m)
{
	struct msg_key	mk;
	struct msg_hdr	h;

	return msg_decode(key, val, m, &mk, &h, 1);
}

static int
key_put(struct store *s, DB *db, const void *k, size_t klen, const void *v,
    size_t vlen, uint32_t flags, const char *what)
{
	DBT	key, val;

	dbt_set(&key, k, klen);
	dbt_set(&val, v, vlen);
	s->wrote = 1;
	return st_rc(s, db->put(db, s->txn, &key, &val, flags), what);
}

static int
ids_put(struct store *s, uint32_t qid, const void *id, size_t idlen,
    uint64_t due, uint64_t seq, uint32_t flags)
{
	unsigned char	kb[QID_LEN + MAX_ID_LEN], vb[IDS_VAL_LEN];

	be32_put(kb, qid);
	memcpy(kb + QID_LEN, id, idlen);
	be64_put(vb, due);
	be64_put(vb + 8, seq);
	return key_put(s, s->ids, kb, QID_LEN + idlen, vb, sizeof(vb), flags,
	    "ids put");
}

static int
ids_del(struct store *s, uint32_t qid, const void *id, size_t idlen)
{
	unsigned char	kb[QID_LEN + MAX_ID_LEN];

	be32_put(kb, qid);
	memcpy(kb + QID_LEN, id, idlen);
	return st_del_key(s, s->ids, kb, QID_LEN + idlen, "ids del");
}

/* Leases are of reserved messages, always near keys. */
static int
lease_put(struct store *s, const struct msg_key *mk)
{
	unsigned char	kb[MSG_KEY_MAX];

	return key_put(s, s->leases, kb, msg_key_encode(kb, mk), "", 0, 0,
	    "leases put");
}

static int
lease_del(struct store *s, const struct msg_key *mk)
{
	unsigned char	kb[MSG_KEY_MAX];

	return st_del_key(s, s->leases, kb, msg_key_encode(kb, mk),
	    "leases del");
}

/* Builds a message value in s->vbuf; returns its length or 0 (no memory). */
static size_t
value_build(struct store *s, const struct msg_hdr *h, const void *id,
    const void *body, size_t len)
{
	size_t	n = MSG_HDR_LEN + h->idlen + len;

	/* id and body may point into vbuf itself: build at the far end. */
	if (st_vbuf_reserve(s, 2 * n) != STORE_OK)
		return 0;
	memmove(s->vbuf + n + MSG_HDR_LEN + h->idlen, body, len);
	if (h->idlen > 0)
		memmove(s->vbuf + n + MSG_HDR_LEN, id, h->idlen);
	msg_hdr_encode(s->vbuf + n, h);
	memmove(s->vbuf, s->vbuf + n, n);
	return n;
}

/*
 * Deferred adds (see struct store).  A batch larger than ADDS_MAX_BYTES
 * goes in in parts, each in key order.
 */
#define ADDS_MAX_BYTES	(4u << 20)
#define ADD_KLEN_OFF	MSG_KEY_MAX		/* key, padded with zeros */
#define ADD_VLEN_OFF	(MSG_KEY_MAX + 1)	/* u32 value length */
#define ADD_VAL_OFF	(MSG_KEY_MAX + 5)

static const unsigned char *adds_base;	/* for adds_cmp: qsort has no arg */

static int
adds_cmp(const void *a, const void *b)
{
	/* Padded with zeros, near and far keys compare as Berkeley DB
	   orders them: they differ before the padding. */
	return memcmp(adds_base + *(const size_t *)a,
	    adds_base + *(const size_t *)b, MSG_KEY_MAX);
}

/* Room for one more add of n bytes. */
static int
adds_reserve(struct store *s, size_t n)
{
	size_t	 cap;
	void	*p;

	if (s->alen + n > s->acap) {
		for (cap = s->acap ? s->acap : 65536; cap < s->alen + n;)
			cap *= 2;
		if ((p = dq_realloc(s->abuf, cap)) == NULL)
			goto nomem;
		s->abuf = p;
		s->acap = cap;
	}
	if (s->nadds == s->aoffcap) {
		cap = s->aoffcap ? 2 * s->aoffcap : 1024;
		if ((p = dq_reallocarray(s->aoff, cap, sizeof(*s->aoff))) ==
		    NULL)
			goto nomem;
		s->aoff = p;
		s->aoffcap = cap;
	}
	return STORE_OK;
nomem:
	snprintf(s->err, sizeof(s->err), "out of memory");
	return STORE_ERR;
}

/*
 * A record of msgs.db written at the flush: a new message with a server id
 * (not stored), or one the wheel moves.  Its value is v1 then v2.
 */
int
st_add_defer(struct store *s, const struct msg_key *mk, const void *v1,
    size_t l1, const void *v2, size_t l2)
{
	unsigned char	*p;
	size_t		 vlen = l1 + l2;
	int		 r;

	if (s->alen >= ADDS_MAX_BYTES && (r = st_adds_flush(s)) != STORE_OK)
		return r;
	if ((r = adds_reserve(s, ADD_VAL_OFF + vlen)) != STORE_OK)
		return r;
	p = s->abuf + s->alen;
	memset(p, 0, MSG_KEY_MAX);
	p[ADD_KLEN_OFF] = (unsigned char)msg_key_encode(p, mk);
	be32_put(p + ADD_VLEN_OFF, (uint32_t)vlen);
	memcpy(p + ADD_VAL_OFF, v1, l1);
	if (l2 > 0)
		memcpy(p + ADD_VAL_OFF + l1, v2, l2);
	s->aoff[s->nadds++] = s->alen;
	s->alen += ADD_VAL_OFF + vlen;
	return STORE_OK;
}

int
st_adds_flush(struct store *s)
{
	const unsigned char	*p;
	struct msg_key		 mk;
	size_t			 i;
	int			 r = STORE_OK;

	if (s->nadds == 0)
		return STORE_OK;
	adds_base = s->abuf;
	qsort(s->aoff, s->nadds, sizeof(*s->aoff), adds_cmp);
	for (i = 0; i < s->nadds && r == STORE_OK; i++) {
		p = s->abuf + s->aoff[i];
		if (msg_key_decode(p, p[ADD_KLEN_OFF], &mk) == -1) {
			snprintf(s->err, sizeof(s->err), "malformed key");
			r = STORE_ERR;
			break;
		}
		r = key_put(s, st_msg_db(s, &mk), p, p[ADD_KLEN_OFF],
		    p + ADD_VAL_OFF, be32_get(p + ADD_VLEN_OFF),
		    DB_NOOVERWRITE, "msgs put");
	}
	st_adds_drop(s);
	/* A key already taken (the clock stepped back): the batch runs
	   again, with later sequence numbers. */
	return r == STORE_DUP ? STORE_RETRY : r;
}

void
st_adds_drop(struct store *s)
{
	s->nadds = 0;
	s->alen = 0;
}

/* Writes msgs and ids records of a message under (qid, due, seq). */
static int
msg_write(struct store *s, const struct msg_key *mk, const struct msg_hdr *h,
    const void *id, const void *body, size_t len, uint32_t flags,
    uint32_t idflags)
{
	unsigned char	kb[MSG_KEY_MAX];
	size_t		n;
	int		r;

	if ((n = value_build(s, h, id, body, len)) == 0)
		return STORE_ERR;
	if ((r = key_put(s, st_msg_db(s, mk), kb,
	    msg_key_encode(kb, mk), s->vbuf, n, flags, "msgs put")) !=
	    STORE_OK)
		return r;
	if (!(h->flags & MSG_F_INDEXED))
		return STORE_OK;
	/* value_build may have moved id: it is now in vbuf. */
	return ids_put(s, mk->qid, s->vbuf + MSG_HDR_LEN, h->idlen, mk->due,
	    mk->seq, idflags);
}

/*
 * A new message with a fresh sequence number.  idlen 0 asks for a server
 * id (written to idout, SERVER_ID_MAX bytes, when idout is not NULL): it
 * names the message's key, so such a message needs no entry in ids.db
 * until it moves, and its record waits for st_adds_flush.  A producer's
 * id is always indexed, and written at once.
 */
static int
msg_new(struct store *s, uint32_t qid, uint64_t due, uint32_t deliveries,
    const void *id, size_t idlen, const void *body, size_t len, char *idout,
    size_t *idoutlen)
{
	struct msg_key	 mk;
	struct msg_hdr	 h;
	unsigned char	 hb[MSG_HDR_LEN];
	int		 r;

	h.deliveries = deliveries;
	do {
		mk.qid = qid;
		mk.due = due;
		mk.seq = next_seq(s);
		/* The sequence is the clock in us: no second clock read. */
		mk.bucket = st_far_bucket(s, due,
		    (mk.seq >> SEQ_SLOT_BITS) / 1000);
		if (idlen == 0) {
			/* Not stored: 28 bytes less to log, twice. */
			h.flags = 0;
			h.idlen = 0;
			msg_hdr_encode(hb, &h);
			r = st_add_defer(s, &mk, hb, sizeof(hb), body, len);
		} else {
			h.flags = MSG_F_INDEXED;
			h.idlen = (uint16_t)idlen;
			r = msg_write(s, &mk, &h, id, body, len,
			    DB_NOOVERWRITE, 0);
		}
	} while (r == STORE_DUP);	/* a clock stepped back: next number */
	if (r != STORE_OK)
		return r;
	if (idout != NULL && idlen == 0)
		*idoutlen = msg_server_id(idout, SERVER_ID_MAX, due, mk.seq);
	if ((r = st_count_add(s, qid, STORE_C_MESSAGES, 1)) != STORE_OK)
		return r;
	return st_count_add(s, qid, STORE_C_ENQUEUED, 1);
}

int
store_msg_add(struct store *s, uint32_t qid, uint64_t due, const void *body,
    size_t len, char *idout, size_t *idlen)
{
	int	r;

	if ((r = st_txn(s)) != STORE_OK)
		return r;
	return msg_new(s, qid, due, 0, NULL, 0, body, len, idout, idlen);
}

/* Reads the value stored under a msgs key into s->rbuf. */
static int
msg_get(struct store *s, const struct msg_key *mk, uint32_t flags, DBT *val)
{
	unsigned char	kb[MSG_KEY_MAX];
	DB		*db = st_msg_db(s, mk);
	size_t		klen;
	DBT		key;
	int		ret;

	if ((ret = st_adds_flush(s)) != STORE_OK)
		return ret;
	klen = msg_key_encode(kb, mk);
	for (;;) {
		dbt_set(&key, kb, klen);
		dbt_set(val, s->rbuf, 0);
		val->ulen = (uint32_t)s->rcap;
		val->flags = DB_DBT_USERMEM;
		ret = db->get(db, s->txn, &key, val,
		    st_read_flags(s, flags));
		if (ret != DB_BUFFER_SMALL)
			return st_rc(s, ret, "msgs get");
		if (st_rbuf_reserve(s, val->size) != STORE_OK)
			return STORE_ERR;
	}
}

/* Where ids.db says the message with this id is. */
static int
ids_get(struct store *s, uint32_t qid, const void *id, size_t idlen,
    struct msg_key *mk)
{
	unsigned char	kb[QID_LEN + MAX_ID_LEN], vb[IDS_VAL_LEN];
	DBT		key, val;
	int		r;

	be32_put(kb, qid);
	memcpy(kb + QID_LEN, id, idlen);
	dbt_set(&key, kb, QID_LEN + idlen);
	dbt_set(&val, vb, sizeof(vb));
	val.ulen = sizeof(vb);
	val.flags = DB_DBT_USERMEM;
	r = st_rc(s, s->ids->get(s->ids, s->txn, &key, &val, DB_RMW),
	    "ids get");
	if (r != STORE_OK)
		return r;
	if (val.size != IDS_VAL_LEN)
		return STORE_NOTFOUND;
	mk->qid = qid;
	mk->due = be64_get(vb);
	mk->seq = be64_get(vb + 8);
	return STORE_OK;
}

/*
 * Reads the message (qid, due, seq) under its near key or its far key, the
 * one it is more likely under first: *mk says which it was found under.
 */
static int
msg_get_either(struct store *s, struct msg_key *mk, DBT *val)
{
	uint64_t	far = msg_bucket(mk->due, s->wheel_ms);
	int		i, r = STORE_NOTFOUND;

	mk->bucket = st_far_bucket(s, mk->due, now_ms());
	for (i = 0; i < 2 && r == STORE_NOTFOUND; i++) {
		r = msg_get(s, mk, DB_RMW, val);
		if (r == STORE_NOTFOUND)
			mk->bucket = mk->bucket ? 0 : far;
	}
	return r;
}

/*
 * Finds the message with this id, write-locked: its key, header and the
 * parsed record (pointing into s->rbuf).  A server id names the message's
 * first key, tried before ids.db, which knows the messages that moved;
 * with moved, only ids.db is asked: a reserved message has always moved
 * (QACK, QNACK and QEXTEND save the two lookups of its first key).
 */
static int
find_msg(struct store *s, uint32_t qid, const void *id, size_t idlen,
    int moved, struct msg_key *mk, struct msg_hdr *h, struct store_msg *m)
{
	unsigned char	kb[MSG_KEY_MAX];
	DBT		key, val;
	int		r, tries;

	if (idlen == 0 || idlen > MAX_ID_LEN)
		return STORE_NOTFOUND;
	mk->qid = qid;
	tries = !moved &&
	    msg_server_id_parse(id, idlen, &mk->due, &mk->seq) == 0 ? 2 : 1;
	while (tries-- > 0) {
		if (tries == 0 && (r = ids_get(s, qid, id, idlen, mk)) !=
		    STORE_OK)
			return r;
		r = msg_get_either(s, mk, &val);
		if (r == STORE_NOTFOUND)
			continue;
		if (r != STORE_OK)
			return r;
		dbt_set(&key, kb, msg_key_encode(kb, mk));
		if (msg_from(&key, &val, m) == -1 ||
		    msg_hdr_decode(val.data, val.size, h) == -1)
			return STORE_ERR;
		if (m->idlen == idlen && memcmp(m->id, id, idlen) == 0)
			return STORE_OK;
	}
	return STORE_NOTFOUND;
}

/*
 * Deletes a msgs record: through the cursor c standing on it (no second
 * search from the root), or by its key when c is NULL.
 */
static int
msgs_del(struct store *s, DBC *c, const struct msg_key *mk)
{
	unsigned char	kb[MSG_KEY_MAX];

	if (c != NULL)
		return st_cursor_del(s, c, "msgs del");
	return st_del_key(s, st_msg_db(s, mk), kb,
	    msg_key_encode(kb, mk), "msgs del");
}

/* Deletes a message's records (msgs, ids, lease) and counts it gone. */
static int
msg_delete(struct store *s, DBC *c, const struct msg_key *mk,
    const struct msg_hdr *h, const void *id)
{
	int	r;

	if ((r = msgs_del(s, c, mk)) != 0 ||
	    ((h->flags & MSG_F_INDEXED) &&
	    (r = ids_del(s, mk->qid, id, h->idlen)) != 0))
		return r;
	if (h->flags & MSG_F_RESERVED) {
		if ((r = lease_del(s, mk)) != 0 || (r = st_count_add(s,
		    mk->qid, STORE_C_RESERVED, -1)) != 0)
			return r;
	}
	return st_count_add(s, mk->qid, STORE_C_MESSAGES, -1);
}

/*
 * Moves a message to a new due time, reserved or not (flags): the sequence
 * number stays, ids.db follows, and so does the lease.
 */
static int
msg_move(struct store *s, DBC *c, const struct msg_key *mk,
    struct msg_hdr *h, const struct store_msg *m, uint64_t due, uint8_t flags)
{
	struct msg_key	nk = *mk;
	int		r;

	if ((r = msgs_del(s, c, mk)) != 0)
		return r;
	if ((h->flags & MSG_F_RESERVED) && (r = lease_del(s, mk)) != 0)
		return r;
	if ((h->flags & MSG_F_RESERVED) != (flags & MSG_F_RESERVED) &&
	    (r = st_count_add(s, mk->qid, STORE_C_RESERVED,
	    (flags & MSG_F_RESERVED) ? 1 : -1)) != 0)
		return r;
	nk.due = due;
	nk.bucket = 0;		/* moved messages are near (store_wheel.c) */
	/* Its id no longer names its key: stored, and ids.db knows it. */
	h->flags = flags | MSG_F_INDEXED;
	h->idlen = (uint16_t)m->idlen;
	if ((r = msg_write(s, &nk, h, m->id, m->body, m->bodylen, 0, 0)) !=
	    STORE_OK)
		return r;
	if (flags & MSG_F_RESERVED)
		return lease_put(s, &nk);
	return STORE_OK;
}

int
store_msg_put(struct store *s, uint32_t qid, const void *id, size_t idlen,
    uint64_t due, const void *body, size_t len, int *created)
{
	struct store_msg	m;
	struct msg_key		mk;
	struct msg_hdr		h;
	int			r;

	*created = 0;
	if ((r = st_txn(s)) != STORE_OK)
		return r;
	r = find_msg(s, qid, id, idlen, 0, &mk, &h, &m);
	if (r == STORE_OK) {
		/* Replaced: the old one goes, counted as one message less. */
		if ((r = msg_delete(s, NULL, &mk, &h, id)) != STORE_OK)
			return r;
	} else if (r != STORE_NOTFOUND)
		return r;
	else
		*created = 1;
	return msg_new(s, qid, due, 0, id, idlen, body, len, NULL, NULL);
}

/*
 * A message delivered max_deliveries times and due again goes to the queue
 * "<name>:dead", keeping its id and delivery count, due at once.  Returns
 * STORE_NOTFOUND, changing nothing, when the queue is itself a dead queue
 * (no dead letters of dead letters) or is being deleted.
 */
static int
dead_letter(struct store *s, const struct msg_key *mk, struct msg_hdr *h,
    const struct store_msg *m, uint64_t now)
{
	const size_t	 sfx = sizeof(STORE_DEAD_SUFFIX) - 1;
	char		 name[STORE_DEAD_NAME_MAX + sizeof(STORE_DEAD_SUFFIX)];
	size_t		 nlen;
	uint32_t	 dqid;
	int		 r, done;
	void		*copy;

	/* Room for the name of a dead queue itself, found to be one. */
	if ((r = store_queue_name(s, mk->qid, name, STORE_DEAD_NAME_MAX + 1,
	    &nlen)) != STORE_OK)
		return r;
	if (nlen >= sfx && memcmp(name + nlen - sfx, STORE_DEAD_SUFFIX,
	    sfx) == 0)
		return STORE_NOTFOUND;
	memcpy(name + nlen, STORE_DEAD_SUFFIX, sfx);
	nlen += sfx;
	/* m points into a buffer the next calls reuse. */
	if ((copy = dq_malloc(m->idlen + m->bodylen)) == NULL) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		return STORE_ERR;
	}
	memcpy(copy, m->id, m->idlen);
	memcpy((char *)copy + m->idlen, m->body, m->bodylen);
	if ((r = msg_delete(s, NULL, mk, h, copy)) == STORE_OK &&
	    (r = st_count_add(s, mk->qid, STORE_C_DEAD, 1)) == STORE_OK &&
	    (r = store_queue_create(s, name, nlen, &dqid)) == STORE_OK &&
	    (r = store_msg_op(s, dqid, copy, m->idlen, STORE_CANCEL, 0, 0,
	    &done)) == STORE_OK)
		r = msg_new(s, dqid, now, m->deliveries, copy, m->idlen,
		    (char *)copy + m->idlen, m->bodylen, NULL, NULL);
	if (r == STORE_OK && s->dead_hook != NULL)
		s->dead_hook(name, nlen);
	dq_free(copy);
	return r;
}

void
store_set_dead_hook(struct store *s, void (*fn)(const void *, size_t))
{
	s->dead_hook = fn;
}

/* What to do with a message at the head of a queue. */
static int
take_one(struct store *s, DBC *c, struct store_take *t, const DBT *key,
    const DBT *val, int *stop)
{
	struct store_msg	m;
	struct msg_key		mk;
	struct msg_hdr		h;
	int			r;

	if (msg_decode(key, val, &m, &mk, &h, !t->no_id) == -1) {
		snprintf(s->err, sizeof(s->err), "malformed message record");
		return STORE_ERR;
	}
	/* Delivered max_deliveries times, and due again (lease run out or
	   QNACK): a dead letter. */
	if (t->max_deliveries > 0 && h.deliveries >= t->max_deliveries) {
		if (m.id == NULL)
			msg_set_id(&m, val, &h);
		r = dead_letter(s, &mk, &h, &m, t->now);
		if (r != STORE_NOTFOUND) {
			t->dead += r == STORE_OK;
			return r;
		}
	}
	if (t->lease_ms == 0) {
		*stop = t->fn(t->arg, &m);
		if ((r = msg_delete(s, c, &mk, &h, m.id)) != STORE_OK)
			return r;
	} else {
		m.deliveries = ++h.deliveries;
		*stop = t->fn(t->arg, &m);
		if ((r = msg_move(s, c, &mk, &h, &m, t->now + t->lease_ms,
		    MSG_F_RESERVED)) != STORE_OK)
			return r;
	}
	t->n++;
	return st_count_add(s, mk.qid, STORE_C_DELIVERED, 1);
}

/*
 * A cursor on db for a walk from the key `from` (encoded into kb): key is
 * set to it for DB_SET_RANGE, val to nothing.
 */
static int
walk_open(struct store *s, DB *db, const struct msg_key *from,
    unsigned char kb[MSG_KEY_MAX], DBT *key, DBT *val, DBC **c,
    uint32_t flags)
{
	dbt_set(key, kb, msg_key_encode(kb, from));
	dbt_set(val, NULL, 0);
	return st_cursor_open(s, db, c, flags);
}

/* The walk of store_msg_take, over the queue's near keys. */
static int
take_walk(struct store *s, uint32_t qid, struct store_take *t, int *stop)
{
	unsigned char	 kb[MSG_KEY_MAX];
	struct msg_key	 mk = { qid, 0, 0, 0 };
	DBC		*c;
	DBT		 key, val;
	int		 r;

	if ((r = walk_open(s, s->msgs, &mk, kb, &key, &val, &c, 0)) !=
	    STORE_OK)
		return r;
	/*
	 * One walk from the head.  take_one deletes the record under the
	 * cursor, or moves it past now (a lease is at least 1 ms), through
	 * the cursor itself: no second search from the root per message
	 * (that search was a third of the time of SPOP).  DB_NEXT goes on
	 * from the deleted position.  DB_RMW: two takers of one queue
	 * queue up instead of deadlocking.
	 */
	r = st_cursor_get(s, c, &key, &val, DB_SET_RANGE | DB_RMW,
	    MSG_KEY_MAX, "msgs seek");
	while (r == STORE_OK && t->n < t->max && !*stop) {
		if (key.size != MSG_KEY_LEN || be32_get(key.data) != qid ||
		    be64_get((unsigned char *)key.data + 4) > t->now)
			break;
		/* Copied (the value is there already): take_one writes to
		   the tree under the cursor. */
		memcpy(s->rbuf, key.data, key.size);
		key.data = s->rbuf;
		if ((r = take_one(s, c, t, &key, &val, stop)) != STORE_OK)
			break;
		dbt_set(&key, NULL, 0);
		r = st_cursor_get(s, c, &key, &val, DB_NEXT | DB_RMW,
		    MSG_KEY_MAX, "msgs next");
	}
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	return st_cursor_close(s, c, r);
}

#define TAKE_MOVE_MAX	10000	/* far messages a taker moves at once */

int
store_msg_take(struct store *s, uint32_t qid, struct store_take *t)
{
	uint64_t bucket;
	size_t	 moved;
	int	 r, stop = 0, rounds;

	t->n = t->dead = 0;
	if (t->max == 0)
		return STORE_OK;
	/*
	 * A bucket that started before the housekeeper moved it (it was down
	 * or behind) is moved here, and the walk goes on: late, never lost.
	 * One seek in far.db when the near keys came up short.
	 */
	for (rounds = 0; rounds < 3; rounds++) {
		if ((r = take_walk(s, qid, t, &stop)) != STORE_OK || stop ||
		    t->n >= t->max)
			return r;
		r = st_far_head(s, qid, &bucket);
		if (r == STORE_NOTFOUND || (r == STORE_OK && bucket > t->now))
			return STORE_OK;
		if (r != STORE_OK || (r = st_wheel_move_queue(s, qid, t->now,
		    TAKE_MOVE_MAX, &moved)) != STORE_OK)
			return r;
		if (moved > 0 && s->wheel_hook != NULL)
			s->wheel_hook(moved);
	}
	return STORE_OK;
}

int
store_msg_op(struct store *s, uint32_t qid, const void *id, size_t idlen,
    enum store_op op, uint64_t due, uint32_t max_deliveries, int *done)
{
	struct store_msg	m;
	struct msg_key		mk;
	struct msg_hdr		h;
	int			r, reserved;

	*done = 0;
	if ((r = st_txn(s)) != STORE_OK)
		return r;
	if ((r = find_msg(s, qid, id, idlen, op == STORE_ACK ||
	    op == STORE_NACK || op == STORE_EXTEND, &mk, &h, &m)) != STORE_OK)
		return r == STORE_NOTFOUND ? STORE_OK : r;
	reserved = (h.flags & MSG_F_RESERVED) != 0;
	switch (op) {
	case STORE_ACK:
		if (!reserved)
			return STORE_OK;
		if ((r = msg_delete(s, NULL, &mk, &h, m.id)) == STORE_OK)
			r = st_count_add(s, qid, STORE_C_ACKED, 1);
		break;
	case STORE_CANCEL:
		r = msg_delete(s, NULL, &mk, &h, m.id);
		break;
	case STORE_NACK:
		/* Given back after its last allowed delivery: it will not be
		   delivered again, so it is a dead letter now, not when due. */
		if (reserved && max_deliveries > 0 &&
		    h.deliveries >= max_deliveries &&
		    (r = dead_letter(s, &mk, &h, &m, now_ms())) !=
		    STORE_NOTFOUND)
			break;
		/* FALLTHROUGH */
	case STORE_EXTEND:
		if (!reserved)
			return STORE_OK;
		/* FALLTHROUGH */
	case STORE_RESCHEDULE:
		r = msg_move(s, NULL, &mk, &h, &m, due,
		    op == STORE_EXTEND ? MSG_F_RESERVED : 0);
		break;
	}
	if (r == STORE_OK)
		*done = 1;
	return r;
}

/* Shows the far message r to fn; *stop is set when fn says so. */
static int
peek_far(struct store *s, uint32_t qid, const struct far_ref *ref,
    int (*fn)(void *, const struct store_msg *), void *arg, int *stop)
{
	unsigned char		 kb[MSG_KEY_MAX];
	struct msg_key		 mk = { qid, ref->due, ref->seq, ref->bucket };
	struct store_msg	 m;
	DBT			 key, val;
	int			 r;

	if ((r = msg_get(s, &mk, DB_READ_COMMITTED, &val)) != STORE_OK)
		return r;
	dbt_set(&key, kb, msg_key_encode(kb, &mk));
	if (msg_from(&key, &val, &m) == -1) {
		snprintf(s->err, sizeof(s->err), "malformed message record");
		return STORE_ERR;
	}
	*stop = fn(arg, &m);
	return STORE_OK;
}

/* The far messages of a queue in due order, read a bucket at a time. */
struct far_iter {
	struct far_ref	*a;
	size_t		 cap, n, i;
	uint64_t	 from;		/* the next bucket starts at or after */
	int		 done;
};

/* *ref: the next far message, NULL when there is none left. */
static int
far_next(struct store *s, uint32_t qid, struct far_iter *f,
    const struct far_ref **ref)
{
	int	r;

	*ref = NULL;
	if (f->i == f->n && !f->done) {
		if ((r = st_far_bucket_read(s, qid, f->from, &f->a, &f->cap,
		    &f->n)) != STORE_OK)
			return r;
		f->i = 0;
		if (f->n == 0)
			f->done = 1;
		else
			f->from = f->a[0].bucket + 1;
	}
	if (f->i < f->n)
		*ref = &f->a[f->i];
	return STORE_OK;
}

/*
 * Near keys come in due order; far messages are merged in a bucket at a
 * time (a message moved far ahead by QRESCHEDULE has a near key and can
 * come after far ones).
 */
int
store_msg_peek(struct store *s, uint32_t qid, size_t max,
    int (*fn)(void *, const struct store_msg *), void *arg)
{
	unsigned char		 kb[MSG_KEY_MAX];
	struct msg_key		 mk = { qid, 0, 0, 0 };
	struct store_msg	 m;
	struct far_iter		 f;
	const struct far_ref	*ref;
	DBC			*c;
	DBT			 key, val;
	size_t			 n = 0;
	int			 r, cr, stop = 0, near;

	if (max == 0)
		return STORE_OK;
	memset(&f, 0, sizeof(f));
	if ((r = walk_open(s, s->msgs, &mk, kb, &key, &val, &c,
	    DB_READ_COMMITTED)) != STORE_OK)
		return r;
	/* Values into pbuf: peek_far reads far ones into rbuf meanwhile. */
	cr = st_cursor_get_in(s, c, &key, &val, DB_SET_RANGE, &s->pbuf,
	    &s->pcap, 0, "msgs seek");
	while (r == STORE_OK && (cr == STORE_OK || cr == STORE_NOTFOUND) &&
	    n < max && !stop) {
		if ((r = far_next(s, qid, &f, &ref)) != STORE_OK)
			break;
		near = cr == STORE_OK && key.size == MSG_KEY_LEN &&
		    msg_from(&key, &val, &m) == 0 && m.qid == qid;
		if (ref != NULL && (!near || ref->due < m.due ||
		    (ref->due == m.due && ref->seq < m.seq))) {
			n++;
			f.i++;
			r = peek_far(s, qid, ref, fn, arg, &stop);
			continue;	/* the cursor stays where it is */
		}
		if (!near)
			break;
		n++;
		stop = fn(arg, &m);
		if (!stop)
			cr = st_cursor_get_in(s, c, &key, &val, DB_NEXT,
			    &s->pbuf, &s->pcap, 0, "msgs next");
	}
	dq_free(f.a);
	if (r == STORE_OK && cr != STORE_NOTFOUND)
		r = cr;
	return st_cursor_close(s, c, r);
}

/*
 * Counts the keys of qid due from..to in a database, reading no values;
 * *next_due (if not NULL) is the due time of the first key after to, or 0.
 */
static int
count_range(struct store *s, DB *db, uint32_t qid, uint64_t from, uint64_t to,
    int64_t *n, uint64_t *next_due)
{
	unsigned char	 kb[MSG_KEY_MAX];
	struct msg_key	 mk = { qid, from, 0, 0 };
	DBC		*c;
	DBT		 key, val;
	uint64_t	 due;
	int		 r;

	*n = 0;
	if (next_due != NULL)
		*next_due = 0;
	if ((r = walk_open(s, db, &mk, kb, &key, &val, &c,
	    DB_READ_COMMITTED)) != STORE_OK)
		return r;
	val.flags = DB_DBT_PARTIAL;
	r = st_rc(s, c->get(c, &key, &val, DB_SET_RANGE), "count seek");
	while (r == STORE_OK) {
		if (key.size != MSG_KEY_LEN || be32_get(key.data) != qid)
			break;
		due = be64_get((unsigned char *)key.data + 4);
		if (due > to) {
			if (next_due != NULL)
				*next_due = due;
			break;
		}
		(*n)++;
		r = st_rc(s, c->get(c, &key, &val, DB_NEXT), "count next");
	}
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	if ((r = st_cursor_close(s, c, r)) != STORE_OK || db != s->msgs)
		return r;
	/* Then the far keys, after every near one (store_wheel.c). */
	return st_far_count(s, qid, from, to, n, next_due);
}

/*
 * One side of now in count_due: a key-only walk of the queue's near keys
 * due by now (ready), or of its near keys due after now and then its far
 * keys due after now (later), one key a step.
 */
struct side_walk {
	DBC	*c;
	DBT	 key, val;
	int	 r;		/* of the last get */
	int	 later, done;
	int	 far;		/* 0: near keys; else far database far - 1 */
	int64_t	 n;
};

static int
side_seek(struct store *s, struct side_walk *w, uint32_t qid, uint64_t now)
{
	unsigned char	kb[MSG_KEY_MAX];
	struct msg_key	mk = { qid, w->later ? now + 1 : 0, 0, 0 };

	if (w->far)
		w->r = st_far_seek(s, w->far - 1, qid, 0, 0, &w->c, &w->key,
		    &w->val);
	else if ((w->r = walk_open(s, s->msgs, &mk, kb, &w->key, &w->val,
	    &w->c, DB_READ_COMMITTED)) == STORE_OK) {
		w->val.flags = DB_DBT_PARTIAL;
		w->r = st_rc(s, w->c->get(w->c, &w->key, &w->val,
		    DB_SET_RANGE), "count seek");
	}
	return w->r == STORE_NOTFOUND ? STORE_OK : w->r;
}

/* 1 when the key under the walk is one it counts, 0 at its end. */
static int
side_counts(const struct side_walk *w, uint32_t qid, uint64_t now)
{
	struct msg_key	mk;

	if (w->r != STORE_OK || msg_key_decode(w->key.data, w->key.size,
	    &mk) == -1 || mk.qid != qid || (mk.bucket != 0) != (w->far != 0))
		return 0;
	return w->far || w->later || mk.due <= now;
}

static int
side_step(struct store *s, struct side_walk *w, uint32_t qid, uint64_t now)
{
	struct msg_key	mk;

	if (side_counts(w, qid, now)) {
		/* Far keys of started buckets can be due: ready, not later. */
		if (!w->far || (msg_key_decode(w->key.data, w->key.size,
		    &mk) == 0 && mk.due > now))
			w->n++;
		w->r = st_rc(s, w->c->get(w->c, &w->key, &w->val, DB_NEXT),
		    "count next");
		return w->r == STORE_NOTFOUND ? STORE_OK : w->r;
	}
	if ((w->r = st_cursor_close(s, w->c, STORE_OK)) != STORE_OK)
		return w->r;
	w->c = NULL;
	if (w->later && w->far < FAR_SHARDS) {
		w->far++;
		return side_seek(s, w, qid, now);
	}
	w->done = 1;
	return STORE_OK;
}

/*
 * Counts the messages of qid due by now.  Both sides of now are walked
 * a key at a time, side by side, and the one that ends first gives the
 * count (ready = messages - later): a queue with millions of ready
 * messages (consumers down) is as cheap to count as one with millions
 * waiting, O(min(due, not due)).  *next is the first due time after now,
 * 0 if none.
 */
static int
count_due(struct store *s, uint32_t qid, uint64_t now, int64_t messages,
    int64_t *ready, uint64_t *next)
{
	struct side_walk	w[2];
	int64_t			first;
	int			r, i;

	if ((r = count_range(s, s->msgs, qid, now + 1, now, &first, next)) !=
	    STORE_OK)
		return r;
	memset(w, 0, sizeof(w));
	w[1].later = 1;
	if ((r = side_seek(s, &w[0], qid, now)) == STORE_OK)
		r = side_seek(s, &w[1], qid, now);
	while (r == STORE_OK && !w[0].done && !w[1].done)
		for (i = 0; i < 2 && r == STORE_OK && !w[i].done; i++)
			r = side_step(s, &w[i], qid, now);
	r = st_cursor_close(s, w[0].c, r);
	r = st_cursor_close(s, w[1].c, r);
	if (r != STORE_OK)
		return r;
	if (!w[0].done) {
		*ready = messages - w[1].n;
		return STORE_OK;
	}
	/* Near keys due, and far ones of buckets that have started. */
	*ready = w[0].n;
	return st_far_count(s, qid, 0, now, ready, NULL);
}

int
store_queue_stat(struct store *s, uint32_t qid, uint64_t now,
    struct store_qstat *q)
{
	int64_t		expired;
	uint64_t	next;
	int		r;

	memset(q, 0, sizeof(*q));
	/*
	 * Ready messages are those due by now (a lease that ran out is due
	 * again), counted by a key-only walk of the smaller side of now.
	 * Leases that ran out but were not yet ended are counted likewise in
	 * leases.db, which the housekeeper keeps short.  The reads are not one
	 * snapshot, and the housekeeper may end such a lease between them:
	 * leases first, then the counters, so that the ending is seen by the
	 * counters or not at all, never as a lease still held that no longer
	 * is (reserved 1 and ready 1 for one message).
	 */
	if ((r = count_range(s, s->leases, qid, 0, now, &expired, NULL)) !=
	    STORE_OK || (r = store_queue_counters(s, qid, q->c)) != STORE_OK ||
	    (r = count_due(s, qid, now, q->c[STORE_C_MESSAGES], &q->ready,
	    &next)) != STORE_OK)
		return r;
	if (q->ready < 0)
		q->ready = 0;
	q->next_due = next ? (int64_t)next : -1;
	q->reserved = q->c[STORE_C_RESERVED] - expired;
	if (q->reserved < 0)
		q->reserved = 0;
	q->delayed = q->c[STORE_C_MESSAGES] - q->ready - q->reserved;
	if (q->delayed < 0)
		q->delayed = 0;
	return STORE_OK;
}

/*
 * The first near key, or the start of the first far bucket if earlier: a
 * time to look again, never after the first message is due.
 */
int
store_queue_head(struct store *s, uint32_t qid, uint64_t *due)
{
	unsigned char	 kb[MSG_KEY_MAX];
	struct msg_key	 mk = { qid, 0, 0, 0 };
	DBC		*c;
	DBT		 key, val;
	uint64_t	 bucket;
	int		 r, found = 0;

	if ((r = walk_open(s, s->msgs, &mk, kb, &key, &val, &c,
	    DB_READ_COMMITTED)) != STORE_OK)
		return r;
	val.flags = DB_DBT_PARTIAL;
	r = st_rc(s, c->get(c, &key, &val, DB_SET_RANGE), "head seek");
	if (r == STORE_OK && msg_key_decode(key.data, key.size, &mk) == 0 &&
	    mk.qid == qid && mk.bucket == 0) {
		*due = mk.due;
		found = 1;
	}
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	if ((r = st_cursor_close(s, c, r)) != STORE_OK)
		return r;
	r = st_far_head(s, qid, &bucket);
	if (r == STORE_OK && (!found || bucket < *due)) {
		*due = bucket;
		found = 1;
	}
	if (r != STORE_OK && r != STORE_NOTFOUND)
		return r;
	return found ? STORE_OK : STORE_NOTFOUND;
}

/* The housekeeper's side of leases: see store.h. */
static int
expire_one(struct store *s, const struct msg_key *mk, uint64_t now,
    uint32_t max_deliveries)
{
	struct store_msg	m;
	struct msg_hdr		h;
	unsigned char		kb[MSG_KEY_MAX];
	char			name[STORE_DEAD_NAME_MAX + 1];
	size_t			nlen;
	DBT			key, val;
	int			r;

	r = msg_get(s, mk, DB_RMW, &val);
	if (r == STORE_NOTFOUND)	/* acked meanwhile: a stray lease */
		return lease_del(s, mk);
	if (r != STORE_OK)
		return r;
	dbt_set(&key, kb, msg_key_encode(kb, mk));
	if (msg_from(&key, &val, &m) == -1 ||
	    msg_hdr_decode(val.data, val.size, &h) == -1)
		return STORE_ERR;
	if (!(h.flags & MSG_F_RESERVED))
		return lease_del(s, mk);
	if (max_deliveries > 0 && h.deliveries >= max_deliveries &&
	    (r = dead_letter(s, mk, &h, &m, now)) != STORE_NOTFOUND)
		return r;
	if ((r = store_queue_name(s, mk->qid, name, sizeof(name), &nlen)) ==
	    STORE_NOTFOUND)	/* deleted: the purge takes it */
		return lease_del(s, mk);
	if (r != STORE_OK)
		return r;
	/* Due again where it is: only the flag and the lease go. */
	return msg_move(s, NULL, mk, &h, &m, mk->due, 0);
}

int
store_expire_leases(struct store *s, uint64_t now, size_t max,
    uint32_t max_deliveries, void (*woke)(uint32_t), int *more)
{
	unsigned char	 kb[MSG_KEY_MAX];
	struct msg_key	 mk = { 0, 0, 0, 0 }, found;
	DBC		*c;
	DBT		 key, val;
	size_t		 n = 0;
	int		 r = STORE_OK;

	*more = 0;
	while (n < max) {
		if ((r = walk_open(s, s->leases, &mk, kb, &key, &val, &c,
		    0)) != STORE_OK)
			break;
		val.flags = DB_DBT_PARTIAL;
		r = st_rc(s, c->get(c, &key, &val, DB_SET_RANGE), "leases");
		if (r == STORE_OK && msg_key_decode(key.data, key.size,
		    &found) == -1)
			r = STORE_ERR;
		r = st_cursor_close(s, c, r);
		if (r != STORE_OK)
			break;
		if (found.due > now) {
			/* This queue's leases all run on: the next queue. */
			if (found.qid == UINT32_MAX)
				break;
			mk.qid = found.qid + 1;
			mk.due = mk.seq = 0;
			continue;
		}
		if ((r = expire_one(s, &found, now, max_deliveries)) !=
		    STORE_OK)
			break;
		if (woke != NULL)
			woke(found.qid);
		mk = found;
		n++;
	}
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	if (r != STORE_OK) {
		store_abort(s);
		return r;
	}
	*more = n == max;
	return n > 0 ? store_commit(s) : (store_abort(s), STORE_OK);
}
