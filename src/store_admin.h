/*
 * store_admin: what dqctl does to a data directory with Berkeley DB (part
 * of the store module: with store.c, the only other file that includes
 * db.h).
 *
 * An admin handle is one environment handle opened in one of two ways:
 *
 *   ADMIN_JOIN      dqd is running (it holds DATA_DIR/dqd.lock): join its
 *                   environment, never create or recover it.
 *   ADMIN_RECOVER   nobody else uses the directory (the caller holds
 *                   dqd.lock): run normal recovery, as dqd does at start.
 *   ADMIN_CATASTROPHIC  the same with catastrophic recovery (every log
 *                   file still present is replayed).
 *
 * Errors come back as -1 with a message in err (always NUL-terminated)
 * that says what failed; Berkeley DB's own messages are added to it.
 *
 * admin_stop is polled during long operations (a backup): a signal
 * handler that sets it makes them stop at the next file block, leave the
 * environment cleanly and fail with "interrupted".  A dqctl killed with
 * SIGKILL while it has joined a running environment may leave Berkeley DB
 * state behind: dqd(8) must then be restarted.
 */
#ifndef DQ_STORE_ADMIN_H
#define DQ_STORE_ADMIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

enum admin_mode {
	ADMIN_JOIN,
	ADMIN_RECOVER,
	ADMIN_CATASTROPHIC
};

struct admin;

struct admin_backup_result {
	unsigned	files;		/* database and log files written */
	uint64_t	bytes;
	unsigned	first_log;	/* log files copied: first .. last */
	unsigned	last_log;
};

struct admin_log_usage {
	unsigned	files;
	uint64_t	bytes;
};

extern volatile sig_atomic_t	admin_stop;

/* 1 if dir looks like a dqd data directory (it has queues.db), else 0. */
int	admin_is_data_dir(const char *dir);

int	admin_open(const char *dir, enum admin_mode, struct admin **,
	    char *err, size_t errlen);
int	admin_close(struct admin *, char *err, size_t errlen);

/* A forced checkpoint, then removal of the log files no longer needed. */
int	admin_checkpoint(struct admin *, char *err, size_t errlen);
/* Log files in the directory and their size. */
void	admin_log_usage(const char *dir, struct admin_log_usage *);

/*
 * A hot backup into target (which must not exist or be empty; it is
 * created mode 0700): the database files are copied page by page in step
 * with dqd's writers, the log files are copied as they fill and once more
 * at the end, then catastrophic recovery runs in target.  The result is a
 * consistent data directory that dqd can start from, holding every
 * transaction committed before the backup began.
 */
int	admin_backup(struct admin *, const char *target,
	    struct admin_backup_result *, char *err, size_t errlen);
/*
 * Whether target may receive a backup of dir: new or empty, and outside
 * dir.  admin_backup() checks it before it creates target; dqctl too,
 * before it creates target for the data directory's owner.
 */
int	admin_backup_check(const char *dir, const char *target, char *err,
	    size_t errlen);

/*
 * Runs DB->verify on every database file in dir, which nobody may be
 * using; fn is called once per file with NULL or the problem found.
 * Returns the number of damaged files, or -1 (err set) if dir could not
 * be read.
 */
int	admin_verify(const char *dir,
	    void (*fn)(void *, const char *file, const char *problem),
	    void *arg, char *err, size_t errlen);

#endif
