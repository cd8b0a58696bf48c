#include <sys/param.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "child.h"
#include "housekeeper.h"
#include "log.h"
#include "logprep.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "wake.h"

#define PURGE_CHUNK	1000	/* records deleted per transaction */
#define IDLE_MS		100
#define PUBLISH_MS	2000	/* environment figures for /metrics */
/*
 * Besides every checkpoint_interval_s, a checkpoint after this much log:
 * under a heavy load the log files on disk stay near this size instead of
 * a minute's worth (gigabytes), recovery has less to read, and the memory
 * of the removed files is soon reused by the new ones (on a virtual
 * machine that hands freed memory back to its host, writing the log into
 * fresh memory was a third of the time of SPOP).
 */
#define CKPT_LOG_KB	(64 * 1024)	/* or cache_size_mb, if larger: a
					   checkpoint writes up to the cache */
/*
 * But never more than this: recovery after a crash replays the log since
 * the last checkpoint at about 200-260 MB/s here, and SPEC 3 gives the
 * whole restart 2 s.  Without the cap, a 1 GiB cache meant 1 GiB of log.
 */
#define CKPT_LOG_MAX_KB	(256 * 1024)
/* Compaction after a quarter of the messages (at least this many) left. */
#define COMPACT_MIN	10000
/*
 * Not while consumers drain: BUSY_MIN messages or more delivered or
 * acknowledged since the publish before (2 s).  DB->compact reads the
 * whole tree through the cache and locks the pages consumers delete from,
 * for seconds with a million messages (5 s for 1.3 million): draining 1.5
 * million due messages with 50 consumers ran at 383k-689k/s when a
 * compaction overlapped, 610k-684k/s when none did.  Producers alone do not
 * hold it back: held back by enqueues too, under test_disk's cycles of
 * enqueue and drain the log files peaked at 45 and 51 in 2 of 4 runs (28
 * at most in 5 runs before).  It waits COMPACT_DEFER_MS at most, and not
 * at all when the disk is nearly full (min_free_disk_mb).
 */
#define BUSY_MIN		COMPACT_MIN
#define COMPACT_DEFER_MS	(5 * 60 * 1000)

static void
on_dead_letter(const void *name, size_t len)
{
	wake_note_name(name, len);
	STAT_ADD(dead_lettered, 1);
}

/*
 * Compaction is wanted once a quarter of the messages that were there at
 * the last compaction, or came since, have gone: counted exactly from the
 * messages now and the enqueues since (stats.h), whenever they happened.
 */
static int64_t		 base_messages = -1;	/* at the last compaction */
static uint64_t		 base_enqueued;
static int		 compact_wanted;
static uint64_t		 compact_wanted_ms;	/* mono: since when */
static uint64_t		 last_traffic;	/* at the last publish */
static int		 busy;		/* BUSY_MIN messages taken since */
static int		 compact_ckpt;	/* a checkpoint since it was wanted */

