/*
 * store: the Berkeley DB environment.  The only module that includes db.h.
 *
 * One transactional environment (TXN, LOCK, LOG, MPOOL) in data_dir, shared
 * by every process.  The layout and what each transaction locks are in
 * doc/storage.md; in short:
 *
 *   queues.db  name -> qid                 the queue registry
 *   qnames.db  qid -> name                 SCAN order; qids are never reused
 *   msgs.db    (qid, due, seq) -> message  near keys: a queue's head is one
 *                                          seek away; 16 KiB pages
 *   far.db     (qid, bucket, seq', due)    far keys: the wheel
 *   ids.db     (qid, id) -> (due, seq)     producer ids, moved messages
 *   leases.db  (qid, lease end, seq)       reserved messages, by expiry
 *   counts.db  one sub-database per slot:  qid -> six counters
 *   purge.db   qid -> ""                   deleted queues still to empty
 *   seq.db     the "qid" sequence: queue numbers
 *
 * Every process opens its own handle with store_open().  A handle carries
 * at most one open transaction: the first operation begins it, and the
 * caller ends it with store_commit() or store_abort().  A worker uses one
 * transaction for every command of one event-loop iteration (group commit).
 *
 * Return codes: STORE_OK, STORE_NOTFOUND; STORE_RETRY means a deadlock or
 * lock timeout: abort and run the whole transaction again; STORE_ERR means
 * the operation failed (store_errstr() says why) and the transaction must
 * be aborted; STORE_PANIC means the environment needs recovery: the process
 * must exit with EXIT_PANIC without touching Berkeley DB again.
 */
#ifndef DQ_STORE_H
#define DQ_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define STORE_OK	0
#define STORE_NOTFOUND	1
#define STORE_RETRY	2
#define STORE_DUP	3		/* key exists (internal) */
#define STORE_ERR	(-1)
#define STORE_PANIC	(-2)

#define STORE_SLOTS	16		/* counter sub-databases */
#define STORE_ID_MAX	512		/* longest message id */
/* Longest queue name a client may give, and the longest a queue can
   have: a dead letter queue adds ":dead" to a name of that length. */
#define STORE_NAME_MAX		4096
#define STORE_DEAD_SUFFIX	":dead"
#define STORE_DEAD_NAME_MAX	(STORE_NAME_MAX + sizeof(STORE_DEAD_SUFFIX) - 1)
#define STORE_SID_MAX	40		/* longest server-assigned id */

/* Per-queue counters, kept exactly (see doc/storage.md). */
enum store_counter {
	STORE_C_MESSAGES,	/* messages in the queue, any state */
	STORE_C_RESERVED,	/* carrying a lease, expired or not */
	STORE_C_ENQUEUED,	/* totals since the queue was created */
	STORE_C_DELIVERED,
	STORE_C_ACKED,
	STORE_C_DEAD,		/* moved to <queue>:dead */
	STORE_NCOUNTERS
};
#define EXIT_PANIC	3		/* exit status asking for recovery */

struct store;

struct store_msg {
	uint32_t	 qid;
	uint64_t	 due;
	uint64_t	 seq;
	uint32_t	 deliveries;
	const void	*id;
	size_t		 idlen;
	const void	*body;
	size_t		 bodylen;
	char		 sid[STORE_SID_MAX]; /* id derived from the key */
};

struct store_info {
	uint64_t	cache_bytes;
	uint64_t	cache_hit;
	uint64_t	cache_miss;
	uint64_t	log_bytes;		/* on disk */
	uint64_t	data_bytes;		/* database files on disk */
	uint64_t	deadlocks;
	uint64_t	lock_waits;
	uint64_t	last_checkpoint;	/* Unix s, 0: none */
};

/* Run recovery and create the databases; no other process may be open. */
int	store_recover(const struct config *, char *err, size_t errlen);
/* Join the environment after a worker died; 0: clean, -1: needs recovery. */
int	store_failchk(const struct config *);

int	store_open(const struct config *, int slot, struct store **,
	    char *err, size_t errlen);
void	store_close(struct store *);
const char *store_errstr(const struct store *);

int	store_in_txn(const struct store *);
/* Between transactions: gives back the buffers a big message grew past
   what the usual ones need (they grow again on demand), so that a process
   does not keep the largest message it ever handled. */
