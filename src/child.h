/*
 * child: the start of a supervised background child that works on the
 * environment (the housekeeper, the flusher): its log name, its signals
 * (SIGTERM: stop; SIGUSR1: reopen the log), its stats slot and its own
 * store handle.
 */
#ifndef DQ_CHILD_H
#define DQ_CHILD_H

#include <signal.h>

#include "config.h"

struct store;

extern volatile sig_atomic_t	child_stop;	/* told to stop */

/* 0 and *s open, or -1 (logged): the child exits with status 1. */
int	child_open(const struct config *, int slot, const char *name,
	    struct store **s);
/* Reopens the log file if SIGUSR1 asked for it; call from the loop. */
void	child_reopen_log(void);

#endif
