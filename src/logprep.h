/*
 * logprep: the next Berkeley DB log file made ahead of time, every block
 * of it written (with zeros) and synced, for durability "fsync".
 *
 * Berkeley DB makes each log file sparse: it writes the file's last byte
 * and fills the rest as records come.  A sync of the log that reaches a
 * block not yet written makes the file system allocate it, and then
 * fdatasync(2) commits the file system's journal too; on a file whose
 * blocks are all written it only writes the data.  Measured on the bench
 * machine: 6,000 against 8,600 syncs a second of 13.5 KB appends; dqd with
 * 50 connections under fsync 5 % faster (pairs of runs, median), no change
 * with one connection, whose small syncs seldom reach a new block
 * (bench/results/2026-12-07m-before-after.md).  PostgreSQL zero-fills its
 * WAL segments for the same reason; Berkeley DB's DB_LOG_ZERO does it in
 * the committing thread when it switches files, which cost more than it
 * saved.
 *
 * Berkeley DB takes a zero-filled file under the next log file's name as
 * a log file not yet begun (log.c, __log_valid: "a preallocated log file
 * where the header has not yet been written") and writes into it when it
 * gets there.  Recovery finds the end of the log before it and removes
 * the log files past that end, this one too (tests/unit/test_logprep.c).
 * dqctl's backup and log counts leave out log files at the end whose
 * header is still zeros (store_admin.c, list_logs): the backup copies the
 * file Berkeley DB writes to last, and must not take this one for it.
 *
 * The file is written under a temporary name, synced, and linked to its
 * final name, which fails if Berkeley DB made that file meanwhile: a log
 * file Berkeley DB writes to is never replaced or touched.
 */
#ifndef DQ_LOGPREP_H
#define DQ_LOGPREP_H

#include <sys/types.h>

#include <stdint.h>

/* In the log directory, followed by the writer's pid: two housekeepers
   (a reload) never write the same file. */
#define LOGPREP_TMP	"dqd-logprep.tmp."

/*
 * Makes log file number cur + 1 in dir, of size bytes, unless it exists.
 * Returns 1 if it made it, 0 if there was nothing to do, -1 with errno on
 * failure (nothing is left behind).
 */
int	logprep_next(const char *dir, uint32_t cur, uint64_t size);
/* Removes the temporary files of writers that are gone (a crash). */
void	logprep_clean(const char *dir);

/* Fault-injection seam: the writes of the zeros (a test makes them fail). */
extern ssize_t	(*logprep_write_fn)(int, const void *, size_t);

#endif
