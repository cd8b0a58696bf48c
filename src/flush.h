/*
 * flush: group commit for durability "fsync" without a worker waiting on
 * the disk.
 *
 * A worker commits its batch with the log written to the file but not yet
 * synced, takes a ticket (flush_ticket) and holds the batch's replies.
 * The flusher, a process of its own, syncs the log again and again while
 * tickets come in: each sync covers every batch that any worker committed
 * while the previous one ran, and meanwhile the workers' CPU goes to the
 * next batches instead of to waiting (Redis' appendfsync always sends an
 * event-loop iteration's replies after its fsync; here the iterations of
 * all workers share the syncs).  The flusher publishes the last ticket it
 * covered and pokes the workers that wait for it (wake.h).  Tickets live in
 * the shared stats region (stats.h).
 *
 * A reply never leaves before its ticket is covered.  Progress never
 * depends on the flusher: a worker syncs the log itself when no flusher
 * runs, when its replies have waited FLUSH_WAIT_MS, and before it stops.
 */
#ifndef DQ_FLUSH_H
#define DQ_FLUSH_H

#include <stdint.h>

#include "config.h"

#define FLUSH_WAIT_MS	20	/* then the worker syncs the log itself */

struct store;

/* After a commit whose log is not synced: the ticket that covers it;
   without wake, the caller syncs it itself (flush_sync). */
uint64_t	flush_ticket(int wake);
/* For a batch that committed nothing: the ticket covering what it saw
   (every commit so far), or 0 if all of that is already synced. */
uint64_t	flush_seen(void);
/* Set around a commit and the taking of its ticket: another worker's
   batch that saw the commit before its ticket existed takes one of its
   own (flush_seen). */
void		flush_committing(int on);
int		flush_covered(uint64_t ticket);
/* Asks the flusher to poke this process once ticket is covered; check
   flush_covered() afterwards, it may be covered already. */
void		flush_want(uint64_t ticket);
int		flush_running(void);
/* The flusher sleeps and no commit waits for a sync. */
int		flush_idle(void);
/* Syncs the log in this process; covers every ticket taken before. */
int		flush_sync(struct store *);

int		flusher_main(const struct config *, int slot);

#endif