static int
disk_low(const struct config *cfg)
{
	struct statvfs	sv;

	return cfg->min_free_disk_mb > 0 &&
	    statvfs(cfg->data_dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize / (1024 * 1024) <
	    config_disk_floor_mb(cfg);
}

/*
 * Under durability fsync, the next log file is made ahead of time with all
 * its blocks written, so that the log's syncs do not allocate (logprep.h).
 * Not with the disk nearly full: the file is LOG_FILE_MB more.
 */
static void
prepare_log(const struct config *cfg, struct store *s)
{
	static uint64_t	 next_look;
	static uint32_t	 done;		/* the last file found or made + 1 */
	uint32_t	 cur;
	int		 r;

	if (cfg->durability != DURABILITY_FSYNC || mono_ms() < next_look)
		return;
	next_look = mono_ms() + IDLE_MS;
	if (store_log_file(s, &cur) != STORE_OK || cur + 1 == done ||
	    disk_low(cfg))
		return;
	if ((r = logprep_next(cfg->data_dir, cur,
	    (uint64_t)LOG_FILE_MB * 1024 * 1024)) != -1) {
		done = cur + 1;
		if (r == 1)
			log_debug("log file %u made ahead", cur + 1);
		return;
	}
	/* A full disk, say: not again for a while. */
	log_warn("making log file %u ahead (again in a minute)", cur + 1);
	next_look = mono_ms() + 60000;
}

static void
want_compaction(void)
{
	if (!compact_wanted) {
		compact_wanted = 1;
		compact_wanted_ms = mono_ms();
	}
}

static void
note_removals(int64_t messages)
{
	struct stats_slot	sum;
	int64_t			seen, gone;
	uint64_t		traffic;

	stats_sum(&sum);
	traffic = sum.delivered + sum.acked;
	busy = traffic - last_traffic >= BUSY_MIN;
	last_traffic = traffic;
	if (base_messages < 0) {
		base_messages = messages;
		base_enqueued = sum.enqueued;
		return;
	}
	seen = base_messages + (int64_t)(sum.enqueued - base_enqueued);
	gone = seen - messages;
	if (gone >= COMPACT_MIN && gone * 4 >= seen)
		want_compaction();
}

/*
 * Wanted, a checkpoint taken since, and no drain under way (or it has
 * waited long enough, or the disk is nearly full).
 */
static int
compact_due(const struct config *cfg, uint64_t now)
{
	return compact_wanted && compact_ckpt && (!busy ||
	    now - compact_wanted_ms >= COMPACT_DEFER_MS || disk_low(cfg));
}

/*
 * Forgetting empty queues: a queue drained by its consumers kept its name
 * until DEL, and KEYS, SCAN, DBSIZE and the metrics walk every name ever
 * used (151 ms for 260,000 names, 2,000 of them live).  Every
 * empty_queue_ttl_s the publish walk (in qid order) notes the empty queues
 * and their stamps (store.h).  A queue noted by the walk before with the
 * same stamp goes to idle_doomed as the walk passes it; those are then
 * forgotten FORGET_STEP an iteration of the housekeeper's loop, as deleted
 * queues are purged, so that leases, the wheel and the metrics do not wait
 * for them (131,072 take about 3 s).  IDLE_MAX new ones a round keeps the
 * memory bounded (16 bytes each); the others wait a round.
 */
#define IDLE_MAX	131072
#define FORGET_BATCH	100	/* queues a transaction */
#define FORGET_STEP	1000	/* queues an iteration */

struct idle {
	uint32_t	qid;
	uint64_t	stamp;
};
static struct idle	*idle_prev, *idle_next, *idle_doomed;
static size_t		 nidle_prev, nidle_next, nidle_doomed;
static size_t		 idle_seen;	/* idle_prev passed by the walk */
static size_t		 idle_done;	/* idle_doomed handled */
static size_t		 idle_forgotten;	/* of idle_doomed */
static uint64_t		 idle_t0;	/* mono: the round's walk */
static int		 idle_noting;	/* this walk notes them */
static uint64_t		 next_idle_ms;	/* mono: the next such walk */

static void
note_idle(uint32_t qid, const int64_t c[STORE_NCOUNTERS])
{
	uint64_t	stamp;

	if (!idle_noting || c[STORE_C_RESERVED] != 0)
		return;
	stamp = store_queue_stamp(c);
	while (idle_seen < nidle_prev && idle_prev[idle_seen].qid < qid)
		idle_seen++;
	if (idle_seen < nidle_prev && idle_prev[idle_seen].qid == qid &&
	    idle_prev[idle_seen].stamp == stamp) {
		/* Empty and untouched since the walk before. */
		idle_doomed[nidle_doomed++] = idle_prev[idle_seen++];
		return;
	}
	if (nidle_next < IDLE_MAX) {
		idle_next[nidle_next].qid = qid;
		idle_next[nidle_next].stamp = stamp;
		nidle_next++;
	}
}

static int
idle_alloc(void)
{
	if (idle_prev != NULL)
		return 0;
	if ((idle_prev = dq_calloc(IDLE_MAX, sizeof(struct idle))) != NULL &&
	    (idle_next = dq_calloc(IDLE_MAX, sizeof(struct idle))) != NULL &&
	    (idle_doomed = dq_calloc(IDLE_MAX, sizeof(struct idle))) != NULL)
		return 0;
	log_warnx("forgetting empty queues: out of memory");
	dq_free(idle_prev);
	dq_free(idle_next);
	idle_prev = idle_next = NULL;
	return -1;
}

/*
 * Whether this publish walk notes the empty queues: every ttl, once the
 * last round's queues are all handled.
 */
static int
idle_round(const struct config *cfg, uint64_t now)
{
	if (cfg->empty_queue_ttl_s == 0 || now < next_idle_ms ||
	    nidle_doomed > 0 || idle_alloc() == -1)
		return 0;
	next_idle_ms = now + (uint64_t)cfg->empty_queue_ttl_s * 1000;
	nidle_next = idle_seen = idle_done = idle_forgotten = 0;
	idle_t0 = now;
	return 1;
}

/* After the walk: what it noted is the next round's to confirm. */
static void
idle_round_end(void)
{
	struct idle	*swap = idle_prev;

	if (!idle_noting)
		return;
	idle_prev = idle_next;
	idle_next = swap;
	nidle_prev = nidle_next;
	nidle_next = 0;
	idle_noting = 0;
}

/*
 * Forgets up to FORGET_STEP of the round's due queues, FORGET_BATCH to a
 * transaction.  A batch that meets a deadlock runs again next time; one
 * that fails otherwise (disk full) is skipped: its queues stay, for a
 * later round.  *more: some are left.
 */
static int
forget_step(struct store *s, int *more)
{
	size_t	end = MIN(idle_done + FORGET_STEP, nidle_doomed), i, n, gone;
	int	r = STORE_OK;

	while (r == STORE_OK && idle_done < end) {
		n = MIN(FORGET_BATCH, end - idle_done);
		for (gone = 0, i = idle_done; r == STORE_OK &&
		    i < idle_done + n; i++)
			if ((r = store_queue_forget(s, idle_doomed[i].qid,
			    idle_doomed[i].stamp)) == STORE_OK)
				gone++;
			else if (r == STORE_NOTFOUND)
				r = STORE_OK;
		if (r == STORE_OK && (r = store_commit(s)) == STORE_OK)
			idle_forgotten += gone;
		else
			store_abort(s);	/* nothing if the commit ended it */
		if (r == STORE_RETRY)
			break;
		idle_done += n;
	}
	*more = idle_done < nidle_doomed;
	if (!*more && nidle_doomed > 0) {
		if (idle_forgotten > 0)
			log_info("forgot %zu empty queues in %.1f s",
			    idle_forgotten, (double)(mono_ms() - idle_t0) /
			    1000);
		nidle_doomed = 0;
	}
	return r == STORE_RETRY ? STORE_OK : r;
}

struct depths {
	struct stats_env	*e;
	uint32_t		 n, registered;
	uint64_t		 messages;
};


static int
queue_depth(void *arg, uint32_t qid, const void *name, size_t len,
    const int64_t c[STORE_NCOUNTERS])
{
	struct depths	*d = arg;
	uint32_t	 i;

	d->registered++;
	if (c[STORE_C_MESSAGES] <= 0) {
		note_idle(qid, c);
		return 0;
	}
	d->n++;
	d->messages += (uint64_t)c[STORE_C_MESSAGES];
	if ((i = d->e->npublished) < STATS_QUEUES) {
		/* Bytes, NULs included; zeros after them (metrics.c). */
		memset(d->e->queue[i].name, 0, sizeof(d->e->queue[i].name));
		d->e->queue[i].cut = len > STATS_NAME_MAX;
		d->e->queue[i].namelen = len > STATS_NAME_MAX ?
		    STATS_NAME_MAX : (uint32_t)len;
		memcpy(d->e->queue[i].name, name, d->e->queue[i].namelen);
		d->e->queue[i].hash = (uint32_t)fnv1a(name, len);
		d->e->queue[i].messages = c[STORE_C_MESSAGES];
		d->e->queue[i].reserved = c[STORE_C_RESERVED];
		d->e->npublished++;
	}
	return 0;
}

/*
 * Environment figures and queue depths for the metrics endpoint, which
 * runs in the master and never opens the environment itself.
 */
static int
publish(const struct config *cfg, struct store *s, uint64_t now)
{
	struct stats_env	*e = &stats->env;
	struct store_info	 si;
	struct depths		 d = { e, 0, 0, 0 };
	int			 r;

	if ((r = store_info(s, &si)) != STORE_OK)
		return r;
	__atomic_add_fetch(&e->version, 1, __ATOMIC_SEQ_CST);	/* odd */
	e->cache_bytes = si.cache_bytes;
	e->cache_hit = si.cache_hit;
	e->cache_miss = si.cache_miss;
	e->log_bytes = si.log_bytes;
	e->data_bytes = si.data_bytes;
	e->deadlocks = si.deadlocks;
	e->lock_waits = si.lock_waits;
	e->last_checkpoint = si.last_checkpoint;
	e->npublished = 0;
	idle_noting = idle_round(cfg, now);
	r = store_queue_totals(s, queue_depth, &d);
	store_abort(s);		/* read only */
	idle_round_end();
	e->nqueues = d.n;
	e->nregistered = d.registered;
	e->nmessages = d.messages;
	e->updated_ms = now_ms();
	__atomic_add_fetch(&e->version, 1, __ATOMIC_SEQ_CST);	/* even */
	if (r == STORE_OK)
		note_removals((int64_t)d.messages);
	return r;
}

/* Exits for the master to recover the environment on a panic. */
static void	check(int, const char *);

/*
 * After a checkpoint, when a quarter of the messages have gone (drained,
 * acknowledged, deleted queues purged): sparse pages are merged and the
 * free ones given back, so that disk use follows the backlog down.
 */
static void
compact(struct store *s)
{
	uint64_t	freed, t0 = mono_ms();

	check(store_compact(s, &freed), "compact");
	/* Rare and heavy (seconds of I/O): said at the default level. */
	log_notice("compaction gave %llu pages back in %.1f s",
	    (unsigned long long)freed, (double)(mono_ms() - t0) / 1000);
	compact_wanted = compact_ckpt = 0;
	base_messages = -1;	/* the next publish sets it again */
}

/* Exits for the master to recover the environment on a panic. */
static void
check(int r, const char *what)
{
	if (r == STORE_PANIC) {
		log_warnx("%s: the environment needs recovery", what);
		_exit(EXIT_PANIC);
	}
}

int
housekeeper_main(const struct config *cfg, int slot)
{
	struct store	*s;
	uint64_t	 now, next_flush = 0, next_ckpt, next_publish = 0;
	int		 more = 0, more2, r, purging = 0, done;
	int		 ckpt_failed = 0;
	uint32_t	 ckpt_kb;

	if (child_open(cfg, slot, "housekeeper", &s) == -1)
		return 1;
	log_info("ready");
	logprep_clean(cfg->data_dir);
	store_set_dead_hook(s, on_dead_letter);
	store_set_wheel_hook(s, stats_wheel_moves);
	next_ckpt = mono_ms() + (uint64_t)cfg->checkpoint_interval_s * 1000;
	ckpt_kb = (uint32_t)cfg->cache_size_mb * 1024;
	ckpt_kb = MIN(MAX(ckpt_kb, CKPT_LOG_KB), CKPT_LOG_MAX_KB);
	while (!child_stop) {
		now = mono_ms();
		if (cfg->durability != DURABILITY_FSYNC && now >= next_flush) {
			check(store_log_flush(s), "log flush");
			next_flush = now + cfg->flush_interval_ms;
		}
		done = 0;
		if (now >= next_ckpt) {
			check(r = store_checkpoint(s, 0, &done), "checkpoint");
			next_ckpt = now + (uint64_t)cfg->checkpoint_interval_s *
			    1000;
			ckpt_failed = r != STORE_OK;
		} else if (!ckpt_failed) {
			/* After a failure (disk full), only the timer retries. */
			check(r = store_checkpoint(s, ckpt_kb, &done),
			    "checkpoint");
			ckpt_failed = r != STORE_OK;
		}
		if (done) {
			stats->last_checkpoint_ms = now_ms();
			compact_ckpt = compact_wanted;
			next_ckpt = now + (uint64_t)cfg->checkpoint_interval_s *
			    1000;
		}
		if (now >= next_publish) {
			check(publish(cfg, s, now), "metrics");
			/* A pass over many queues (0.3 s for 300,000) takes
			   at most a tenth of the housekeeper's time. */
			next_publish = mono_ms();
			next_publish += next_publish - now > PUBLISH_MS / 10 ?
			    10 * (next_publish - now) : PUBLISH_MS;
		}
		/* Not while a deleted queue is purged: its pages are still
		   in use, and its end wants a compaction anyway. */
		if (compact_due(cfg, now) && !purging)
			compact(s);
		check(r = store_purge_step(s, PURGE_CHUNK, &more), "purge");
		/*
		 * A delete logs what it deletes: with the disk nearly full,
		 * a checkpoint after each chunk lets the log files go before
		 * the next one is written.
		 */
		if (more && disk_low(cfg))
			check(store_checkpoint(s, 0, NULL), "checkpoint");
		if (purging && !more)
			want_compaction();	/* a deleted queue is gone */
		purging = more;
		/* Far buckets a bucket ahead of their start: to near keys. */
		check(store_wheel_turn(s, now_ms(), PURGE_CHUNK, &more2),
		    "wheel");
		more |= more2;
		/* Leases that ran out: due again, or dead letters. */
		check(r = store_expire_leases(s, now_ms(), PURGE_CHUNK,
		    (uint32_t)cfg->max_deliveries, NULL, &more2), "leases");
		/* Consumers blocked on a dead queue that just got letters. */
		if (r == STORE_OK)
			wake_send();
		else
			wake_discard();
		more |= more2;
		/* Empty queues a round found untouched since the last. */
		check(forget_step(s, &more2), "forget");
		more |= more2;
		prepare_log(cfg, s);
		store_trim(s);
		child_reopen_log();
		/* Between purge chunks, a pause that lets writers in. */
		poll(NULL, 0, more ? 1 : (cfg->durability == DURABILITY_FSYNC ||
		    cfg->flush_interval_ms > IDLE_MS ? IDLE_MS :
		    cfg->flush_interval_ms));
	}
	if (cfg->durability != DURABILITY_FSYNC)
		check(store_log_flush(s), "log flush");
	check(store_checkpoint(s, 0, NULL), "checkpoint");
	store_close(s);
	log_info("stopped");
	return 0;
}
