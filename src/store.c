/*
 * store: Berkeley DB behind a small interface.  See store.h and
 * doc/storage.md for the layout and the locking.
 */
#include <sys/file.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "alloc.h"
#include "key.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include "store_int.h"

#define NEAR_PAGE_SIZE	16384	/* msgs.db, when it is made */
#define COMPACT_FILL	30	/* pages merged below this % full ... */
#define COMPACT_SLACK	256	/* ... and all of them past this many free */

/*
 * Berkeley DB's own messages.  A full disk makes it say the same few
 * things for every write: at most ERR_BURST lines a second, then how many
 * were left out.
 */
#define ERR_BURST	20

static void
bdb_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	static uint64_t	second;
	static unsigned	said, dropped;
	uint64_t	now = mono_ms() / 1000;

	if (now != second) {
		if (dropped > 0)
			log_warnx("bdb: %u more messages left out", dropped);
		second = now;
		said = dropped = 0;
	}
	if (said++ < ERR_BURST)
		log_warnx("bdb: %s", msg);
	else
		dropped++;
}

/*
 * Its informational messages: failchk says "Freeing log information for
 * process" once per database handle of the dead one, and "Freeing read
 * locks for locker" once per locker (dozens of lines).  A run of messages
 * with the same number (BDBnnnn) is said once, then counted; the count
 * is said before the next other message or at bdb_msg_flush().
 */
static char	msg_code[16];
static unsigned	msg_repeats;

static void
bdb_msg_flush(void)
{
	if (msg_repeats > 0)
		log_notice("bdb: (%u more like the message above)",
		    msg_repeats);
	msg_repeats = 0;
	msg_code[0] = '\0';
}

static void
bdb_msgcall(const DB_ENV *env, const char *msg)
{
	size_t	len = strcspn(msg, " ");
	int	coded = len > 3 && len < sizeof(msg_code) &&
		    strncmp(msg, "BDB", 3) == 0;

	if (coded && strlen(msg_code) == len &&
	    strncmp(msg, msg_code, len) == 0) {
		msg_repeats++;
		return;
	}
	bdb_msg_flush();
	log_notice("bdb: %s", msg);
	if (coded)
		snprintf(msg_code, sizeof(msg_code), "%.*s", (int)len, msg);
}

/*
 * failchk asks whether the process that owned a slot of the thread table is
 * still there.  The master reaps a dead worker before failchk runs, so a
 * dead worker is never mistaken for a live zombie.
 */
static int
bdb_isalive(DB_ENV *env, pid_t pid, db_threadid_t tid, uint32_t flags)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

static void
set_err(char *err, size_t errlen, const char *what, int ret)
{
	snprintf(err, errlen, "%s: %s", what, db_strerror(ret));
}

static int
env_setup(const struct config *cfg, DB_ENV **envp, int recover, char *err,
    size_t errlen)
{
	DB_ENV		*env;
	uint32_t	 flags;
	int		 ret;

	if ((ret = db_env_create(&env, 0)) != 0) {
		set_err(err, errlen, "db_env_create", ret);
		return -1;
	}
	env->set_errcall(env, bdb_errcall);
	env->set_msgcall(env, bdb_msgcall);
	if ((ret = env->set_cachesize(env, cfg->cache_size_mb / 1024,
	    (cfg->cache_size_mb % 1024) * 1024 * 1024, 1)) != 0 ||
	    (ret = env->set_lk_detect(env, DB_LOCK_YOUNGEST)) != 0 ||
	    (ret = env->set_lk_max_locks(env, LOCKS_MAX)) != 0 ||
	    (ret = env->set_lk_max_objects(env, LOCKS_MAX)) != 0 ||
	    (ret = env->set_lk_max_lockers(env, 4000)) != 0 ||
	    (ret = env->set_tx_max(env, 512)) != 0 ||
	    (ret = env->set_lg_bsize(env, 2 * 1024 * 1024)) != 0 ||
	    /* Small log files: removed sooner after a checkpoint. */
	    (ret = env->set_lg_max(env, LOG_FILE_MB * 1024 * 1024)) != 0 ||
	    (ret = env->set_thread_count(env, 64 + 4 * cfg->workers)) != 0 ||
	    (ret = env->set_isalive(env, bdb_isalive)) != 0 ||
	    (ret = env->set_flags(env, DB_AUTO_COMMIT, 1)) != 0 ||
	    /* Region files fully written when made: a disk that fills
	       later cannot leave holes in memory we have mapped (SIGBUS). */
	    (ret = env->set_flags(env, DB_REGION_INIT, 1)) != 0) {
		set_err(err, errlen, "environment settings", ret);
		env->close(env, 0);
		return -1;
	}
	flags = DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL |
	    DB_INIT_TXN;
	if (recover)
		flags |= DB_RECOVER;
	if ((ret = env->open(env, cfg->data_dir, flags, 0600)) != 0) {
		snprintf(err, errlen, "%s: %s", cfg->data_dir, db_strerror(ret));
		env->close(env, 0);
		return -1;
	}
	*envp = env;
	return 0;
}

static int
db_open(DB_ENV *env, DB **dbp, const char *file, const char *sub,
    uint32_t pagesize, char *err, size_t errlen)
{
	DB	*db;
	int	 ret;

	*dbp = NULL;
	if ((ret = db_create(&db, env, 0)) != 0) {
		set_err(err, errlen, file, ret);
		return -1;
	}
	if (pagesize != 0 && (ret = db->set_pagesize(db, pagesize)) != 0) {
		set_err(err, errlen, file, ret);
		db->close(db, 0);
		return -1;
	}
	if ((ret = db->open(db, NULL, file, sub, DB_BTREE,
	    DB_CREATE | DB_AUTO_COMMIT, 0600)) != 0) {
		set_err(err, errlen, file, ret);
		db->close(db, 0);
		return -1;
	}
	*dbp = db;
	return 0;
}

static int
seq_open(DB *db, DB_SEQUENCE **seqp, const char *name, int32_t cache,
    char *err, size_t errlen)
{
	DB_SEQUENCE	*seq;
	DBT		 key;
	int		 ret;

	*seqp = NULL;
	if ((ret = db_sequence_create(&seq, db, 0)) != 0) {
		set_err(err, errlen, name, ret);
		return -1;
	}
	memset(&key, 0, sizeof(key));
	key.data = (void *)name;
	key.size = strlen(name);
	if ((ret = seq->initial_value(seq, 1)) != 0 ||
	    (cache > 0 && (ret = seq->set_cachesize(seq, cache)) != 0) ||
	    (ret = seq->open(seq, NULL, &key, DB_CREATE)) != 0) {
		set_err(err, errlen, name, ret);
		seq->close(seq, 0);
		return -1;
	}
	*seqp = seq;
	return 0;
}