void	store_trim(struct store *);
/* The open transaction changed (or will at commit write) a record: its
   commit has a log record to sync.  A read-only one has none. */
int	store_txn_wrote(const struct store *);
/* Ends the transaction, committed or (on failure, any code) aborted. */
int	store_commit(struct store *);
void	store_abort(struct store *);
/*
 * After store_abort() of a transaction that failed with ENOMEM, the lock
 * table being full: STORE_RETRY if someone else still holds most of it
 * (a big transaction in another process: ours may run once it ends),
 * else STORE_ERR with the reason (ours was the big one).  STORE_ERR too
 * for any other failure.
 */
int	store_out_of_locks(struct store *);
/* durability "fsync": commits write the log to its file but leave the
   sync to the caller (flush.h); under "write" and "none", no change. */
void	store_defer_sync(struct store *);
/*
 * While on, reads keep their locks until the transaction ends, where
 * walks and counter reads otherwise let go page by page: the commands of
 * an EXEC see one state of the data, whatever commits meanwhile.
 */
void	store_isolate(struct store *, int);
/*
 * Tests (DEBUG DEADLOCK): the next n commits of this process fail as if
 * Berkeley DB had picked their transaction as a deadlock victim.
 */
void	store_fake_deadlocks(struct store *, unsigned n);

/* Queues. */
int	store_queue_find(struct store *, const void *, size_t, uint32_t *);
int	store_queue_create(struct store *, const void *, size_t, uint32_t *);
int	store_queue_count(struct store *, uint32_t, int64_t *);
/* Removes the queue at once; its messages are purged in the background. */
int	store_queue_delete(struct store *, const void *, size_t,
	    int64_t *count);
/*
 * Calls fn for every queue in qid order, with its name and counters
 * (this transaction's changes included); fn returns non-zero to stop.
 * One sequential pass: O(queues), never a lookup per queue.
 */
typedef int	(*store_totals_fn)(void *, uint32_t qid, const void *name,
		    size_t len, const int64_t c[STORE_NCOUNTERS]);
int	store_queue_totals(struct store *, store_totals_fn, void *);
/* Queues with qid >= *cursor, at most n; *cursor is set to the next qid
   to look at, or 0 when the scan is done. */
int	store_queue_scan(struct store *, uint64_t *cursor, size_t n,
	    store_totals_fn, void *);

int	store_queue_counters(struct store *, uint32_t,
	    int64_t c[STORE_NCOUNTERS]);
/*
 * Forgetting empty queues.  The stamp of a queue's counters changes with
 * every message that comes, goes or moves.  store_queue_forget removes
 * the registry entry and the counters of an empty queue, as DEL would,
 * if it still has no message and the same stamp; STORE_NOTFOUND if it
 * changed or has gone.  The registry entry is locked first (DB_RMW):
 * every command that changes a queue looks it up in its own transaction
 * and holds that lock until its commit, so none is half done meanwhile
 * and none starts until this transaction ends.
 */
uint64_t	store_queue_stamp(const int64_t c[STORE_NCOUNTERS]);
int	store_queue_forget(struct store *, uint32_t qid, uint64_t stamp);
/* Name of a queue by qid, into buf (NUL-terminated); *len its length. */
int	store_queue_name(struct store *, uint32_t, char *buf, size_t bufsize,
	    size_t *len);

/* Messages. */

/*
 * Enqueues a message with a server-assigned id ("#<due>-<seq>", key.h),
 * written to idout (room for STORE_ID_MAX bytes) unless idout is NULL.
 */
int	store_msg_add(struct store *, uint32_t qid, uint64_t due,
	    const void *body, size_t len, char *idout, size_t *idlen);
/* QPUT: creates the message with this id, or replaces it (new body, due
   time, deliveries 0, no lease); *created says which. */
int	store_msg_put(struct store *, uint32_t qid, const void *id,
	    size_t idlen, uint64_t due, const void *body, size_t len,
	    int *created);

