/*
 * store_admin: Berkeley DB work for dqctl (backup, verify, checkpoint,
 * recovery).  See store_admin.h.
 *
 * The hot backup.  DB_ENV->dbbackup copies each database file page by
 * page while holding off dqd's writes to the pages being read (mpool's
 * backup mode), so every page is whole but the file is a mix of ages:
 * only the log makes it consistent.  Catastrophic recovery in the copy
 * replays the log from the last checkpoint taken before the copy began,
 * so every log file from then on must reach the copy, including those
 * that the housekeeper removes after a checkpoint during a long backup.
 * Hence the log files are copied here (DB_ENV->backup would copy them
 * once, at the end, and fail if one vanished meanwhile): once before
 * the database files (every complete file present), then as each one
 * fills (polled from the copy's write callback), and last the current
 * one after a log flush.  The numbers copied must be contiguous; a gap
 * (a log file created, filled and removed between two polls) fails the
 * backup rather than produce a copy that would lose data.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "store.h"
#include "store_admin.h"
#include "util.h"

#define GIGABYTE	(1024ULL * 1024 * 1024)
#define COPY_BUF	(1024 * 1024)
#define POLL_MS		50		/* log files copied as they fill */
#define CACHE_MB	64		/* for recovery and checkpoints */

volatile sig_atomic_t	admin_stop;

struct backup_ctx {
	const char			*target;
	struct admin_backup_result	*res;
	unsigned			 next_log;	/* next to copy; 0: any */
	uint64_t			 last_poll;
	int				 failed;	/* log copy error */
	char				 why[PATH_MAX + 512];
	unsigned char			*buf;
};

struct admin {
	DB_ENV			*env;
	char			*dir;
	char			 msg[512];	/* Berkeley DB's last word */
	struct backup_ctx	*bctx;
};

/*
 * A database file being written.  DB_ENV->dbbackup (5.3) reads 1 MiB at a
 * time and hands the write callback an offset that counts the bytes read
 * so far; after a short read (the file ends, or dqd is extending it) its
 * next read starts one page further on than that offset says, and the
 * pages would land one page too low.  So the position is kept here, the
 * way the library counts pages: page size from the meta page, and one page
 * skipped after any chunk shorter than 1 MiB.  The skipped page stays a
 * hole; it did not exist on disk when it was read, so recovery rebuilds it
 * from the log.
 */
struct out_file {
	int		fd;
	uint32_t	pagesize;	/* 0: unknown, use the library's offset */
	uint64_t	pgno;		/* page the next chunk starts with */
	int		first;
};

#define CHUNK		(1024 * 1024)	/* what dbbackup reads at a time */

static char	verify_msg[512];

static void
admin_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	struct admin	*a = env->app_private;

	if (a != NULL)
		snprintf(a->msg, sizeof(a->msg), "%s", msg);
}

static void
set_err(struct admin *a, char *err, size_t errlen, const char *what, int ret)
{
	if (a != NULL && a->msg[0] != '\0')
		snprintf(err, errlen, "%s: %s (%s)", what, db_strerror(ret),
		    a->msg);
	else
		snprintf(err, errlen, "%s: %s", what, db_strerror(ret));
}