static void
handles_close(struct store *s)
{
	DB	**dbs[] = { &s->queues, &s->qnames, &s->msgs, &s->ids,
		    &s->leases, &s->purge };
	size_t	  i;

	if (s->seq_qid != NULL)
		s->seq_qid->close(s->seq_qid, 0);
	if (s->seqdb != NULL)
		s->seqdb->close(s->seqdb, 0);
	for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
		if (*dbs[i] != NULL)
			(*dbs[i])->close(*dbs[i], 0);
	for (i = 0; i < FAR_SHARDS; i++)
		if (s->far[i] != NULL)
			s->far[i]->close(s->far[i], 0);
	for (i = 0; i < STORE_SLOTS; i++)
		if (s->counts[i] != NULL)
			s->counts[i]->close(s->counts[i], 0);
	if (s->env != NULL)
		s->env->close(s->env, 0);
}

static int
handles_open(struct store *s, char *err, size_t errlen)
{
	char	name[16];
	int	i;

	/*
	 * Near keys on 16 KiB pages: a drain of due messages reads and
	 * frees a quarter as many pages (SPOP 28 % faster, doc/storage.md).
	 * Far keys on pages of the default size: their buckets fill pages
	 * in scrambled order, and bigger pages split half full would cost
	 * a quarter more disk per waiting message.  A page size only counts
	 * when the file is made.
	 */
	if (db_open(s->env, &s->queues, "queues.db", NULL, 0, err, errlen) ||
	    db_open(s->env, &s->qnames, "qnames.db", NULL, 0, err, errlen) ||
	    db_open(s->env, &s->msgs, "msgs.db", NULL, NEAR_PAGE_SIZE, err,
	    errlen) ||
	    db_open(s->env, &s->ids, "ids.db", NULL, 0, err, errlen) ||
	    db_open(s->env, &s->leases, "leases.db", NULL, 0, err, errlen) ||
	    db_open(s->env, &s->purge, "purge.db", NULL, 0, err, errlen) ||
	    db_open(s->env, &s->seqdb, "seq.db", NULL, 0, err, errlen))
		return -1;
	for (i = 0; i < FAR_SHARDS; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "far.db");
		else
			snprintf(name, sizeof(name), "far%d.db", i);
		if (db_open(s->env, &s->far[i], name, NULL, 0, err, errlen))
			return -1;
	}
	/*
	 * One sub-database per slot, each on its own pages: writers in
	 * different processes never wait on each other's counters.  Pages
	 * of the default size: 512-byte ones filled the cache with more
	 * buffers than Berkeley DB sizes its mutex region for (one per
	 * 4 KiB of cache), and at about 127,000 queues every transaction
	 * failed with ENOMEM.
	 */
	for (i = 0; i < STORE_SLOTS; i++) {
		snprintf(name, sizeof(name), "slot%d", i);
		if (db_open(s->env, &s->counts[i], "counts.db", name, 0,
		    err, errlen))
			return -1;
	}
	if (seq_open(s->seqdb, &s->seq_qid, "qid", 0, err, errlen))
		return -1;
	return 0;
}

/*
 * The wheel's bucket width is part of every far key (key.h): chosen from
 * the configuration when the environment is created, then kept in seq.db
 * under "wheel_ms" and read from there by every process.  With create,
 * a missing record is written (an environment made before the wheel has
 * no far keys yet).
 */
static int
wheel_meta(struct store *s, const struct config *cfg, int create, char *err,
    size_t errlen)
{
	unsigned char	vb[8];
	DBT		key, val;
	int		ret;

	dbt_set(&key, "wheel_ms", 8);
	dbt_set(&val, vb, sizeof(vb));
	val.ulen = sizeof(vb);
	val.flags = DB_DBT_USERMEM;
	ret = s->seqdb->get(s->seqdb, NULL, &key, &val, 0);
	if (ret == 0 && val.size == sizeof(vb)) {
		s->wheel_ms = be64_get(vb);
		if (create && s->wheel_ms != (uint64_t)cfg->wheel_bucket_ms)
			log_notice("wheel_bucket_ms stays %llu, as when %s "
			    "was created", (unsigned long long)s->wheel_ms,
			    cfg->data_dir);
		return 0;
	}
	if (ret == DB_NOTFOUND && create) {
		be64_put(vb, (uint64_t)cfg->wheel_bucket_ms);
		dbt_set(&val, vb, sizeof(vb));
		ret = s->seqdb->put(s->seqdb, NULL, &key, &val, 0);
		s->wheel_ms = (uint64_t)cfg->wheel_bucket_ms;
	}
	if (ret == 0 && s->wheel_ms >= 1)
		return 0;
	snprintf(err, errlen, "seq.db wheel_ms: %s",
	    ret ? db_strerror(ret) : "missing or malformed");
	return -1;
}

/*
 * A move of records done once, at the first start of an environment made
 * by an earlier build; the record `mark` in seq.db says it is done (a new
 * environment is marked at once, having nothing to move):
 * - "far_db": far keys live in far.db; the first builds of the wheel kept
 *   them in msgs.db.
 * - "far_shards": far keys live in their writer's far database (far.db,
 *   far1.db, ...); builds before that had far.db alone.
 */
static int
move_once(struct store *s, const char *mark, int (*move)(struct store *,
    size_t *), const char *what, char *err, size_t errlen)
{
	DBT	key, val;
	size_t	moved;
	int	ret;

	dbt_set(&key, mark, strlen(mark));
	dbt_set(&val, NULL, 0);
	val.flags = DB_DBT_PARTIAL;
	if ((ret = s->seqdb->get(s->seqdb, NULL, &key, &val, 0)) == 0)
		return 0;
	if (ret != DB_NOTFOUND) {
		snprintf(err, errlen, "seq.db %s: %s", mark, db_strerror(ret));
		return -1;
	}
	if (move(s, &moved) != STORE_OK) {
		snprintf(err, errlen, "moving %s: %s", what, s->err);
		return -1;
	}
	if (moved > 0)
		log_notice("moved %zu %s", moved, what);
	dbt_set(&val, "1", 1);
	if ((ret = s->seqdb->put(s->seqdb, NULL, &key, &val, 0)) != 0) {
		snprintf(err, errlen, "seq.db %s: %s", mark, db_strerror(ret));
		return -1;
	}
	return 0;
}

