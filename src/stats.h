/*
 * stats: figures shared by all processes without locks.
 *
 * The master maps one anonymous shared region before it forks anything, so
 * it outlives every worker.  Each process writes only its own slot, with
 * plain stores and relaxed atomic adds; readers (INFO, the metrics endpoint)
 * add the slots up and accept a figure that is a moment old.  The one
 * server-wide counter written by all, the number of connected clients
 * (maxclients), uses an atomic add.
 */
#ifndef DQ_STATS_H
#define DQ_STATS_H

#include <sys/types.h>

#include <stdint.h>

#define STATS_SLOTS	520	/* two generations of 256 workers, a
				   housekeeper and a flusher each (reload),
				   and spare */
#define STATS_CMDS	64	/* per-command counters, by table index */
#define STATS_LAT	10	/* command latency buckets, see stats.c */
#define STATS_LATE	10	/* delivery lateness buckets */
#define STATS_QUEUES	100	/* queues whose depth is published */
#define STATS_NAME_MAX	120	/* bytes of a published queue name */

struct stats_slot {
	pid_t		pid;		/* 0: slot unused */
	int		is_worker;	/* accepts clients */
	int		retire;		/* master: a reload, stop accepting */
	uint64_t	started_ms;
	uint64_t	wake_watch;	/* wake.c: queues our clients wait on */
	uint64_t	wake_pending;	/* wake.c: queues that got messages */
	uint64_t	flush_wanted;	/* flush.c: poke me when covered */
	uint64_t	committing;	/* flush.c: a commit, its ticket to come */
	uint64_t	connections;	/* accepted */
	uint64_t	rejected;	/* maxclients */
	uint64_t	clients;	/* connected now */
	uint64_t	blocked;	/* in BSPOP or QRESERVE BLOCK now */
	uint64_t	commands;
	uint64_t	errors;		/* error replies */
	uint64_t	protocol_errors;
	uint64_t	enqueued;
	uint64_t	delivered;
	uint64_t	commits;
	uint64_t	retries;	/* batches run again after a deadlock */
	uint64_t	net_in;
	uint64_t	net_out;
	uint64_t	acked;
	uint64_t	redelivered;	/* deliveries after the first */
	uint64_t	dead_lettered;
	uint64_t	log_syncs;	/* flush.c: syncs of the log */
	uint64_t	worker_syncs;	/* of those, by a worker itself */
	uint64_t	wheel_moves;	/* far messages moved to near keys */
	uint64_t	cmd_calls[STATS_CMDS];
	uint64_t	cmd_usec[STATS_CMDS];
	uint64_t	late[STATS_LATE];	/* deliveries by lateness */
	uint64_t	late_ms;		/* sum of lateness */
};

/* Published by the housekeeper (which has the environment open) for the
   metrics endpoint; `version` is odd while it is being written. */
struct stats_env {
	uint64_t	version;
	uint64_t	updated_ms;
	uint64_t	cache_bytes, cache_hit, cache_miss;
	uint64_t	log_bytes, data_bytes;
	uint64_t	deadlocks, lock_waits;
	uint64_t	last_checkpoint;
	uint32_t	nqueues;		/* queues holding messages */
	uint32_t	nregistered;		/* queues in the registry */
	uint64_t	nmessages;		/* messages in all queues */
	uint32_t	npublished;
	struct {
		char		name[128];	/* the first namelen bytes */
		uint32_t	namelen;	/* at most STATS_NAME_MAX */
		uint32_t	hash;		/* of the whole name, if cut */
		int		cut;		/* longer than STATS_NAME_MAX */
		int64_t		messages;
		int64_t		reserved;
	} queue[STATS_QUEUES];
};

/* flush.c: tickets of commits whose log is not synced yet. */
struct stats_flush {
	uint64_t	ticket;		/* the last ticket taken */
	uint64_t	covered;	/* every ticket up to this one is synced */
	uint32_t	futex;		/* the flusher sleeps on this word */
	uint32_t	sleeping;
	pid_t		pid;		/* the flusher; 0: none runs */
};

struct stats_shared {
	pid_t			master_pid;
	uint64_t		started_ms;
	int			nworkers;
	/*
	 * 1 + the highest slot a process was ever started in (the master
	 * takes the lowest free slot, so a few): the loops over all slots
	 * stop there instead of reading 520 slots of 1.4 KB.
	 */
	int			slots_used;
	int64_t			clients;	/* atomic: all workers */
	uint64_t		worker_restarts;
	uint64_t		pool_restarts;
	uint64_t		last_checkpoint_ms;
	struct stats_env	env;
	struct stats_flush	flush;
	struct stats_slot	slot[STATS_SLOTS];
	/*
	 * Each command's runs by duration, per slot.  Not in stats_slot:
	 * a batch stages only the cells it touched (stats.c), where the
	 * slot's counters are all added up at every commit.
	 */
	uint64_t		cmd_lat[STATS_SLOTS][STATS_CMDS][STATS_LAT];
};

extern const double	stats_lat_bounds[STATS_LAT - 1];	/* seconds */
extern const double	stats_late_bounds[STATS_LATE - 1];

extern struct stats_shared	*stats;		/* NULL until created */
extern struct stats_slot	*my_stats;	/* this process' slot */

int	stats_create(void);
void	stats_attach(int slot);		/* in the child, after fork */
/* This process' slot in the shared region, even during a batch (when
   my_stats is the batch's private copy). */
struct stats_slot *stats_own(void);
/* The master, before it forks a process for slot. */
void	stats_slot_used(int slot);
/* How many slots to look at (see slots_used); 0 before stats_create. */
int	stats_slots(void);
void	stats_sum(struct stats_slot *);	/* all slots added up */
/* A new process in a slot: the gauges start again, the totals go on. */
void	stats_reset_gauges(struct stats_slot *);
void	stats_command(size_t idx, uint64_t usec);
/* Command idx's runs by duration, all slots added up. */
void	stats_command_lat(size_t idx, uint64_t lat[STATS_LAT]);
/*
 * A batch's figures count only if it commits: between begin and commit
 * or abort, STAT_ADD goes to a private slot, added to the shared one at
 * commit and thrown away at abort (a deadlock runs the batch again).
 */
void	stats_batch_begin(void);
void	stats_batch_commit(void);
void	stats_batch_abort(void);
/* A message handed to a consumer: lateness and redelivery. */
void	stats_delivery(uint64_t now_ms, uint64_t due_ms,
	    uint32_t deliveries);
/* The housekeeper's latest figures (metrics, INFO). */
void	stats_env_read(struct stats_env *);
/* Far messages moved (store_set_wheel_hook). */
void	stats_wheel_moves(size_t);

#define STAT_ADD(field, n)	\
	__atomic_add_fetch(&my_stats->field, (n), __ATOMIC_RELAXED)

#endif