int
admin_is_data_dir(const char *dir)
{
	char		path[PATH_MAX];
	struct stat	st;

	if (path_join(path, sizeof(path), dir, "queues.db") == -1)
		return 0;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Parses "log.0000000042"; 0 if name is not a log file. */
static unsigned
log_number(const char *name)
{
	unsigned long	n;
	char		*end;
	size_t		 i;

	if (strncmp(name, "log.", 4) != 0 || strlen(name) != 14)
		return 0;
	for (i = 4; i < 14; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	n = strtoul(name + 4, &end, 10);
	return n > 0 && n <= UINT_MAX ? (unsigned)n : 0;
}

static int
cmp_uint(const void *a, const void *b)
{
	unsigned	x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

/*
 * Whether Berkeley DB has begun log file num: its header is on disk.  The
 * housekeeper makes the next log file ahead of time, all zeros (logprep.h);
 * a backup must not take that one for the file Berkeley DB writes to.
 * Unreadable counts as begun: the copy will say what is wrong.
 */
static int
log_begun(const char *dir, unsigned num)
{
	char	path[PATH_MAX], name[32], head[64];
	ssize_t	n, i;
	int	fd;

	snprintf(name, sizeof(name), LOG_FILE_FMT, num);
	if (path_join(path, sizeof(path), dir, name) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	n = read(fd, head, sizeof(head));
	(void)close(fd);
	if (n < 0)
		return 1;
	for (i = 0; i < n; i++)
		if (head[i] != 0)
			return 1;
	return 0;
}

/*
 * The log file numbers in dir, sorted, without the files at the end that
 * Berkeley DB has not begun; -1 on error (errno set).
 */
static int
list_logs(const char *dir, unsigned **out, size_t *n)
{
	DIR		*d;
	struct dirent	*de;
	unsigned	*v = NULL, *nv, num;
	size_t		 cap = 0, len = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((errno = 0, de = readdir(d)) != NULL) {
		if ((num = log_number(de->d_name)) == 0)
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = dq_reallocarray(v, cap, sizeof(*v))) == NULL) {
				dq_free(v);
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			v = nv;
		}
		v[len++] = num;
	}
	if (errno != 0) {
		dq_free(v);
		closedir(d);
		return -1;
	}
	closedir(d);
	if (len > 0)
		qsort(v, len, sizeof(*v), cmp_uint);
	while (len > 0 && !log_begun(dir, v[len - 1]))
		len--;
	*out = v;
	*n = len;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char * const *)a, *(char * const *)b);
}

static void
free_names(char **v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		dq_free(v[i]);
	dq_free(v);
}

/* The database files (*.db, not the __db.* regions) in dir, sorted. */
static int
list_dbs(const char *dir, char ***out, size_t *np)
{
	DIR		*d;
	struct dirent	*de;
	char		**v = NULL, **nv;
	size_t		 n = 0, cap = 0, len;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((errno = 0, de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 4 || strcmp(de->d_name + len - 3, ".db") != 0 ||
		    strncmp(de->d_name, "__db", 4) == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = dq_reallocarray(v, cap, sizeof(*v))) == NULL)
				goto nomem;
			v = nv;
		}
		if ((v[n] = dq_strdup(de->d_name)) == NULL)
			goto nomem;
		n++;
	}
	if (errno != 0) {
		len = (size_t)errno;
		free_names(v, n);
		closedir(d);
		errno = (int)len;
		return -1;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_str);
	*out = v;
	*np = n;
	return 0;
nomem:
	free_names(v, n);
	closedir(d);
	errno = ENOMEM;
	return -1;
}

void
admin_log_usage(const char *dir, struct admin_log_usage *u)
{
	char		path[PATH_MAX], name[32];
	struct stat	st;
	unsigned	*v;
	size_t		 n, i;

	memset(u, 0, sizeof(*u));
	if (list_logs(dir, &v, &n) == -1)
		return;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), LOG_FILE_FMT, v[i]);
		if (path_join(path, sizeof(path), dir, name) == 0 &&
		    stat(path, &st) == 0) {
			u->files++;
			u->bytes += (uint64_t)st.st_size;
		}
	}
	dq_free(v);
}

static int
env_create(struct admin *a, DB_ENV **envp, char *err, size_t errlen)
{
	DB_ENV	*env;
	int	 ret;

	if ((ret = db_env_create(&env, 0)) != 0) {
		set_err(a, err, errlen, "db_env_create", ret);
		return -1;
	}
	env->app_private = a;
	env->set_errcall(env, admin_errcall);
	*envp = env;
	return 0;
}

/* Settings for an environment this process creates (not joins). */
static int
env_settings(DB_ENV *env)
{
	int	ret;

	if ((ret = env->set_cachesize(env, 0, CACHE_MB * 1024 * 1024, 1)) ||
	    (ret = env->set_lk_max_locks(env, 20000)) != 0 ||
	    (ret = env->set_lk_max_objects(env, 20000)) != 0 ||
	    (ret = env->set_lk_max_lockers(env, 4000)) != 0 ||
	    (ret = env->set_tx_max(env, 512)) != 0 ||
	    (ret = env->set_lg_bsize(env, 2 * 1024 * 1024)) != 0 ||
	    (ret = env->set_lg_max(env, 32 * 1024 * 1024)) != 0)
		return ret;
	return 0;
}

