/*
 * logprep: the next log file made ahead of time (logprep.h).  The file
 * itself (made once, never over a file that exists, nothing left behind
 * on failure), then with Berkeley DB: an environment that writes into
 * prepared files and one that crashes with a prepared file not yet begun
 * recover every committed record.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logprep.h"

#define LOG_SIZE	(1024 * 1024)	/* small log files: they switch soon */

static char	dir[] = "/tmp/dq-test-logprep-XXXXXX";
static int	writes_left = -1;	/* the seam fails after this many */

static ssize_t
failing_write(int fd, const void *buf, size_t n)
{
	if (writes_left == 0) {
		errno = ENOSPC;
		return -1;
	}
	if (writes_left > 0)
		writes_left--;
	return write(fd, buf, n);
}

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	writes_left = -1;
	logprep_write_fn = failing_write;
}

static void
teardown(void)
{
	char	cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
	logprep_write_fn = write;
}

static char *
path_of(const char *name)
{
	static char	p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static char *
tmp_path(void)
{
	static char	name[64];

	snprintf(name, sizeof(name), "%s%ld", LOGPREP_TMP, (long)getpid());
	return path_of(name);
}

static int
all_zero(const char *path, off_t *size)
{
	char	buf[4096];
	ssize_t	n;
	int	fd, zero = 1;

	*size = 0;
	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			zero &= buf[i] == 0;
		*size += n;
	}
	close(fd);
	return zero;
}

TestSuite(logprep, .init = setup, .fini = teardown);

Test(logprep, makes_the_next_file_once)
{
	off_t	size;

	cr_assert_eq(logprep_next(dir, 1, LOG_SIZE), 1);
	cr_assert_eq(all_zero(path_of("log.0000000002"), &size), 1);
	cr_assert_eq(size, LOG_SIZE);
	cr_assert_eq(logprep_next(dir, 1, LOG_SIZE), 0);
	cr_assert_eq(access(tmp_path(), F_OK), -1);
}

Test(logprep, never_touches_a_file_that_exists)
{
	const char	 text[] = "Berkeley DB's own log file";
	char		 buf[64] = "";
	int		 fd;

	fd = open(path_of("log.0000000008"), O_WRONLY | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text)), (ssize_t)sizeof(text));
	close(fd);
	cr_assert_eq(logprep_next(dir, 7, LOG_SIZE), 0);
	fd = open(path_of("log.0000000008"), O_RDONLY);
	cr_assert_eq(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(text));
	close(fd);
	cr_assert_str_eq(buf, text);
	cr_assert_eq(access(tmp_path(), F_OK), -1);
}

Test(logprep, a_failed_write_leaves_nothing)
{
	writes_left = 3;
	errno = 0;
	cr_assert_eq(logprep_next(dir, 1, LOG_SIZE), -1);
	cr_assert_eq(errno, ENOSPC);
	cr_assert_eq(access(path_of("log.0000000002"), F_OK), -1);
	cr_assert_eq(access(tmp_path(), F_OK), -1);
	/* and the next try, with room again, works */
	writes_left = -1;
	cr_assert_eq(logprep_next(dir, 1, LOG_SIZE), 1);
}

Test(logprep, clean_removes_only_the_files_of_writers_gone)
{
	char	mine[256], gone[256], other[256];
	int	fd;

	/* pid 0x7ffffff0 is above pid_max: no such process */
	snprintf(mine, sizeof(mine), "%s", tmp_path());
	snprintf(gone, sizeof(gone), "%s", path_of(LOGPREP_TMP "2147483632"));
	snprintf(other, sizeof(other), "%s", path_of("dqd-logprep.tmp.x"));
	cr_assert_geq(fd = open(mine, O_CREAT | O_WRONLY, 0600), 0);
	close(fd);
	cr_assert_geq(fd = open(gone, O_CREAT | O_WRONLY, 0600), 0);
	close(fd);
	cr_assert_geq(fd = open(other, O_CREAT | O_WRONLY, 0600), 0);
	close(fd);
	logprep_clean(dir);
	cr_assert_eq(access(mine, F_OK), 0, "a live writer's file went");
	cr_assert_eq(access(gone, F_OK), -1, "a dead writer's file stayed");
	cr_assert_eq(access(other, F_OK), 0, "not ours, must stay");
}

