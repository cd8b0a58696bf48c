/*
 * store_int: what the files of the store module share (store.c: the
 * environment, transactions, counters and queues; store_msg.c: messages).
 * Not for use outside the store module.
 */
#ifndef DQ_STORE_INT_H
#define DQ_STORE_INT_H

#include <db.h>
#include <stdint.h>
#include <string.h>

#include "key.h"
#include "store.h"

#define PENDING_MAX	64	/* queues whose count changes wait for commit */
#define LOCKS_MAX	20000	/* lock table: locks, and locked objects */
#define SEQ_SLOT_BITS	10	/* low bits of a sequence: the process */
/*
 * Far keys are spread over this many databases (far.db, far1.db, ...) by
 * the process slot in their sequence: each worker adds to its own file,
 * so two workers' batches never wait on each other's pages, the newest
 * pages of a bucket or the metadata page that allocates new ones (one
 * lock wait per commit with a single far.db).
 */
#define FAR_SHARDS	4

struct count_delta {
	uint32_t	qid;
	int64_t		d[STORE_NCOUNTERS];
};

struct store {
	DB_ENV		*env;
	/* msgs: near keys, far: far keys (doc/storage.md, "The wheel"). */
	DB		*queues, *qnames, *msgs, *ids, *leases, *purge;
	DB		*far[FAR_SHARDS];
	DB		*seqdb;
	DB		*counts[STORE_SLOTS];
	DB_SEQUENCE	*seq_qid;
	uint64_t	 last_seq;	/* the last message sequence taken */
	DB_TXN		*txn;
	int		 slot;		/* counter sub-database */
	unsigned	 slot_bits;	/* process number in sequences */
	uint32_t	 commit_flags;
	int		 isolated;	/* store_isolate: no read-committed */
	int		 wrote;		/* the transaction changed a record */
	int		 nomem;		/* it failed with ENOMEM (locks) */
	unsigned	 fake_deadlocks; /* store_fake_deadlocks */
	/*
	 * Count changes are added up in memory during a transaction and
	 * written once per queue at commit: one counter update per batch,
	 * not one per message.
	 */
	struct count_delta pending[PENDING_MAX];
	size_t		 npending;
	unsigned char	*vbuf;		/* value being built */
	size_t		 vcap;
	unsigned char	*rbuf;		/* value being read */
	size_t		 rcap;
	unsigned char	*pbuf;		/* QPEEK's near walk (rbuf: far) */
	size_t		 pcap;
	/*
	 * New messages of SADD and QADD wait here, key and value, until the
	 * transaction next reads msgs.db (st_cursor_open, msg_get,
	 * key_position flush them first) or commits: then they go in in key
	 * order.  Two workers inserting in key order take their
	 * page locks in the same order and do not deadlock (in random order
	 * half the batches of 100-message SADDs did), and neighbours share
	 * pages.
	 */
	unsigned char	*abuf;		/* [key][u32 value length][value]... */
	size_t		 alen, acap;
	size_t		*aoff;		/* offset of each add in abuf */
	size_t		 nadds, aoffcap;
	void		(*dead_hook)(const void *, size_t);
	/*
	 * The wheel (doc/storage.md): far buckets are wheel_ms wide, kept in
	 * the environment so that every process and every restart computes
	 * the same keys.  The mover's pass: the next queue to look at, the
	 * last bucket moved by the pass in progress and by the last full one.
	 */
	uint64_t	 wheel_ms;
	void		(*wheel_hook)(size_t);
	uint32_t	 wheel_qid;
	uint64_t	 wheel_pass, wheel_done;
	char		 err[256];
};