int
store_recover(const struct config *cfg, char *err, size_t errlen)
{
	struct store	s;
	uint64_t	t0, t1, t2;
	int		rc;

	memset(&s, 0, sizeof(s));
	t0 = mono_ms();
	if (mkdir(cfg->data_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", cfg->data_dir,
		    strerror(errno));
		return -1;
	}
	if (env_setup(cfg, &s.env, 1, err, errlen) == -1)
		return -1;
	t1 = mono_ms();
	rc = handles_open(&s, err, errlen);
	if (rc == 0)
		rc = wheel_meta(&s, cfg, 1, err, errlen);
	if (rc == 0)
		rc = move_once(&s, "far_db", st_wheel_split,
		    "far messages from msgs.db to the far databases", err,
		    errlen);
	if (rc == 0)
		rc = move_once(&s, "far_shards", st_wheel_spread,
		    "far messages from far.db to their writers' far databases",
		    err, errlen);
	/*
	 * A checkpoint (none if nothing happened since the last, as after a
	 * clean stop), and the log files from before it go: after a stop
	 * that could not checkpoint (a crash, SIGKILL) too, the disk is back
	 * to its least at every start.  Recovery's own checkpoint does not
	 * make them removable (test_disk).  A failure is logged by st_rc.
	 */
	t2 = mono_ms();
	if (rc == 0)
		(void)store_checkpoint(&s, 0, NULL);
	handles_close(&s);
	log_info("recovery: log replay %llu ms, open %llu ms, checkpoint "
	    "and close %llu ms", (unsigned long long)(t1 - t0),
	    (unsigned long long)(t2 - t1), (unsigned long long)(mono_ms() - t2));
	return rc;
}

int
store_failchk(const struct config *cfg)
{
	DB_ENV	*env;
	char	 err[256];
	int	 ret;

	if (env_setup(cfg, &env, 0, err, sizeof(err)) == -1) {
		log_warnx("failchk: %s", err);
		return -1;
	}
	ret = env->failchk(env, 0);
	bdb_msg_flush();
	if (ret != 0) {
		log_warnx("failchk: %s", db_strerror(ret));
		return -1;
	}
	/* Not closed: the caller exits at once, see master.c. */
	return 0;
}

