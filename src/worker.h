/*
 * worker: one pre-forked process serving many clients with an epoll loop.
 *
 * Each event-loop iteration reads what the ready sockets have, then runs
 * every complete command of every ready client inside one Berkeley DB
 * transaction (group commit), commits it once, and only then releases the
 * replies.  A deadlock aborts the batch, which is run again from the same
 * input; a storage error aborts it and its commands are run again one at a
 * time, each in its own transaction, so one failure is reported to the one
 * client it concerns.  Under durability "fsync" the commit leaves the log
 * sync to the flusher (flush.h) and the replies wait for it, while the
 * worker goes on with the next batch.
 */
#ifndef DQ_WORKER_H
#define DQ_WORKER_H

#include <stdint.h>

#include "config.h"

struct client;
struct store;
struct ev_loop;

struct server {
	const struct config	*cfg;
	struct store		*store;
	struct ev_loop		*ev;
	int			 listen_fd;
	int			 slot;		/* worker number, stats slot */
	uint64_t		 next_id;
	uint64_t		 start_ms;
	int			 nclients;
	struct client		*clients;
	struct client		*pending;	/* clients with input to run */
	struct client		*held;		/* replies wait for a sync */
	uint64_t		 held_since;	/* mono ms, the oldest hold */
	int			 defer_sync;	/* durability fsync: flush.h */
	volatile int		 stop;		/* SIGTERM */
	int			 disk_low;	/* below min_free_disk_mb */
	unsigned		 commit_pause_ms; /* DEBUG COMMIT-PAUSE */
};

extern struct server	server;

/* Runs a worker; returns the process' exit status. */
int	worker_main(const struct config *, int slot, int listen_fd);
/* Free space in data_dir against min_free_disk_mb: server.disk_low. */
void	check_disk(void);
/* Schedules c to be closed once its committed replies are sent. */
void	worker_close_after_reply(struct client *);

#endif
