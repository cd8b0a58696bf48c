/*
 * child: the start of a supervised background child that works on the
 * environment (the housekeeper, the flusher): its log name, its signal
 * handler, its stats slot and its own store handle.
 */
#ifndef DQ_CHILD_H
#define DQ_CHILD_H

#include "config.h"

struct store;

/* 0 and *s open, or -1 (logged): the child exits with status 1. */
int	child_open(const struct config *, int slot, const char *name,
	    void (*on_signal)(int), struct store **s);

#endif
