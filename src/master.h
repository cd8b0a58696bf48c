/*
 * master: parses nothing itself (dqd.c does), runs recovery, binds, forks
 * the housekeeper and the workers and supervises them (nginx, Postfix,
 * PostgreSQL's postmaster).
 *
 * The master never opens the Berkeley DB environment itself: recovery and
 * failchk run in short-lived children with a deadline, so an environment
 * left stuck by a dead process cannot hang it.  When a worker dies, the
 * master reaps it and runs failchk; on success a replacement is forked and
 * the other workers go on.  When failchk fails, hangs, or a process reports
 * that the environment needs recovery, every child is killed, recovery runs
 * and the pool starts again.  Signal handlers only set flags.
 */
#ifndef DQ_MASTER_H
#define DQ_MASTER_H

#include "config.h"

/* Takes ownership of cfg; returns the exit status.  debug (-d): log at
   the debug level to stderr, whatever a reloaded file says.  ready_fd
   (-1: none): the pipe of a daemonizing parent (dqd.c), which gets one
   byte when the server is ready; stdio goes to /dev/null then. */
int	master_main(struct config *cfg, int debug, int ready_fd);

#endif