int
store_open(const struct config *cfg, int slot, struct store **sp, char *err,
    size_t errlen)
{
	struct store	*s;

	if ((s = dq_calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->slot = slot % STORE_SLOTS;
	s->slot_bits = (unsigned)slot & ((1u << SEQ_SLOT_BITS) - 1);
	switch (cfg->durability) {
	case DURABILITY_FSYNC:
		s->commit_flags = 0;
		break;
	case DURABILITY_WRITE:
		s->commit_flags = DB_TXN_WRITE_NOSYNC;
		break;
	case DURABILITY_NONE:
		s->commit_flags = DB_TXN_NOSYNC;
		break;
	}
	if (env_setup(cfg, &s->env, 0, err, errlen) == -1) {
		dq_free(s);
		return -1;
	}
	if (handles_open(s, err, errlen) == -1 ||
	    wheel_meta(s, cfg, 0, err, errlen) == -1) {
		handles_close(s);
		dq_free(s);
		return -1;
	}
	*sp = s;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_abort(s);
	handles_close(s);
	dq_free(s->vbuf);
	dq_free(s->rbuf);
	dq_free(s->pbuf);
	dq_free(s->abuf);
	dq_free(s->aoff);
	dq_free(s);
}

const char *
store_errstr(const struct store *s)
{
	return s->err;
}

/* How full the lock table is, in tenths (locks or locked objects), or 0. */
static int
locks_held(struct store *s)
{
	DB_LOCK_STAT	*sp;
	int		 ret, tenths;

	if ((ret = s->env->lock_stat(s->env, &sp, 0)) != 0) {
		log_warnx("lock_stat: %s", db_strerror(ret));
		return 0;
	}
	tenths = (int)MAX(10ULL * sp->st_nlocks / MAX(sp->st_maxlocks, 1),
	    10ULL * sp->st_nobjects / MAX(sp->st_maxobjects, 1));
	free(sp);
	return tenths;
}

/* Maps a Berkeley DB return value to a STORE_ code. */
int
st_rc(struct store *s, int ret, const char *what)
{
	switch (ret) {
	case 0:
		return STORE_OK;
	case DB_NOTFOUND:
	case DB_KEYEMPTY:
		return STORE_NOTFOUND;
	case DB_KEYEXIST:
		return STORE_DUP;
	case DB_LOCK_DEADLOCK:
	case DB_LOCK_NOTGRANTED:
		return STORE_RETRY;
	case DB_RUNRECOVERY:
		snprintf(s->err, sizeof(s->err), "%s: %s", what,
		    db_strerror(ret));
		log_warnx("%s", s->err);
		return STORE_PANIC;
	default:
		snprintf(s->err, sizeof(s->err), "%s: %s", what,
		    db_strerror(ret));
		/* Out of locks: a worker's store_out_of_locks() says whose
		   fault, once; the retries of others are not worth a line. */
		if (ret == ENOMEM && locks_held(s) >= 9) {
			s->nomem = 1;
			log_debug("%s (lock table full)", s->err);
		} else
			log_warnx("%s", s->err);
		return STORE_ERR;
	}
}

int
st_txn(struct store *s)
{
	if (s->txn != NULL)
		return STORE_OK;
	s->npending = 0;
	s->wrote = 0;
	s->nomem = 0;
	return st_rc(s, s->env->txn_begin(s->env, NULL, &s->txn, 0),
	    "txn_begin");
}

int
store_in_txn(const struct store *s)
{
	return s->txn != NULL;
}

int
store_txn_wrote(const struct store *s)
{
	return s->txn != NULL && (s->wrote || s->nadds > 0 ||
	    s->npending > 0);
}

/* Reads one slot's counters of a queue; a missing record is all zeros. */
static int
get_counts(struct store *s, DB *db, uint32_t qid, uint32_t flags,
    int64_t v[STORE_NCOUNTERS])
{
	unsigned char	 kb[QID_LEN], vb[8 * STORE_NCOUNTERS];
	DBT		 key, val;
	size_t		 i;
	int		 r;

	memset(v, 0, sizeof(int64_t) * STORE_NCOUNTERS);
	be32_put(kb, qid);
	dbt_set(&key, kb, sizeof(kb));
	dbt_set(&val, vb, sizeof(vb));
	val.ulen = sizeof(vb);
	val.flags = DB_DBT_USERMEM;
	r = st_rc(s, db->get(db, s->txn, &key, &val, st_read_flags(s, flags)),
	    "counts get");
	if (r == STORE_NOTFOUND)
		return STORE_OK;
	/* Shorter records come from older versions: the rest is zero. */
	for (i = 0; r == STORE_OK && i < STORE_NCOUNTERS &&
	    (i + 1) * 8 <= val.size; i++)
		v[i] = (int64_t)be64_get(vb + 8 * i);
	return r;
}

/* Writes the in-memory count changes of this transaction to our slot. */
static int
counts_flush(struct store *s)
{
	DB		*db = s->counts[s->slot];
	unsigned char	 kb[QID_LEN], vb[8 * STORE_NCOUNTERS];
	DBT		 key, val;
	int64_t		 v[STORE_NCOUNTERS];
	size_t		 i, j;
	int		 r, changed;

	for (i = 0; i < s->npending; i++) {
		for (changed = 0, j = 0; j < STORE_NCOUNTERS; j++)
			changed |= s->pending[i].d[j] != 0;
		if (!changed)
			continue;
		if ((r = get_counts(s, db, s->pending[i].qid, DB_RMW, v)) != 0)
			return r;
		for (j = 0; j < STORE_NCOUNTERS; j++)
			be64_put(vb + 8 * j, (uint64_t)(v[j] +
			    s->pending[i].d[j]));
		be32_put(kb, s->pending[i].qid);
		dbt_set(&key, kb, sizeof(kb));
		dbt_set(&val, vb, sizeof(vb));
		if ((r = st_rc(s, db->put(db, s->txn, &key, &val, 0),
		    "counts put")) != 0)
			return r;
	}
	s->npending = 0;
	return STORE_OK;
}

static struct count_delta *
pending_of(struct store *s, uint32_t qid)
{
	size_t	i;

	for (i = 0; i < s->npending; i++)
		if (s->pending[i].qid == qid)
			return &s->pending[i];
	return NULL;
}

int
st_count_add(struct store *s, uint32_t qid, int counter, int64_t delta)
{
	struct count_delta	*p;
	int			 r;

	if ((p = pending_of(s, qid)) == NULL) {
		if (s->npending == PENDING_MAX && (r = counts_flush(s)) != 0)
			return r;
		p = &s->pending[s->npending++];
		memset(p, 0, sizeof(*p));
		p->qid = qid;
	}
	p->d[counter] += delta;
	return STORE_OK;
}

int
store_commit(struct store *s)
{
	DB_TXN	*t = s->txn;
	int	 r;

	if (t == NULL)
		return STORE_OK;
	/*
	 * A write deferred to the commit can be a deadlock's victim: the
	 * transaction is aborted here, as Berkeley DB ends one whose commit
	 * failed.  Left open, the next operation of the handle would run in
	 * it ("previous transaction deadlock return not resolved").
	 */
	if (s->fake_deadlocks > 0) {
		s->fake_deadlocks--;
		r = st_rc(s, DB_LOCK_DEADLOCK, "commit");
	} else if ((r = st_adds_flush(s)) == 0)
		r = counts_flush(s);
	if (r != 0) {
		store_abort(s);
		return r;
	}
	s->txn = NULL;
	return st_rc(s, t->commit(t, s->commit_flags), "commit");
}

int
store_out_of_locks(struct store *s)
{
	if (!s->nomem)
		return STORE_ERR;
	s->nomem = 0;
	/* Our locks went with the abort: what is left is someone else's. */
	if (locks_held(s) >= 5)
		return STORE_RETRY;
	log_warnx("%s", s->err);
	snprintf(s->err, sizeof(s->err), "the command needs more locks than "
	    "Berkeley DB's lock table holds (%d); send fewer ids at a time",
	    LOCKS_MAX);
	return STORE_ERR;
}

void
store_defer_sync(struct store *s)
{
	if (s->commit_flags == 0)
		s->commit_flags = DB_TXN_WRITE_NOSYNC;
}

void
store_abort(struct store *s)
{
	DB_TXN	*t = s->txn;
	int	 ret;

	if (t == NULL)
		return;
	s->txn = NULL;
	s->npending = 0;
	st_adds_drop(s);
	if ((ret = t->abort(t)) != 0)
		log_warnx("txn abort: %s", db_strerror(ret));
}

static int
queue_get(struct store *s, const void *name, size_t len, uint32_t *qid,
    uint32_t flags)
{
	unsigned char	vb[QID_LEN];
	DBT		key, val;
	int		r;

	if ((r = st_txn(s)) != 0)
		return r;
	dbt_set(&key, name, len);
	dbt_set(&val, vb, sizeof(vb));
	val.ulen = sizeof(vb);
	val.flags = DB_DBT_USERMEM;
	r = st_rc(s, s->queues->get(s->queues, s->txn, &key, &val, flags),
	    "queues get");
	if (r == STORE_OK)
		*qid = be32_get(vb);
	return r;
}

int
store_queue_find(struct store *s, const void *name, size_t len,
    uint32_t *qid)
{
	return queue_get(s, name, len, qid, 0);
}

int
store_queue_create(struct store *s, const void *name, size_t len,
    uint32_t *qid)
{
	unsigned char	vb[QID_LEN];
	DBT		key, val;
	db_seq_t	v;
	int		r;

	/*
	 * The queue usually exists: a shared read lock, so that writers of
	 * every queue do not queue up on the registry page.  To create it,
	 * look again with DB_RMW (two creators then meet in a deadlock that
	 * the detector breaks, and the loser's batch runs again).
	 */
	if ((r = queue_get(s, name, len, qid, 0)) != STORE_NOTFOUND ||
	    (r = queue_get(s, name, len, qid, DB_RMW)) != STORE_NOTFOUND)
		return r;
	if ((r = st_rc(s, s->seq_qid->get(s->seq_qid, NULL, 1, &v,
	    DB_TXN_NOSYNC), "qid sequence")) != 0)
		return r;
	if (v <= 0 || v > UINT32_MAX) {
		snprintf(s->err, sizeof(s->err), "queue ids exhausted");
		return STORE_ERR;
	}
	*qid = (uint32_t)v;
	be32_put(vb, *qid);
	dbt_set(&key, name, len);
	dbt_set(&val, vb, sizeof(vb));
	s->wrote = 1;
	if ((r = st_rc(s, s->queues->put(s->queues, s->txn, &key, &val,
	    DB_NOOVERWRITE), "queues put")) != 0)
		return r;
	dbt_set(&key, vb, sizeof(vb));
	dbt_set(&val, name, len);
	return st_rc(s, s->qnames->put(s->qnames, s->txn, &key, &val, 0),
	    "qnames put");
}

int
store_queue_counters(struct store *s, uint32_t qid,
    int64_t c[STORE_NCOUNTERS])
{
	struct count_delta	*p;
	int64_t			 v[STORE_NCOUNTERS];
	size_t			 i, j;
	int			 r;

	if ((r = st_txn(s)) != 0)
		return r;
	memset(c, 0, sizeof(int64_t) * STORE_NCOUNTERS);
	/* Read-committed: a SCAN with a large COUNT reads many queues'
	   counters in one transaction and must not keep a lock for each. */
	for (i = 0; i < STORE_SLOTS; i++) {
		if ((r = get_counts(s, s->counts[i], qid, DB_READ_COMMITTED,
		    v)) != 0)
			return r;
		for (j = 0; j < STORE_NCOUNTERS; j++)
			c[j] += v[j];
	}
	if ((p = pending_of(s, qid)) != NULL)
		for (j = 0; j < STORE_NCOUNTERS; j++)
			c[j] += p->d[j];
	for (j = 0; j < STORE_NCOUNTERS; j++)
		if (c[j] < 0)
			c[j] = 0;
	return STORE_OK;
}

int
store_queue_count(struct store *s, uint32_t qid, int64_t *count)
{
	int64_t	c[STORE_NCOUNTERS];
	int	r;

	if ((r = store_queue_counters(s, qid, c)) == STORE_OK)
		*count = c[STORE_C_MESSAGES];
	return r;
}

int
st_del_key(struct store *s, DB *db, const void *k, size_t len, const char *what)
{
	DBT	key;
	int	r;

	dbt_set(&key, k, len);
	s->wrote = 1;
	r = st_rc(s, db->del(db, s->txn, &key, 0), what);
	return r == STORE_NOTFOUND ? STORE_OK : r;
}

int
st_cursor_del(struct store *s, DBC *c, const char *what)
{
	s->wrote = 1;
	return st_rc(s, c->del(c, 0), what);
}

/* The queue's name both ways and its counters go (DEL, forgetting). */
static int
queue_unregister(struct store *s, const void *name, size_t len,
    uint32_t qid)
{
	unsigned char	kb[QID_LEN];
	size_t		i;
	int		r;

	be32_put(kb, qid);
	if ((r = st_del_key(s, s->queues, name, len, "queues del")) != 0 ||
	    (r = st_del_key(s, s->qnames, kb, sizeof(kb), "qnames del")) != 0)
		return r;
	for (i = 0; i < STORE_SLOTS; i++)
		if ((r = st_del_key(s, s->counts[i], kb, sizeof(kb),
		    "counts del")) != 0)
			return r;
	for (i = 0; i < s->npending; i++)
		if (s->pending[i].qid == qid)
			memset(s->pending[i].d, 0, sizeof(s->pending[i].d));
	return STORE_OK;
}

/* STORE_OK if db holds a key of the queue, STORE_NOTFOUND if not. */
static int
queue_has_keys(struct store *s, DB *db, uint32_t qid)
{
	unsigned char	 kb[QID_LEN];
	DBC		*c;
	DBT		 key, val;
	int		 r;

	if ((r = st_cursor_open(s, db, &c, DB_READ_COMMITTED)) != 0)
		return r;
	be32_put(kb, qid);
	dbt_set(&key, kb, sizeof(kb));
	dbt_set(&val, NULL, 0);
	val.flags = DB_DBT_PARTIAL;	/* keys only */
	r = st_rc(s, c->get(c, &key, &val, DB_SET_RANGE), "forget seek");
	if (r == STORE_OK && (key.size < QID_LEN || be32_get(key.data) != qid))
		r = STORE_NOTFOUND;
	return st_cursor_close(s, c, r);
}

uint64_t
store_queue_stamp(const int64_t c[STORE_NCOUNTERS])
{
	uint64_t	stamp = 0;
	size_t		i;

	/* The totals only grow: any message's coming, going or moving
	   adds to their sum. */
	for (i = STORE_C_ENQUEUED; i < STORE_NCOUNTERS; i++)
		stamp += (uint64_t)c[i];
	return stamp;
}

/* The lists of databases below name each far database. */
_Static_assert(FAR_SHARDS == 4, "a list of far databases is out of date");

int
store_queue_forget(struct store *s, uint32_t qid, uint64_t stamp)
{
	DB		*dbs[] = { s->msgs, s->far[0], s->far[1], s->far[2],
			    s->far[3], s->ids, s->leases };
	char		 name[STORE_DEAD_NAME_MAX + 1];
	int64_t		 c[STORE_NCOUNTERS];
	uint32_t	 found;
	size_t		 len, i;
	int		 r;

	if ((r = store_queue_name(s, qid, name, sizeof(name), &len)) != 0 ||
	    (r = queue_get(s, name, len, &found, DB_RMW)) != 0)
		return r;
	if (found != qid)
		return STORE_NOTFOUND;	/* deleted, the name used again */
	/* Read-committed is enough now: no writer of the queue is left. */
	if ((r = store_queue_counters(s, qid, c)) != 0)
		return r;
	if (c[STORE_C_MESSAGES] != 0 || c[STORE_C_RESERVED] != 0 ||
	    store_queue_stamp(c) != stamp)
		return STORE_NOTFOUND;
	/* The counters say empty; the messages must agree, or it stays. */
	for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		if ((r = queue_has_keys(s, dbs[i], qid)) == STORE_OK) {
			log_warnx("queue %u counts no message but has keys: "
			    "kept", qid);
			return STORE_NOTFOUND;
		}
		if (r != STORE_NOTFOUND)
			return r;
	}
	return queue_unregister(s, name, len, qid);
}

int
store_queue_delete(struct store *s, const void *name, size_t len,
    int64_t *count)
{
	unsigned char	kb[QID_LEN];
	DBT		key, val;
	uint32_t	qid;
	int		r;

	*count = 0;
	if ((r = queue_get(s, name, len, &qid, DB_RMW)) != 0)
		return r;
	if ((r = store_queue_count(s, qid, count)) != 0 ||
	    (r = queue_unregister(s, name, len, qid)) != 0)
		return r;
	be32_put(kb, qid);
	dbt_set(&key, kb, sizeof(kb));
	dbt_set(&val, "", 0);
	s->wrote = 1;
	return st_rc(s, s->purge->put(s->purge, s->txn, &key, &val, 0),
	    "purge put");
}

/*
 * flags: 0, or DB_READ_COMMITTED for a walk that only reads: its read
 * locks go as the cursor leaves each page, so that counting a million
 * keys does not need a million locks (the lock table holds 20,000).
 */
int
st_cursor_open(struct store *s, DB *db, DBC **c, uint32_t flags)
{
	int	r;

	*c = NULL;
	if ((r = st_txn(s)) != 0 || (r = st_adds_flush(s)) != 0)
		return r;
	return st_rc(s, db->cursor(db, s->txn, c, st_read_flags(s, flags)),
	    "cursor");
}

void
store_isolate(struct store *s, int on)
{
	s->isolated = on;
}

void
store_fake_deadlocks(struct store *s, unsigned n)
{
	s->fake_deadlocks = n;
}

uint32_t
st_read_flags(const struct store *s, uint32_t flags)
{
	return s->isolated ? flags & ~(uint32_t)DB_READ_COMMITTED : flags;
}

int
st_cursor_close(struct store *s, DBC *c, int r)
{
	int	r2;

	if (c == NULL)		/* never opened: r says why */
		return r;
	r2 = st_rc(s, c->close(c), "cursor close");
	return r != STORE_OK ? r : r2;
}

/* One slot's cursor in store_queue_totals: its current record. */
struct slot_walk {
	DBC		*c;
	int		 r;		/* of the last get: OK or NOTFOUND */
	uint32_t	 qid;
	int64_t		 v[STORE_NCOUNTERS];
};

/* flags DB_SET_RANGE: the first record at or after qid from. */
static int
slot_next(struct store *s, struct slot_walk *w, uint32_t flags,
    uint32_t from)
{
	unsigned char	kb[QID_LEN];
	DBT		key, val;
	size_t		i;

	be32_put(kb, from);
	dbt_set(&key, flags == DB_SET_RANGE ? kb : NULL,
	    flags == DB_SET_RANGE ? sizeof(kb) : 0);
	dbt_set(&val, NULL, 0);
	w->r = st_rc(s, w->c->get(w->c, &key, &val, flags), "counts next");
	if (w->r != STORE_OK)
		return w->r == STORE_NOTFOUND ? STORE_OK : w->r;
	w->qid = key.size == QID_LEN ? be32_get(key.data) : 0;
	memset(w->v, 0, sizeof(w->v));
	for (i = 0; i < STORE_NCOUNTERS && (i + 1) * 8 <= val.size; i++)
		w->v[i] = (int64_t)be64_get((unsigned char *)val.data + 8 * i);
	return STORE_OK;
}

/* Adds up the slots' records of qid into c, leaving every cursor past it. */
static int
slots_sum(struct store *s, struct slot_walk *w, uint32_t qid,
    int64_t c[STORE_NCOUNTERS])
{
	size_t	i, j;
	int	r;

	memset(c, 0, sizeof(int64_t) * STORE_NCOUNTERS);
	for (i = 0; i < STORE_SLOTS; i++) {
		while (w[i].r == STORE_OK && w[i].qid <= qid) {
			if (w[i].qid == qid)
				for (j = 0; j < STORE_NCOUNTERS; j++)
					c[j] += w[i].v[j];
			if ((r = slot_next(s, &w[i], DB_NEXT, 0)) != STORE_OK)
				return r;
		}
	}
	for (j = 0; j < STORE_NCOUNTERS; j++)
		if (c[j] < 0)
			c[j] = 0;
	return STORE_OK;
}

/*
 * Every queue in qid order from qid *from on with its counters, at most
 * max of them; *from is then the qid to go on from, or 0 at the end.
 * qnames.db and the slots' sub-databases, all sorted by qid, are read side
 * by side: sequential pages, read locks let go as the cursors move.
 * O(queues) for KEYS, DBSIZE, INFO and the metrics, where a lookup in 16
 * slots per queue took 6 s for 300,000 queues and ran the lock table out.
 */
static int
totals_walk(struct store *s, uint64_t *from, size_t max, store_totals_fn fn,
    void *arg)
{
	struct slot_walk	 w[STORE_SLOTS];
	int64_t			 c[STORE_NCOUNTERS];
	unsigned char		 kb[QID_LEN];
	uint32_t		 start = (uint32_t)*from, qid;
	DBC			*q;
	DBT			 key, val;
	size_t			 i, seen = 0;
	int			 r;

	memset(w, 0, sizeof(w));
	*from = 0;
	if ((r = st_txn(s)) != STORE_OK || (r = counts_flush(s)) != STORE_OK ||
	    (r = st_cursor_open(s, s->qnames, &q, DB_READ_COMMITTED)) != 0)
		return r;
	for (i = 0; i < STORE_SLOTS && r == STORE_OK; i++)
		if ((r = st_cursor_open(s, s->counts[i], &w[i].c,
		    DB_READ_COMMITTED)) == STORE_OK)
			r = slot_next(s, &w[i], DB_SET_RANGE, start);
	be32_put(kb, start);
	dbt_set(&key, kb, sizeof(kb));
	dbt_set(&val, NULL, 0);
	if (r == STORE_OK)
		r = st_rc(s, q->get(q, &key, &val, DB_SET_RANGE),
		    "qnames seek");
	for (; r == STORE_OK; r = st_rc(s, q->get(q, &key, &val, DB_NEXT),
	    "qnames next")) {
		if (key.size != QID_LEN)
			continue;
		qid = be32_get(key.data);
		if (seen++ == max) {
			*from = qid;
			break;
		}
		if ((r = slots_sum(s, w, qid, c)) != STORE_OK ||
		    fn(arg, qid, val.data, val.size, c))
			break;
	}
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	for (i = 0; i < STORE_SLOTS; i++)
		r = st_cursor_close(s, w[i].c, r);
	return st_cursor_close(s, q, r);
}

int
store_queue_totals(struct store *s, store_totals_fn fn, void *arg)
{
	uint64_t	from = 0;

	return totals_walk(s, &from, SIZE_MAX, fn, arg);
}

int
store_queue_name(struct store *s, uint32_t qid, char *buf, size_t bufsize,
    size_t *len)
{
	unsigned char	kb[QID_LEN];
	DBT		key, val;
	int		r;

	if ((r = st_txn(s)) != STORE_OK)
		return r;
	be32_put(kb, qid);
	dbt_set(&key, kb, sizeof(kb));
	dbt_set(&val, buf, 0);
	val.ulen = (uint32_t)(bufsize > 0 ? bufsize - 1 : 0);
	val.flags = DB_DBT_USERMEM;
	r = st_rc(s, s->qnames->get(s->qnames, s->txn, &key, &val, 0),
	    "qnames get");
	if (r == STORE_OK) {
		buf[val.size] = '\0';
		*len = val.size;
	}
	return r;
}

int
store_queue_scan(struct store *s, uint64_t *cursor, size_t n,
    store_totals_fn fn, void *arg)
{
	if (*cursor > UINT32_MAX) {
		*cursor = 0;
		return STORE_OK;
	}
	return totals_walk(s, cursor, n, fn, arg);
}

static int
grow(struct store *s, unsigned char **p, size_t *cap, size_t n)
{
	unsigned char	*np;

	if (n <= *cap)
		return STORE_OK;
	if ((np = dq_realloc(*p, n)) == NULL) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		return STORE_ERR;
	}
	*p = np;
	*cap = n;
	return STORE_OK;
}

