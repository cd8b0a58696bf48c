/*
 * store: the Berkeley DB environment.  The only module that includes db.h.
 *
 * One transactional environment (TXN, LOCK, LOG, MPOOL) in data_dir, shared
 * by every process.  The layout and what each transaction locks are in
 * doc/storage.md; in short:
 *
 *   queues.db  name -> qid                 the queue registry
 *   qnames.db  qid -> name                 SCAN order; qids are never reused
 *   msgs.db    (qid, due, seq) -> message  a queue's head is one seek away
 *   ids.db     (qid, id) -> (due, seq)     lookup by id in O(log n)
 *   counts.db  one sub-database per slot:  qid -> signed count
 *   purge.db   qid -> ""                   deleted queues still to empty
 *   seq.db     sequences "msg" and "qid"
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
int	store_commit(struct store *);
void	store_abort(struct store *);

/* Queues. */
int	store_queue_find(struct store *, const void *, size_t, uint32_t *);
int	store_queue_create(struct store *, const void *, size_t, uint32_t *);
int	store_queue_count(struct store *, uint32_t, int64_t *);
/* Removes the queue at once; its messages are purged in the background. */
int	store_queue_delete(struct store *, const void *, size_t,
	    int64_t *count);
/* Calls fn for every queue in name order; fn returns non-zero to stop. */
int	store_queue_each(struct store *,
	    int (*fn)(void *, const void *, size_t, uint32_t), void *);
/* Queues with qid >= *cursor, at most n; *cursor is set to the next qid
   to look at, or 0 when the scan is done. */
int	store_queue_scan(struct store *, uint64_t *cursor, size_t n,
	    int (*fn)(void *, const void *, size_t, uint32_t), void *);

/* Messages. */
int	store_msg_add(struct store *, uint32_t qid, uint64_t due,
	    const void *body, size_t len, uint64_t *seq);
/* Removes up to max messages due at or before now, earliest first, and
   calls fn on each (fn returns non-zero to stop early). */
int	store_msg_pop(struct store *, uint32_t qid, uint64_t now, size_t max,
	    int (*fn)(void *, const struct store_msg *), void *, size_t *n);

/* Housekeeping. */
int	store_checkpoint(struct store *);
int	store_log_flush(struct store *);
/* Deletes up to max records of deleted queues; *more is set if any left. */
int	store_purge_step(struct store *, size_t max, int *more);
int	store_info(struct store *, struct store_info *);

#endif
