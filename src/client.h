/*
 * client: one connection, its buffers and its replies (Redis' networking.c).
 *
 * A client owns two bounded buffers.  `in` holds bytes read but not yet
 * executed; `qpos` is where the next command starts.  `out` holds replies:
 * bytes [sent, committed) may go to the socket, bytes past `committed`
 * belong to commands whose transaction has not committed yet and are held
 * back (the AE_BARRIER idea: no reply to a write leaves before its commit).
 * The worker moves `committed` forward after each commit, or cuts `out` back
 * when a transaction is aborted and its commands are run again.
 */
#ifndef DQ_CLIENT_H
#define DQ_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "resp.h"

#define CLIENT_CLOSE_AFTER_REPLY 0x01	/* QUIT, protocol error */
#define CLIENT_CLOSE_ASAP	0x02	/* I/O error: drop without replying */
#define CLIENT_AUTHED		0x04
#define CLIENT_PENDING		0x08	/* on the pending list */
#define CLIENT_THROTTLED	0x10	/* output backlog: commands wait */
#define CLIENT_MORE		0x20	/* stopped with complete commands left */
#define CLIENT_ARMED		0x40	/* in a blocking command, watching */
#define CLIENT_BLOCKED		0x80	/* asleep until woken or timed out */
#define CLIENT_HELD		0x100	/* replies wait for a log sync */
#define CLIENT_MULTI		0x200	/* between MULTI and EXEC */
#define CLIENT_DIRTY		0x400	/* a command refused since MULTI */
#define CLIENT_EXEC		0x800	/* running EXEC: nothing blocks */
#define CLIENT_LINGER		0x1000	/* close after reply, reading first */
#define CLIENT_LINGERING	0x2000	/* reply sent, input discarded */

struct client {
	uint64_t		 id;
	int			 fd;
	int			 flags;
	char			 addr[64];	/* "ip:port" */
	char			*name;		/* CLIENT SETNAME */
	char			*lib_name;	/* CLIENT SETINFO */
	char			*lib_ver;
	uint64_t		 created_ms;
	uint64_t		 last_ms;	/* last input, for timeout */
	uint64_t		 active_window;	/* worker.c: sync_here */
	uint64_t		 last_out_ms;	/* last reply bytes written */
	uint64_t		 linger_until;	/* mono ms: CLIENT_LINGERING */
	size_t			 outq;		/* kernel send queue, last look */
	const char		*last_cmd;

	struct buf		 in;
	size_t			 qpos;
	struct resp_parser	 parser;
	struct buf		 out;
	size_t			 sent;
	size_t			 committed;

	/*
	 * A blocking command (BSPOP, QRESERVE BLOCK) stays in `in` and runs
	 * again when woken; these say when to give up and what wakes it.
	 */
	uint64_t		 block_deadline;	/* mono ms; 0: none */
	uint64_t		 block_due;	/* Unix ms a message is due */
	uint64_t		 block_bits;	/* wake.h bits of its queues */
	uint64_t		 block_seq;	/* woken in this order */

	/*
	 * durability "fsync" (flush.h): the replies up to hold_off become
	 * committed once the log sync with hold_ticket is done.
	 */
	uint64_t		 hold_ticket;
	size_t			 hold_off;

	/*
	 * MULTI (cmd_multi.c): the queued commands, RESP-encoded, are
	 * multi[multi_start..], multi_n of them.
	 */
	struct buf		 multi;
	size_t			 multi_start;
	size_t			 multi_n;
	size_t			 exec_n;	/* EXEC runs this many */

	/* Where this client stood when the current batch began. */
	size_t			 batch_qpos;
	size_t			 batch_outlen;
	int			 batch_multi_flags;
	size_t			 batch_multi_start, batch_multi_len;
	size_t			 batch_multi_n;

	struct client		*prev, *next;	/* all clients */
	struct client		*pnext;		/* pending list */
	struct client		*bnext;		/* batch list */
	struct client		*hnext;		/* held list */
};

struct client	*client_new(int fd, uint64_t id, const char *addr,
		    size_t max_bulk, size_t query_limit);
void		 client_free(struct client *);
/* Reads what the socket has; -1: closed or error (logged at debug). */
int		 client_read(struct client *);
/* Writes committed replies; -1 on a write error. */
int		 client_write(struct client *);
size_t		 client_unsent(const struct client *);
size_t		 client_held(const struct client *);
/* Heap it holds: buffers and parsed arguments (CLIENT LIST tot-mem). */
size_t		 client_mem(const struct client *);

/* Replies.  On failure (memory) the client is marked CLOSE_ASAP. */
void	reply_simple(struct client *, const char *);
void	reply_ok(struct client *);
void	reply_error(struct client *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	reply_int(struct client *, long long);
void	reply_bulk(struct client *, const void *, size_t);
void	reply_bulkstr(struct client *, const char *);
void	reply_nil(struct client *);
void	reply_nil_array(struct client *);
void	reply_array(struct client *, size_t);

#endif
