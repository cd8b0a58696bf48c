/*
 * takeceil: what Berkeley DB alone does for SPOP, on this machine.
 *
 * The ceiling under dqd's dequeue rows (bench/README.md, "The engine's
 * ceiling"): no network, no protocol, no reply.  It loads n due messages
 * into a fresh transactional environment set up as dqd sets up its own
 * (cache, log buffer and file size, lock detection, 16 KiB pages), keyed
 * as dqd keys them (queue, due, seq: 20 bytes; an 8-byte header and the
 * body), then
 * `procs` processes take them as dqd's workers do: a cursor from the
 * queue's head with DB_RMW, each message deleted through the cursor,
 * `batch` messages per transaction, committed with DB_TXN_WRITE_NOSYNC
 * (dqd's durability "write").  Prints one JSON object.
 *
 *	takeceil -d DIR [-n messages] [-b batch] [-p procs] [-s body_bytes]
 *	    [-c cache_mb]
 *
 * DIR must not exist; it is removed again at the end.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <db.h>
#include <err.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEY_LEN		20
#define HDR_LEN		8
#define LOAD_TXN	250	/* messages per transaction while loading */
#define QID		1

static const char	*dir;
static int		 cache_mb = 64;

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void
be64(unsigned char *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

static void
check(int ret, const char *what)
{
	if (ret != 0)
		errx(1, "%s: %s", what, db_strerror(ret));
}

/* The environment as src/store.c opens it. */
static DB_ENV *
env_open(void)
{
	DB_ENV	*env;

	check(db_env_create(&env, 0), "db_env_create");
	env->set_errfile(env, stderr);
	check(env->set_cachesize(env, 0, cache_mb * 1024 * 1024, 1),
	    "set_cachesize");
	check(env->set_lk_detect(env, DB_LOCK_YOUNGEST), "set_lk_detect");
	check(env->set_lk_max_locks(env, 20000), "set_lk_max_locks");
	check(env->set_lk_max_objects(env, 20000), "set_lk_max_objects");
	check(env->set_lg_bsize(env, 2 * 1024 * 1024), "set_lg_bsize");
	check(env->set_lg_max(env, 8 * 1024 * 1024), "set_lg_max");
	check(env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1),
	    "log_set_config");
	check(env->open(env, dir, DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG |
	    DB_INIT_MPOOL | DB_INIT_TXN, 0600), dir);
	return env;
}

static DB *
db_open(DB_ENV *env)
{
	DB	*db;

	check(db_create(&db, env, 0), "db_create");
	/* dqd's msgs.db: near keys on 16 KiB pages (src/store.c). */
	check(db->set_pagesize(db, 16384), "set_pagesize");
	check(db->open(db, NULL, "msgs.db", NULL, DB_BTREE,
	    DB_CREATE | DB_AUTO_COMMIT, 0600), "msgs.db");
	return db;
}

static void
load(DB_ENV *env, DB *db, long n, int body)
{
	unsigned char	 k[KEY_LEN], *v;
	DB_TXN		*txn = NULL;
	DBT		 key, val;
	long		 i;

	if ((v = calloc(1, HDR_LEN + body)) == NULL)
		err(1, "calloc");
	memset(v + HDR_LEN, 'x', body);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = KEY_LEN;
	val.data = v;
	val.size = HDR_LEN + body;
	for (i = 0; i < n; i++) {
		if (txn == NULL)
			check(env->txn_begin(env, NULL, &txn, 0), "txn_begin");
		/* All due long ago, in arrival order, as after a load. */
		be32(k, QID);
		be64(k + 4, 1000000 + (uint64_t)i);
		be64(k + 12, (uint64_t)i);
		check(db->put(db, txn, &key, &val, 0), "put");
		if ((i + 1) % LOAD_TXN == 0 || i + 1 == n) {
			check(txn->commit(txn, DB_TXN_WRITE_NOSYNC), "commit");
			txn = NULL;
		}
	}
	free(v);
	check(env->txn_checkpoint(env, 0, 0, DB_FORCE), "checkpoint");
}