/*
 * Above these, a buffer goes back after its transaction: one message of
 * the default max_message_bytes (1 MiB) fits under the first, a batch of
 * new messages (flushed at 4 MiB) under the second, so that the hot paths
 * never give back what they use again at once.
 */
#define TRIM_MSG_BYTES		(2u << 20)
#define TRIM_BATCH_BYTES	(8u << 20)

/* Frees *p (an array of *cap elements of elsize bytes) above limit bytes. */
static void
trim(void *pp, size_t *cap, size_t elsize, size_t limit)
{
	void	**p = pp;

	if (*cap * elsize > limit) {
		dq_free(*p);
		*p = NULL;
		*cap = 0;
	}
}

void
store_trim(struct store *s)
{
	if (s->txn != NULL || s->nadds > 0)
		return;		/* what they hold is still in use */
	trim(&s->vbuf, &s->vcap, 1, TRIM_MSG_BYTES);
	trim(&s->rbuf, &s->rcap, 1, TRIM_MSG_BYTES);
	trim(&s->pbuf, &s->pcap, 1, TRIM_MSG_BYTES);
	trim(&s->abuf, &s->acap, 1, TRIM_BATCH_BYTES);
	trim(&s->aoff, &s->aoffcap, sizeof(*s->aoff), TRIM_BATCH_BYTES);
}