/*
 * Takes up to max messages due at or before now, earliest first.  With
 * lease_ms 0 they are removed (SPOP); otherwise each is reserved until
 * now + lease_ms and its delivery count goes up (QRESERVE).  A message
 * whose lease ran out after max_deliveries deliveries (0: no limit) is
 * moved to "<queue>:dead" instead.  fn sees each message taken (with the
 * new delivery count; no id with no_id) and returns non-zero to stop.
 */
/* Called with the dead queue's name whenever a dead letter is made. */
void	store_set_dead_hook(struct store *, void (*)(const void *, size_t));
/* Called with the number of far messages moved (store_wheel_turn: after
   its commit; store_msg_take: in the caller's transaction). */
void	store_set_wheel_hook(struct store *, void (*)(size_t));

struct store_take {
	uint64_t	  now;
	size_t		  max;
	uint64_t	  lease_ms;
	uint32_t	  max_deliveries;
	int		(*fn)(void *, const struct store_msg *);
	void		 *arg;
	int		  no_id;	/* fn does not read the id */
	size_t		  n;		/* out: messages taken */
	size_t		  dead;		/* out: moved to the dead queue */
};
int	store_msg_take(struct store *, uint32_t qid, struct store_take *);

/* Operations on one message by id; *done is 1 if it applied. */
enum store_op {
	STORE_ACK,		/* reserved: delete */
	STORE_NACK,		/* reserved: due again at `due`, no lease; a
				   dead letter at once after its last delivery */
	STORE_EXTEND,		/* reserved: lease ends at `due` */
	STORE_RESCHEDULE,	/* any: due at `due`, no lease */
	STORE_CANCEL		/* any: delete */
};
int	store_msg_op(struct store *, uint32_t qid, const void *id,
	    size_t idlen, enum store_op, uint64_t due,
	    uint32_t max_deliveries, int *done);
/* The max earliest messages, unchanged. */
int	store_msg_peek(struct store *, uint32_t qid, size_t max,
	    int (*fn)(void *, const struct store_msg *), void *);
/* Due time of a queue's earliest message; STORE_NOTFOUND if empty. */
int	store_queue_head(struct store *, uint32_t qid, uint64_t *due);

struct store_qstat {
	int64_t		c[STORE_NCOUNTERS];
	int64_t		ready;		/* due now, no live lease */
	int64_t		delayed;
	int64_t		reserved;	/* live leases */
	int64_t		next_due;	/* first due time after now; -1 */
};
int	store_queue_stat(struct store *, uint32_t qid, uint64_t now,
	    struct store_qstat *);

/*
 * Housekeeping.  store_checkpoint: a checkpoint, after which the log files
 * recovery no longer needs are removed; with min_kbytes > 0, only if that
 * much log has been written since the last checkpoint (*done says whether
 * one was taken; done may be NULL).
 */
int	store_checkpoint(struct store *, uint32_t min_kbytes, int *done);
/*
 * From now on, Berkeley DB's sleeps in this process last 2 ms at most
 * (store_checkpoint calls it): a checkpoint no longer waits a second for
 * each page a worker happens to hold.
 */
void	store_short_sleeps(void);
int	store_log_flush(struct store *);
/* The number of the log file Berkeley DB writes to now (logprep.h). */
int	store_log_file(struct store *, uint32_t *file);
/* Compacts the message databases; *freed: pages given back to the file
   system. */
int	store_compact(struct store *, uint64_t *freed);
/*
 * Ends up to max leases that ran out by now, in one transaction: the
 * message is due again, or moves to the dead queue after max_deliveries.
 * woke(qid) is called for each queue that got due messages.
 */
int	store_expire_leases(struct store *, uint64_t now, size_t max,
	    uint32_t max_deliveries, void (*woke)(uint32_t), int *more);
/* Deletes up to max records of deleted queues; *more is set if any left. */
int	store_purge_step(struct store *, size_t max, int *more);
int	store_info(struct store *, struct store_info *);
/*
 * The wheel's mover (doc/storage.md): moves up to max messages of far
 * buckets starting within one bucket of now to near keys, in one
 * transaction; *more is set when the pass is not done.  A pass runs once
 * per bucket; in between it returns at once.
 */
int	store_wheel_turn(struct store *, uint64_t now, size_t max, int *more);
/* The bucket width in use (fixed when the environment was created). */
uint64_t store_wheel_ms(const struct store *);

#endif