int
admin_open(const char *dir, enum admin_mode mode, struct admin **ap,
    char *err, size_t errlen)
{
	struct admin	*a;
	uint32_t	 flags;
	int		 ret;

	if ((a = dq_calloc(1, sizeof(*a))) == NULL ||
	    (a->dir = dq_strdup(dir)) == NULL) {
		dq_free(a);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (env_create(a, &a->env, err, errlen) == -1) {
		dq_free(a->dir);
		dq_free(a);
		return -1;
	}
	flags = DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN;
	if (mode != ADMIN_JOIN) {
		/* Alone in the directory: recover as dqd does at start. */
		if ((ret = env_settings(a->env)) != 0) {
			set_err(a, err, errlen, "environment settings", ret);
			goto fail;
		}
		flags |= DB_CREATE | (mode == ADMIN_CATASTROPHIC ?
		    DB_RECOVER_FATAL : DB_RECOVER);
	}
	if ((ret = a->env->open(a->env, dir, flags, 0600)) != 0) {
		if (mode == ADMIN_JOIN && ret == ENOENT)
			snprintf(err, errlen, "%s: dqd's environment is not "
			    "there (dqd is starting or stopping?): try again",
			    dir);
		else
			set_err(a, err, errlen, dir, ret);
		goto fail;
	}
	*ap = a;
	return 0;
fail:
	a->env->close(a->env, 0);
	dq_free(a->dir);
	dq_free(a);
	return -1;
}

int
admin_close(struct admin *a, char *err, size_t errlen)
{
	int	ret;

	if (a == NULL)
		return 0;
	ret = a->env->close(a->env, 0);
	if (ret != 0)
		set_err(a, err, errlen, "closing the environment", ret);
	dq_free(a->dir);
	dq_free(a);
	return ret == 0 ? 0 : -1;
}

int
admin_checkpoint(struct admin *a, char *err, size_t errlen)
{
	int	ret;

	store_short_sleeps();
	if ((ret = a->env->txn_checkpoint(a->env, 0, 0, DB_FORCE)) != 0) {
		set_err(a, err, errlen, "checkpoint", ret);
		return -1;
	}
	if ((ret = a->env->log_archive(a->env, NULL, DB_ARCH_REMOVE)) != 0) {
		set_err(a, err, errlen, "removing old log files", ret);
		return -1;
	}
	return 0;
}

/* Full write or -1 with errno set. */
static int
write_all(int fd, const unsigned char *p, size_t len, off_t off)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = pwrite(fd, p, len, off)) == -1) {
			if (errno == EINTR && !admin_stop)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/*
 * Copies dir/name to target/name.  0: copied; 1: the source is gone;
 * -1: error, with why set.
 */
static int
copy_file(struct backup_ctx *b, const char *dir, const char *name)
{
	char		 from[PATH_MAX], to[PATH_MAX];
	ssize_t		 n;
	off_t		 off = 0;
	int		 in, out, e;

	if (path_join(from, sizeof(from), dir, name) == -1 ||
	    path_join(to, sizeof(to), b->target, name) == -1) {
		snprintf(b->why, sizeof(b->why), "%s: path too long", name);
		return -1;
	}
	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		snprintf(b->why, sizeof(b->why), "%s: %s", from,
		    strerror(errno));
		return -1;
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		snprintf(b->why, sizeof(b->why), "%s: %s", to,
		    strerror(errno));
		close(in);
		return -1;
	}
	for (;;) {
		if (admin_stop) {
			snprintf(b->why, sizeof(b->why), "interrupted");
			goto fail;
		}
		if ((n = read(in, b->buf, COPY_BUF)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(b->why, sizeof(b->why), "%s: %s", from,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (write_all(out, b->buf, (size_t)n, off) == -1) {
			snprintf(b->why, sizeof(b->why), "%s: %s", to,
			    strerror(errno));
			goto fail;
		}
		off += n;
	}
	if (fsync(out) == -1 || close(out) == -1) {
		snprintf(b->why, sizeof(b->why), "%s: %s", to,
		    strerror(errno));
		close(in);
		return -1;
	}
	close(in);
	b->res->bytes += (uint64_t)off;
	return 0;
fail:
	e = errno;
	close(in);
	close(out);
	errno = e;
	return -1;
}

enum log_pass { PASS_FIRST, PASS_POLL, PASS_LAST };

/*
 * Copies the log files not copied yet: complete ones only, except in the
 * last pass, which copies the current file too.  See the top of the file.
 */
static int
copy_logs(struct admin *a, struct backup_ctx *b, enum log_pass pass)
{
	char		 name[32];
	unsigned	*v, cur;
	size_t		 n, i;
	int		 r;

	if (list_logs(a->dir, &v, &n) == -1) {
		snprintf(b->why, sizeof(b->why), "%s: %s", a->dir,
		    strerror(errno));
		return -1;
	}
	if (n == 0) {
		dq_free(v);
		snprintf(b->why, sizeof(b->why), "%s has no log files",
		    a->dir);
		return -1;
	}
	cur = v[n - 1];
	for (i = 0; i < n; i++) {
		if (v[i] == cur && pass != PASS_LAST)
			break;
		if (b->next_log != 0 && v[i] < b->next_log)
			continue;
		if (b->next_log != 0 && v[i] != b->next_log)
			goto gap;
		snprintf(name, sizeof(name), LOG_FILE_FMT, v[i]);
		if ((r = copy_file(b, a->dir, name)) == -1) {
			dq_free(v);
			return -1;
		}
		if (r == 1) {
			/* Removed before the copy started: not needed. */
			if (pass == PASS_FIRST)
				continue;
			goto gap;
		}
		if (b->res->first_log == 0)
			b->res->first_log = v[i];
		b->res->last_log = v[i];
		b->res->files++;
		b->next_log = v[i] + 1;
	}
	if (pass == PASS_FIRST && b->next_log == 0)
		b->next_log = cur;	/* the current one is needed */
	if (pass == PASS_LAST && b->next_log != cur + 1)
		goto gap;
	dq_free(v);
	return 0;
gap:
	dq_free(v);
	snprintf(b->why, sizeof(b->why), "log file log.%010u was removed "
	    "before it could be copied (checkpoints ran while the backup "
	    "was slow): the copy would be inconsistent; run the backup "
	    "again, at a quieter time or with a larger "
	    "checkpoint_interval_s", b->next_log);
	return -1;
}

static void
poll_logs(struct admin *a)
{
	struct backup_ctx	*b = a->bctx;
	uint64_t		 now = mono_ms();

	if (b->failed || now - b->last_poll < POLL_MS)
		return;
	b->last_poll = now;
	if (copy_logs(a, b, PASS_POLL) == -1)
		b->failed = 1;
}

static int
cb_open(DB_ENV *env, const char *dbname, const char *target, void **handle)
{
	struct out_file	*f;
	char		 path[PATH_MAX];

	*handle = NULL;
	if (path_join(path, sizeof(path), target, dbname) == -1)
		return ENAMETOOLONG;
	if ((f = dq_calloc(1, sizeof(*f))) == NULL)
		return ENOMEM;
	f->first = 1;
	if ((f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		dq_free(f);
		return errno;
	}
	*handle = f;
	return 0;
}

static int
cb_write(DB_ENV *env, uint32_t gigs, uint32_t off, uint32_t size,
    uint8_t *buf, void *handle)
{
	struct admin	*a = env->app_private;
	struct out_file	*f = handle;

	uint32_t	 ps;
	off_t		 pos;

	if (admin_stop)
		return EINTR;
	if (f == NULL)
		return EINVAL;
	if (f->first) {
		/* The meta page: its page size is at byte 20. */
		f->first = 0;
		if (gigs == 0 && off == 0 && size >= 24) {
			memcpy(&ps, buf + 20, sizeof(ps));
			if (ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0)
				f->pagesize = ps;
		}
	}
	if (f->pagesize != 0) {
		pos = (off_t)(f->pgno * f->pagesize);
		f->pgno += size / f->pagesize + (size < CHUNK ? 1 : 0);
	} else
		pos = (off_t)(gigs * GIGABYTE + off);
	if (write_all(f->fd, buf, size, pos) == -1)
		return errno;
	a->bctx->res->bytes += size;
	poll_logs(a);
	return a->bctx->failed ? EAGAIN : 0;
}

static int
cb_close(DB_ENV *env, const char *dbname, void *handle)
{
	struct admin	*a = env->app_private;
	struct out_file	*f = handle;
	int		 r = 0;

	if (f == NULL)
		return 0;
	if (fsync(f->fd) == -1)
		r = errno;
	if (close(f->fd) == -1 && r == 0)
		r = errno;
	dq_free(f);
	if (r == 0)
		a->bctx->res->files++;
	return r;
}

static int
dir_is_empty(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	int		 empty = 1;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* Removes what a failed backup left in target (it was empty before). */
static void
clean_target(const char *target)
{
	char		 path[PATH_MAX];
	DIR		*d;
	struct dirent	*de;

	if ((d = opendir(target)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (path_join(path, sizeof(path), target, de->d_name) == 0)
			(void)unlink(path);
	}
	closedir(d);
	(void)rmdir(target);
}

static int
sync_dir(const char *dir)
{
	int	fd, r;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/*
 * Catastrophic recovery in the copy, in a private environment (no region
 * files left behind), then a checkpoint and removal of the log files that
 * normal recovery no longer needs: dqd starts from it as from its own.
 */
static int
recover_copy(const char *target, char *err, size_t errlen)
{
	struct admin	 a;
	DB_ENV		*env;
	int		 ret;

	memset(&a, 0, sizeof(a));
	if (env_create(&a, &env, err, errlen) == -1)
		return -1;
	if ((ret = env_settings(env)) != 0) {
		set_err(&a, err, errlen, "environment settings", ret);
		env->close(env, 0);
		return -1;
	}
	if ((ret = env->open(env, target, DB_CREATE | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN | DB_PRIVATE |
	    DB_RECOVER_FATAL, 0600)) != 0) {
		set_err(&a, err, errlen, "recovery of the copy", ret);
		env->close(env, 0);
		return -1;
	}
	if ((ret = env->txn_checkpoint(env, 0, 0, DB_FORCE)) != 0 ||
	    (ret = env->log_archive(env, NULL, DB_ARCH_REMOVE)) != 0) {
		set_err(&a, err, errlen, "checkpoint of the copy", ret);
		env->close(env, 0);
		return -1;
	}
	if ((ret = env->close(env, 0)) != 0) {
		set_err(&a, err, errlen, "closing the copy", ret);
		return -1;
	}
	return 0;
}

/* The absolute path target would have once created in its parent. */
static int
future_path(const char *target, char *out)
{
	char		 parent[PATH_MAX], *slash;
	const char	*base;
	size_t		 n;

	if (snprintf(parent, sizeof(parent), "%s", target) >=
	    (int)sizeof(parent)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (n = strlen(parent); n > 1 && parent[n - 1] == '/'; n--)
		parent[n - 1] = '\0';
	if ((slash = strrchr(parent, '/')) == NULL) {
		base = parent;
		if (realpath(".", out) == NULL)
			return -1;
	} else {
		*slash = '\0';
		base = slash + 1;
		if (realpath(slash == parent ? "/" : parent, out) == NULL)
			return -1;
	}
	n = strlen(out);
	if (snprintf(out + n, PATH_MAX - n, "%s%s", out[n - 1] == '/' ?
	    "" : "/", base) >= (int)(PATH_MAX - n)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
admin_backup_check(const char *dir, const char *target, char *err,
    size_t errlen)
{
	char	rsrc[PATH_MAX], rdst[PATH_MAX];
	size_t	l;
	int	empty;

	if (realpath(dir, rsrc) == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (realpath(target, rdst) == NULL) {
		if (errno != ENOENT || future_path(target, rdst) == -1) {
			snprintf(err, errlen, "cannot create %s: %s", target,
			    strerror(errno));
			return -1;
		}
	} else if ((empty = dir_is_empty(target)) != 1) {
		if (empty == -1)
			snprintf(err, errlen, "%s: %s", target,
			    strerror(errno));
		else
			snprintf(err, errlen, "%s is not empty: give a new "
			    "or empty directory", target);
		return -1;
	}
	l = strlen(rsrc);
	if (strcmp(rsrc, rdst) == 0 || (strncmp(rsrc, rdst, l) == 0 &&
	    rdst[l] == '/')) {
		snprintf(err, errlen, "%s is inside the data directory %s: "
		    "put the backup elsewhere", target, dir);
		return -1;
	}
	return 0;
}

static int
backup_locked(struct admin *a, const char *target,
    struct admin_backup_result *res, char *err, size_t errlen)
{
	struct backup_ctx	 b;
	char			 **dbs;
	size_t			 ndbs, i;
	int			 ret;

	memset(res, 0, sizeof(*res));
	/* Checked first: a refused backup leaves no directory behind. */
	if (admin_backup_check(a->dir, target, err, errlen) == -1)
		return -1;
	if (mkdir(target, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", target,
		    strerror(errno));
		return -1;
	}

	memset(&b, 0, sizeof(b));
	b.target = target;
	b.res = res;
	b.last_poll = mono_ms();
	if ((b.buf = dq_malloc(COPY_BUF)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->bctx = &b;
	a->msg[0] = '\0';
	if (copy_logs(a, &b, PASS_FIRST) == -1)
		goto fail_why;
	if ((ret = a->env->set_backup_callbacks(a->env, cb_open, cb_write,
	    cb_close)) != 0) {
		set_err(a, err, errlen, "backup", ret);
		goto fail;
	}
	if (list_dbs(a->dir, &dbs, &ndbs) == -1) {
		snprintf(err, errlen, "%s: %s", a->dir, strerror(errno));
		goto fail;
	}
	for (i = 0, ret = 0; i < ndbs && ret == 0; i++) {
		ret = a->env->dbbackup(a->env, dbs[i], target, 0);
		if (ret != 0 && !b.failed && !admin_stop)
			set_err(a, err, errlen, dbs[i], ret);
	}
	free_names(dbs, ndbs);
	if (b.failed)
		goto fail_why;
	if (admin_stop) {
		snprintf(err, errlen, "interrupted");
		goto fail;
	}
	if (ret != 0)
		goto fail;
	if ((ret = a->env->log_flush(a->env, NULL)) != 0) {
		set_err(a, err, errlen, "log flush", ret);
		goto fail;
	}
	if (copy_logs(a, &b, PASS_LAST) == -1)
		goto fail_why;
	if (sync_dir(target) == -1) {
		snprintf(err, errlen, "%s: %s", target, strerror(errno));
		goto fail;
	}
	if (recover_copy(target, err, errlen) == -1)
		goto fail;
	a->bctx = NULL;
	dq_free(b.buf);
	return 0;
fail_why:
	snprintf(err, errlen, "%s", b.why);
fail:
	a->bctx = NULL;
	dq_free(b.buf);
	clean_target(target);
	return -1;
}

/*
 * The copy runs under an exclusive lock on DATA_DIR/dqd.backup: while it
 * is held, dqd's checkpoints keep the log files (store.c), so none goes
 * before it is copied, and a second backup waits its turn.
 */
int
admin_backup(struct admin *a, const char *target,
    struct admin_backup_result *res, char *err, size_t errlen)
{
	char	path[PATH_MAX];
	int	fd, r;

	if (path_join(path, sizeof(path), a->dir, "dqd.backup") == -1 ||
	    (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "%s/dqd.backup: %s", a->dir,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "another backup of %s is running: try "
		    "again when it is done", a->dir);
		close(fd);
		return -1;
	}
	r = backup_locked(a, target, res, err, errlen);
	close(fd);
	return r;
}

static void
verify_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	if (verify_msg[0] == '\0')
		snprintf(verify_msg, sizeof(verify_msg), "%s", msg);
}

int
admin_verify(const char *dir,
    void (*fn)(void *, const char *, const char *), void *arg,
    char *err, size_t errlen)
{
	DB		*db;
	char		**names, path[PATH_MAX], problem[768];
	size_t		 n, i;
	int		 bad = 0, ret;

	if (list_dbs(dir, &names, &n) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (path_join(path, sizeof(path), dir, names[i]) == -1) {
			fn(arg, names[i], "path too long");
			bad++;
			continue;
		}
		verify_msg[0] = '\0';
		if ((ret = db_create(&db, NULL, 0)) != 0) {
			snprintf(err, errlen, "db_create: %s",
			    db_strerror(ret));
			bad = -1;
			break;
		}
		db->set_errcall(db, verify_errcall);
		/* The handle is gone after verify, whatever it returns. */
		ret = db->verify(db, path, NULL, NULL, 0);
		if (ret == 0) {
			fn(arg, names[i], NULL);
			continue;
		}
		bad++;
		if (verify_msg[0] != '\0')
			snprintf(problem, sizeof(problem), "%s: %s",
			    db_strerror(ret), verify_msg);
		else
			snprintf(problem, sizeof(problem), "%s",
			    db_strerror(ret));
		fn(arg, names[i], problem);
	}
	free_names(names, n);
	return bad;
}