int	st_rc(struct store *, int, const char *);
/* flags without DB_READ_COMMITTED while the store is isolated. */
uint32_t st_read_flags(const struct store *, uint32_t);
int	st_txn(struct store *);
int	st_count_add(struct store *, uint32_t qid, int counter, int64_t);
int	st_cursor_open(struct store *, DB *, DBC **, uint32_t);
int	st_cursor_close(struct store *, DBC *, int);
int	st_del_key(struct store *, DB *, const void *, size_t, const char *);
/* Deletes the record under the cursor; both mark the transaction as one
   that wrote (store_txn_wrote). */
int	st_cursor_del(struct store *, DBC *, const char *what);
int	st_vbuf_reserve(struct store *, size_t);
/*
 * A cursor get whose value lands in s->rbuf at off (grown as needed), not
 * in memory of the cursor's: Berkeley DB caches closed cursors with theirs,
 * as large as the largest value they ever returned (store_trim cannot
 * reach it).  The key, small, comes as usual.
 */
int	st_cursor_get(struct store *, DBC *, DBT *key, DBT *val,
	    uint32_t flags, size_t off, const char *what);
/* The same into another buffer of the store's. */
int	st_cursor_get_in(struct store *, DBC *, DBT *key, DBT *val,
	    uint32_t flags, unsigned char **buf, size_t *cap, size_t off,
	    const char *what);
int	st_rbuf_reserve(struct store *, size_t);
int	st_adds_flush(struct store *);
void	st_adds_drop(struct store *);
int	st_add_defer(struct store *, const struct msg_key *, const void *,
	    size_t, const void *, size_t);

/* store_wheel.c */
/* A cursor on far database `shard` at qid's first far key with a bucket
   >= from, read committed unless flags has DB_RMW (then values are read
   too). */
int	st_far_seek(struct store *, int shard, uint32_t qid, uint64_t from,
	    uint32_t flags, DBC **, DBT *key, DBT *val);
/* The far bucket a new message due then goes to; 0: a near key. */
uint64_t st_far_bucket(const struct store *, uint64_t due, uint64_t now);
/* Moves qid's far messages of buckets starting by until to near keys, at
   most max; *n: how many. */
int	st_wheel_move_queue(struct store *, uint32_t qid, uint64_t until,
	    size_t max, size_t *n);
/* Adds the far keys of qid due from..to to *n, and lowers *next (0: none
   yet) to the first due time after to among them if that is earlier. */
int	st_far_count(struct store *, uint32_t qid, uint64_t from, uint64_t to,
	    int64_t *n, uint64_t *next);
/* The start of qid's first far bucket; STORE_NOTFOUND if none. */
int	st_far_head(struct store *, uint32_t qid, uint64_t *bucket);
struct far_ref {
	uint64_t	due, seq, bucket;
};
/* Moves every far record of msgs.db to far.db (environments made before
   far.db held both); *moved: how many.  Commits as it goes. */
int	st_wheel_split(struct store *, size_t *moved);
/* Moves the records of far.db that belong in another far database (an
   environment made when far.db was the only one); *moved: how many. */
int	st_wheel_spread(struct store *, size_t *moved);
/* The far messages of qid's first bucket starting at or after from, in
   (due, seq) order, into *a (grown as needed, the caller frees it); *n 0
   when there is no such bucket. */
int	st_far_bucket_read(struct store *, uint32_t qid, uint64_t from,
	    struct far_ref **a, size_t *cap, size_t *n);

/* The far database of the process that made sequence seq. */
static inline DB *
st_far_db(const struct store *s, uint64_t seq)
{
	return s->far[(seq & ((1u << SEQ_SLOT_BITS) - 1)) % FAR_SHARDS];
}

/* The database a message key belongs in: near keys in msgs.db, far keys
   (a bucket) in their writer's far database. */
static inline DB *
st_msg_db(const struct store *s, const struct msg_key *mk)
{
	return mk->bucket != 0 ? st_far_db(s, mk->seq) : s->msgs;
}

static inline void
dbt_set(DBT *d, const void *data, size_t len)
{
	memset(d, 0, sizeof(*d));
	d->data = (void *)data;
	d->size = (uint32_t)len;
}

#endif