int
st_cursor_get_in(struct store *s, DBC *c, DBT *key, DBT *val,
    uint32_t flags, unsigned char **buf, size_t *cap, size_t off,
    const char *what)
{
	int	ret;

	if (grow(s, buf, cap, off + 256) != STORE_OK)
		return STORE_ERR;
	for (;;) {
		dbt_set(val, *buf + off, 0);
		val->ulen = (uint32_t)(*cap - off);
		val->flags = DB_DBT_USERMEM;
		/* A get that fails leaves the cursor where it was. */
		if ((ret = c->get(c, key, val, flags)) != DB_BUFFER_SMALL)
			return st_rc(s, ret, what);
		if (grow(s, buf, cap, off + val->size) != STORE_OK)
			return STORE_ERR;
	}
}

int
st_cursor_get(struct store *s, DBC *c, DBT *key, DBT *val, uint32_t flags,
    size_t off, const char *what)
{
	return st_cursor_get_in(s, c, key, val, flags, &s->rbuf, &s->rcap,
	    off, what);
}

int
st_vbuf_reserve(struct store *s, size_t n)
{
	return grow(s, &s->vbuf, &s->vcap, n);
}

int
st_rbuf_reserve(struct store *s, size_t n)
{
	return grow(s, &s->rbuf, &s->rcap, n);
}

