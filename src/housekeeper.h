/*
 * housekeeper: the master's background work, in a child of its own.
 *
 * The master itself never opens the environment, so that a stuck
 * environment can never hang it (notes/berkeley-db.md).  Its housekeeping
 * runs in this supervised child instead, as PostgreSQL's checkpointer and
 * background writer run beside the postmaster: the periodic log flush
 * (durability "write" and "none"), checkpoints followed by removal of the
 * log files recovery no longer needs, and the purge of deleted queues in
 * small transactions, and the end of leases that ran out (QRESERVE): the
 * message is due again, or goes to the dead queue after max_deliveries.
 * After each checkpoint it compacts a bounded step of the message files,
 * giving free pages back to the file system.  It makes a last checkpoint
 * when it stops.
 */
#ifndef DQ_HOUSEKEEPER_H
#define DQ_HOUSEKEEPER_H

#include "config.h"

int	housekeeper_main(const struct config *, int slot);

#endif
