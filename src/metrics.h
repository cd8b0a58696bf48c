/*
 * metrics: the Prometheus endpoint (GET /metrics, text format 0.0.4).
 *
 * Served by the master from the shared stats region: the workers' counters
 * (stats.h) and what the housekeeper publishes about the environment.  The
 * master never opens the environment and must never block, so scrapers are
 * served with non-blocking sockets from its poll loop, at most
 * METRICS_CONNS at once, each with a deadline; a connection still waiting
 * for its request gives its slot to a newcomer.
 */
#ifndef DQ_METRICS_H
#define DQ_METRICS_H

#include <poll.h>

#include "buf.h"
#include "config.h"

#define METRICS_CONNS	8

int	metrics_open(const struct config *);	/* 0 also when disabled */
void	metrics_close(void);
/* Adds the descriptors to poll; returns how many. */
int	metrics_pollfds(struct pollfd *, int max);
/* After poll(): fds are the ones metrics_pollfds() filled in. */
void	metrics_handle(const struct pollfd *, int n);
/* The exposition text. */
int	metrics_render(struct buf *);

#endif