/* One transaction's take; returns the messages taken, -1 on deadlock. */
static long
take_once(DB_ENV *env, DB *db, long batch)
{
	unsigned char	 k[KEY_LEN], buf[4096];
	DB_TXN		*txn;
	DBC		*c;
	DBT		 key, val;
	long		 n = 0;
	int		 ret;

	check(env->txn_begin(env, NULL, &txn, 0), "txn_begin");
	check(db->cursor(db, txn, &c, 0), "cursor");
	memset(k, 0, sizeof(k));
	be32(k, QID);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = k;
	key.size = KEY_LEN;
	ret = c->get(c, &key, &val, DB_SET_RANGE | DB_RMW);
	while (ret == 0 && n < batch) {
		/* What a reply would need: the body, copied out. */
		if (val.size > sizeof(buf))
			errx(1, "record of %u bytes", val.size);
		memcpy(buf, val.data, val.size);
		if ((ret = c->del(c, 0)) != 0)
			break;
		n++;
		ret = c->get(c, &key, &val, DB_NEXT | DB_RMW);
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
	if (ret == 0)
		ret = c->close(c);
	else
		(void)c->close(c);
	if (ret == DB_LOCK_DEADLOCK) {
		check(txn->abort(txn), "abort");
		return -1;
	}
	check(ret, "take");
	check(txn->commit(txn, DB_TXN_WRITE_NOSYNC), "commit");
	return n;
}

/* A taker process: takes until the queue is empty, exits with 0. */
static void
taker(int fd, long batch)
{
	DB_ENV	*env = env_open();
	DB	*db = db_open(env);
	long	 n, total = 0, deadlocks = 0;

	for (;;) {
		if ((n = take_once(env, db, batch)) == -1) {
			deadlocks++;
			continue;
		}
		if (n == 0)
			break;
		total += n;
	}
	dprintf(fd, "%ld %ld\n", total, deadlocks);
	check(db->close(db, 0), "db close");
	check(env->close(env, 0), "env close");
	_exit(0);
}

static void
usage(void)
{
	fprintf(stderr, "usage: takeceil -d DIR [-n messages] [-b batch] "
	    "[-p procs] [-s body_bytes] [-c cache_mb]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	DB_ENV	*env;
	DB	*db;
	FILE	*in;
	long	 n = 1000000, batch = 2500, taken = 0, deadlocks = 0, t, d;
	int	 procs = 2, body = 100, ch, fds[2], i, status;
	double	 t0, secs;
	char	 cmd[4200];

	while ((ch = getopt(argc, argv, "b:c:d:n:p:s:")) != -1) {
		switch (ch) {
		case 'b': batch = atol(optarg); break;
		case 'c': cache_mb = atoi(optarg); break;
		case 'd': dir = optarg; break;
		case 'n': n = atol(optarg); break;
		case 'p': procs = atoi(optarg); break;
		case 's': body = atoi(optarg); break;
		default: usage();
		}
	}
	if (dir == NULL || n < 1 || batch < 1 || procs < 1 || body < 0 ||
	    body > 4000 || cache_mb < 1 || strlen(dir) > 4000)
		usage();
	if (mkdir(dir, 0700) == -1)
		err(1, "%s", dir);
	env = env_open();
	db = db_open(env);
	load(env, db, n, body);
	if (pipe(fds) == -1)
		err(1, "pipe");
	t0 = now_s();
	for (i = 0; i < procs; i++) {
		switch (fork()) {
		case -1:
			err(1, "fork");
		case 0:
			close(fds[0]);
			taker(fds[1], batch);
		}
	}
	close(fds[1]);
	for (i = 0; i < procs; i++) {
		if (wait(&status) == -1)
			err(1, "wait");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			errx(1, "a taker failed");
	}
	secs = now_s() - t0;
	if ((in = fdopen(fds[0], "r")) == NULL)
		err(1, "fdopen");
	while (fscanf(in, "%ld %ld", &t, &d) == 2) {
		taken += t;
		deadlocks += d;
	}
	fclose(in);
	check(db->close(db, 0), "db close");
	check(env->close(env, 0), "env close");
	if (taken != n)
		errx(1, "took %ld of %ld messages", taken, n);
	printf("{\"messages\": %ld, \"seconds\": %.3f, \"msgs_per_s\": %.0f, "
	    "\"procs\": %d, \"batch\": %ld, \"deadlocks\": %ld}\n",
	    taken, secs, taken / secs, procs, batch, deadlocks);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