Test(logprep, bad_arguments)
{
	char	longdir[PATH_MAX + 16];

	cr_assert_eq(logprep_next(dir, UINT32_MAX, LOG_SIZE), -1);
	memset(longdir, 'a', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	cr_assert_eq(logprep_next(longdir, 1, LOG_SIZE), -1);
	cr_assert_eq(errno, ENAMETOOLONG);
	cr_assert_eq(logprep_next("/nonexistent/dir", 1, LOG_SIZE), -1);
}

/* With Berkeley DB ------------------------------------------------------ */

static void
open_env(DB_ENV **envp, DB **dbp, int recover)
{
	DB_ENV	*env;
	DB	*db;

	cr_assert_eq(db_env_create(&env, 0), 0);
	cr_assert_eq(env->set_lg_max(env, LOG_SIZE), 0);
	cr_assert_eq(env->open(env, dir, DB_CREATE | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN |
	    (recover ? DB_RECOVER : 0), 0600), 0);
	cr_assert_eq(db_create(&db, env, 0), 0);
	cr_assert_eq(db->open(db, NULL, "t.db", NULL, DB_BTREE,
	    DB_CREATE | DB_AUTO_COMMIT, 0600), 0);
	*envp = env;
	*dbp = db;
}

static uint32_t
cur_file(DB_ENV *env)
{
	DB_LOG_STAT	*st;
	uint32_t	 f;

	cr_assert_eq(env->log_stat(env, &st, 0), 0);
	f = st->st_cur_file;
	free(st);
	return f;
}

/* Puts records first..last-1 one per transaction (written, not synced: a
   crashed process loses nothing the OS has), preparing the
   next log file before each; returns how many prepared files were used. */
static int
put_range(DB_ENV *env, DB *db, int first, int last)
{
	char		 val[200];
	DBT		 k, v;
	DB_TXN		*txn;
	uint32_t	 was = cur_file(env);
	int		 i, used = 0, made = 0;

	memset(val, 'v', sizeof(val));
	for (i = first; i < last; i++) {
		if (logprep_next(dir, cur_file(env), LOG_SIZE) == 1)
			made++;
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.data = &i;
		k.size = sizeof(i);
		v.data = val;
		v.size = sizeof(val);
		cr_assert_eq(env->txn_begin(env, NULL, &txn, 0), 0);
		cr_assert_eq(db->put(db, txn, &k, &v, 0), 0);
		cr_assert_eq(txn->commit(txn, DB_TXN_WRITE_NOSYNC), 0);
		if (cur_file(env) != was) {
			used++;
			was = cur_file(env);
		}
	}
	cr_assert_geq(made, used);
	return used;
}

static int
count(DB *db)
{
	DBC	*c;
	DBT	 k, v;
	int	 n = 0;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	cr_assert_eq(db->cursor(db, NULL, &c, 0), 0);
	while (c->get(c, &k, &v, DB_NEXT) == 0)
		n++;
	c->close(c);
	return n;
}

Test(logprep, berkeley_db_writes_into_prepared_files)
{
	DB_ENV	*env;
	DB	*db;
	int	 status;
	pid_t	 pid;

	/* A child writes through several prepared files and dies without
	   closing anything: a crash after its last commit. */
	if ((pid = fork()) == 0) {
		open_env(&env, &db, 0);
		if (put_range(env, db, 0, 20000) < 3)
			_exit(2);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(WEXITSTATUS(status), 0, "fewer than 3 log switches");
	open_env(&env, &db, 1);
	cr_assert_eq(count(db), 20000);
	/* and it goes on writing after recovery */
	put_range(env, db, 20000, 30000);
	cr_assert_eq(count(db), 30000);
	db->close(db, 0);
	env->close(env, 0);
}

Test(logprep, recovery_with_a_prepared_file_not_yet_begun)
{
	DB_ENV	*env;
	DB	*db;
	int	 status;
	pid_t	 pid;
	char	 name[32];
	off_t	 size;

	if ((pid = fork()) == 0) {
		open_env(&env, &db, 0);
		put_range(env, db, 0, 100);
		/* the next file is there (put_range made it), all zeros,
		   when it dies */
		snprintf(name, sizeof(name), "log.%010u", cur_file(env) + 1);
		_exit(all_zero(path_of(name), &size) == 1 ? 0 : 2);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(WEXITSTATUS(status), 0);
	/* Recovery finds the end of the log in the file before it, and
	   removes the log files past that end: the prepared one too. */
	open_env(&env, &db, 1);
	cr_assert_eq(count(db), 100);
	snprintf(name, sizeof(name), "log.%010u", cur_file(env) + 1);
	cr_assert_eq(access(path_of(name), F_OK), -1);
	db->close(db, 0);
	env->close(env, 0);
	/* The writes after recovery go into newly prepared files, and
	   survive another crash. */
	if ((pid = fork()) == 0) {
		open_env(&env, &db, 0);
		_exit(put_range(env, db, 100, 10000) >= 1 ? 0 : 2);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(WEXITSTATUS(status), 0);
	open_env(&env, &db, 1);
	cr_assert_eq(count(db), 10000);
	db->close(db, 0);
	env->close(env, 0);
}