/*
 * dqctl backup holds an exclusive lock on DATA_DIR/dqd.backup while it
 * copies: log files stay until it is done, so that it never misses one.
 */
static int
backup_running(struct store *s)
{
	const char	*home = NULL;
	char		 path[4096];
	int		 fd, busy;

	if (s->env->get_home(s->env, &home) != 0 || home == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/dqd.backup", home);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	busy = flock(fd, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

/* The log position of the last checkpoint. */
static int
last_checkpoint(struct store *s, DB_LSN *lsn)
{
	DB_TXN_STAT	*st;
	int		 r;

	if ((r = st_rc(s, s->env->txn_stat(s->env, &st, 0), "txn_stat")) != 0)
		return r;
	*lsn = st->st_last_ckp;
	free(st);
	return STORE_OK;
}

/*
 * Berkeley DB's sleeps, cut short.  A checkpoint writes every dirty page
 * it listed; a page a worker holds for writing (the head and tail pages
 * of a busy queue are held most of the time) is skipped, and after each
 * pass that skipped one, memp_sync sleeps a whole second before the next.
 * Under a steady load a checkpoint took 1-5 s that way, and the log to
 * replay after a crash grew with it (a gigabyte, 3.5 s of recovery, with
 * 2 KiB messages).  Berkeley DB allows any sleep to be shorter than asked
 * (os_yield.c): capped here, the next pass comes as soon as the worker
 * lets go of the page.
 */
#define YIELD_MAX_US	2000

static int
yield_briefly(u_long secs, u_long usecs)
{
	struct timespec	ts;
	uint64_t	us;

	us = secs > 0 ? YIELD_MAX_US : usecs;
	if (us > YIELD_MAX_US)
		us = YIELD_MAX_US;
	if (us == 0) {
		(void)sched_yield();
		return 0;
	}
	ts.tv_sec = 0;
	ts.tv_nsec = (long)us * 1000;
	(void)nanosleep(&ts, NULL);
	return 0;
}

void
store_short_sleeps(void)
{
	(void)db_env_set_func_yield(yield_briefly);
}

int
store_checkpoint(struct store *s, uint32_t min_kbytes, int *done)
{
	DB_LSN	  before, after;
	char	**list = NULL;
	int	  r;

	if (done != NULL)
		*done = 0;
	store_short_sleeps();
	if (min_kbytes > 0 && (r = last_checkpoint(s, &before)) != 0)
		return r;
	if ((r = st_rc(s, s->env->txn_checkpoint(s->env, min_kbytes, 0, 0),
	    "checkpoint")) != 0)
		return r;
	if (min_kbytes > 0) {
		if ((r = last_checkpoint(s, &after)) != 0)
			return r;
		if (after.file == before.file && after.offset == before.offset)
			return STORE_OK;	/* not enough log yet */
	}
	if (done != NULL)
		*done = 1;
	if (backup_running(s))
		return STORE_OK;
	/* Log files no longer needed for recovery go: disk stays bounded. */
	r = st_rc(s, s->env->log_archive(s->env, &list, DB_ARCH_REMOVE),
	    "log_archive");
	free(list);
	return r;
}

int
store_log_file(struct store *s, uint32_t *file)
{
	DB_LOG_STAT	*st;
	int		 r;

	if ((r = st_rc(s, s->env->log_stat(s->env, &st, 0), "log_stat")) != 0)
		return r;
	*file = st->st_cur_file;
	free(st);
	return STORE_OK;
}

int
store_log_flush(struct store *s)
{
	return st_rc(s, s->env->log_flush(s->env, NULL), "log_flush");
}

/*
 * One compaction pass over one database, pages merged up to fill % full
 * (0: full).  Berkeley DB runs it in transactions of its own, a few pages
 * at a time, beside the workers; busy pages wait for the next time.
 * flags DB_FREE_SPACE: pages above the free ones move down and the file
 * is cut.  Each move allocates a page under the metadata page's lock,
 * held until that transaction commits, and a pass that merges little
 * commits seldom: a partial pass with it stalled the workers' page splits
 * for 0.5-0.8 s with 3 million far messages (25 s on a loaded machine).
 * *freed: pages the file lost; it can have grown meanwhile.
 */
static int
compact_pass(struct store *s, DB *db, uint32_t fill, uint32_t flags,
    DB_COMPACT *c, uint64_t *freed)
{
	int	r;

	memset(c, 0, sizeof(*c));
	c->compact_fillpercent = fill;
	r = st_rc(s, db->compact(db, NULL, NULL, NULL, c, flags, NULL),
	    "compact");
	/* Berkeley DB's count is the file's old end minus its new one. */
	if ((int32_t)c->compact_pages_truncated > 0)
		*freed += c->compact_pages_truncated;
	return r == STORE_RETRY ? STORE_OK : r;
}

/* The pages of a database's file, from its metadata (no tree walk). */
static int
db_pages(struct store *s, DB *db, uint32_t *pages)
{
	DB_BTREE_STAT	*st;
	int		 r;

	r = st_rc(s, db->stat(db, NULL, &st, DB_FAST_STAT), "stat");
	if (r == STORE_OK) {
		*pages = st->bt_pagecnt;
		free(st);
	}
	return r;
}

/*
 * Compacts the message databases, so that a drained or deleted queue gives
 * its space back.  Merging every page up to full rewrites the tree through
 * the log, and keys that arrive in random order (far.db, ids chosen by
 * producers) leave pages about half full by design: with 4.5 million
 * waiting that was 1.4 GB of log in 15 s, p99 3.6 -> 65 ms, for 23 MB given
 * back, and the next enqueues split the merged pages again.  So the first
 * pass merges only pages under COMPACT_FILL % full, and moves nothing (see
 * compact_pass).  Where the file is still more than twice the leaf pages
 * that pass walked, most of it is free (a drain, a DEL): a full pass then
 * merges what is left and gives the free pages back.  Otherwise the free
 * pages stay for the next enqueues.
 */
int
store_compact(struct store *s, uint64_t *freed)
{
	DB		*dbs[] = { s->msgs, s->far[0], s->far[1], s->far[2],
			    s->far[3], s->ids, s->leases };
	DB_COMPACT	 c;
	uint32_t	 pages;
	size_t		 i;
	int		 r = STORE_OK;

	*freed = 0;
	for (i = 0; r == STORE_OK && i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		if ((r = compact_pass(s, dbs[i], COMPACT_FILL, 0, &c,
		    freed)) != 0 || (r = db_pages(s, dbs[i], &pages)) != 0 ||
		    pages <= 2 * c.compact_pages_examine + COMPACT_SLACK)
			continue;
		r = compact_pass(s, dbs[i], 0, DB_FREE_SPACE, &c, freed);
	}
	return r;
}

/* Deletes up to max keys that start with the 4-byte qid; returns count. */
static int
purge_prefix(struct store *s, DB *db, uint32_t qid, size_t max, size_t *n)
{
	unsigned char	 kb[QID_LEN];
	DBC		*c;
	DBT		 key, val;
	int		 r;

	*n = 0;
	if ((r = st_cursor_open(s, db, &c, 0)) != 0)
		return r;
	be32_put(kb, qid);
	dbt_set(&key, kb, sizeof(kb));
	dbt_set(&val, NULL, 0);
	val.flags = DB_DBT_PARTIAL;	/* keys only: skip the bodies */
	r = st_rc(s, c->get(c, &key, &val, DB_SET_RANGE | DB_RMW), "purge seek");
	while (r == STORE_OK && *n < max) {
		if (key.size < QID_LEN || be32_get(key.data) != qid)
			break;
		if ((r = st_cursor_del(s, c, "purge del")) != 0)
			break;
		(*n)++;
		r = st_rc(s, c->get(c, &key, &val, DB_NEXT | DB_RMW),
		    "purge next");
	}
	if (r == STORE_NOTFOUND)
		r = STORE_OK;
	return st_cursor_close(s, c, r);
}

static int
purge_first(struct store *s, uint32_t *qid)
{
	DBC	*c;
	DBT	 key, val;
	int	 r;

	if ((r = st_cursor_open(s, s->purge, &c, 0)) != 0)
		return r;
	dbt_set(&key, NULL, 0);
	dbt_set(&val, NULL, 0);
	r = st_rc(s, c->get(c, &key, &val, DB_FIRST), "purge first");
	if (r == STORE_OK) {
		if (key.size == QID_LEN)
			*qid = be32_get(key.data);
		else
			r = STORE_ERR;
	}
	return st_cursor_close(s, c, r);
}

int
store_purge_step(struct store *s, size_t max, int *more)
{
	unsigned char	kb[QID_LEN];
	uint32_t	qid;
	size_t		n1 = 0, n2 = 0, i;
	int		r;

	*more = 0;
	r = purge_first(s, &qid);
	if (r == STORE_OK)
		r = purge_prefix(s, s->msgs, qid, max, &n1);
	for (i = 0; i < FAR_SHARDS && r == STORE_OK && n1 < max; i++)
		r = purge_prefix(s, s->far[i], qid, max, &n1);
	if (r == STORE_OK)
		r = purge_prefix(s, s->ids, qid, max, &n2);
	if (r == STORE_OK && n2 < max)
		r = purge_prefix(s, s->leases, qid, max, &n2);
	/* Each count is of the last database it walked: below max, that
	   one and the one before are done. */
	if (r == STORE_OK && n1 < max && n2 < max) {
		be32_put(kb, qid);
		r = st_del_key(s, s->purge, kb, sizeof(kb), "purge done");
	}
	if (r == STORE_OK) {
		*more = 1;
		return store_commit(s);
	}
	store_abort(s);
	return r == STORE_NOTFOUND ? STORE_OK : r;
}

static uint64_t
dir_bytes(const char *dir, const char *prefix, const char *suffix)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		 path[4096];
	uint64_t	 total = 0;
	size_t		 nl, sl = strlen(suffix);

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		nl = strlen(de->d_name);
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
		    nl < sl || strcmp(de->d_name + nl - sl, suffix) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0)
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

int
store_info(struct store *s, struct store_info *si)
{
	DB_MPOOL_STAT	*mp = NULL;
	DB_LOCK_STAT	*lk = NULL;
	DB_TXN_STAT	*tx = NULL;
	const char	*home = NULL;
	int		 r;

	memset(si, 0, sizeof(*si));
	if ((r = st_rc(s, s->env->memp_stat(s->env, &mp, NULL, 0),
	    "memp_stat")) != 0)
		return r;
	si->cache_bytes = (uint64_t)mp->st_gbytes * 1024 * 1024 * 1024 +
	    mp->st_bytes;
	si->cache_hit = mp->st_cache_hit;
	si->cache_miss = mp->st_cache_miss;
	free(mp);
	if ((r = st_rc(s, s->env->lock_stat(s->env, &lk, 0), "lock_stat")) != 0)
		return r;
	si->deadlocks = lk->st_ndeadlocks;
	si->lock_waits = lk->st_lock_wait;
	free(lk);
	if ((r = st_rc(s, s->env->txn_stat(s->env, &tx, 0), "txn_stat")) != 0)
		return r;
	si->last_checkpoint = (uint64_t)tx->st_time_ckp;
	free(tx);
	if (s->env->get_home(s->env, &home) == 0 && home != NULL) {
		si->log_bytes = dir_bytes(home, "log.", "");
		si->data_bytes = dir_bytes(home, "", ".db");
	}
	return STORE_OK;
}
