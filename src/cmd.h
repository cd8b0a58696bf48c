/*
 * cmd: the command table and dispatch.
 *
 * One table drives dispatch, arity and authentication checks, COMMAND,
 * COMMAND DOCS and the per-command statistics.  A handler writes its reply
 * with the reply_* functions and returns STORE_OK, or the STORE_ code of a
 * storage operation that did not succeed: STORE_RETRY (the whole batch is
 * aborted and run again, so the handler must not have had effects outside
 * the store), STORE_ERR or STORE_PANIC.  Anything the handler replied before
 * a non-OK return is discarded by the caller.
 */
#ifndef DQ_CMD_H
#define DQ_CMD_H

#include <stddef.h>
#include <stdint.h>

struct client;

#define CMD_WRITE	0x01	/* may change stored data */
#define CMD_READONLY	0x02	/* reads stored data */
#define CMD_NOAUTH	0x04	/* allowed before AUTH */
#define CMD_FAST	0x08	/* O(1) or O(log n) */
#define CMD_ADMIN	0x10
#define CMD_BLOCKING	0x20	/* may wait for messages */
#define CMD_TXCTL	0x40	/* runs at once between MULTI and EXEC */
#define CMD_SUBCMDS	0x80	/* argv[1] names a subcommand (CLIENT ...) */

/* Returned by a blocking handler that found nothing yet: see worker.c. */
#define CMD_BLOCKED	5

struct cmdctx {
	struct client	 *c;
	size_t		  argc;
	const char	**argv;
	const size_t	 *argvlen;
	uint64_t	  now;		/* Unix ms when the command began */
};

#define ARG_OPTIONAL	0x01
#define ARG_MULTIPLE	0x02

/*
 * One argument as Redis 7's COMMAND DOCS describes it, for redis-cli's
 * hints and "help CMD".  type is key, string, integer, double, pattern,
 * unix-time, pure-token (the token alone), block (members in sequence) or
 * oneof (one of the members).  Lists end with a NULL name.
 */
struct cmdarg {
	const char		*name;
	const char		*type;
	const char		*token;		/* word before it, or NULL */
	int			 flags;		/* ARG_ */
	const struct cmdarg	*args;		/* block or oneof members */
};

struct cmd {
	const char		*name;		/* lower case */
	int			 arity;		/* > 0 exact, < 0 at least */
	int			 flags;
	int			 (*proc)(struct cmdctx *);
	int			 firstkey, lastkey, keystep;
	const char		*group;
	const char		*since;
	const char		*summary;
	const struct cmdarg	*args;		/* NULL: takes none */
};

extern const struct cmd	cmd_table[];
extern const size_t	cmd_count;

const struct cmd *cmd_lookup(const char *, size_t);
int	cmd_execute(struct client *, size_t argc, const char **argv,
	    const size_t *argvlen);

/* Handlers, in cmd_queue.c and cmd_server.c. */
int	cmd_sadd(struct cmdctx *);
int	cmd_qadd(struct cmdctx *);
int	cmd_qput(struct cmdctx *);
int	cmd_qputat(struct cmdctx *);
int	cmd_qreserve(struct cmdctx *);
int	cmd_qack(struct cmdctx *);
int	cmd_qnack(struct cmdctx *);
int	cmd_qextend(struct cmdctx *);
int	cmd_qreschedule(struct cmdctx *);
int	cmd_qcancel(struct cmdctx *);
int	cmd_qpeek(struct cmdctx *);
int	cmd_qstat(struct cmdctx *);
int	cmd_bspop(struct cmdctx *);
int	cmd_spop(struct cmdctx *);
int	cmd_scard(struct cmdctx *);
int	cmd_del(struct cmdctx *);
int	cmd_keys(struct cmdctx *);
int	cmd_scan(struct cmdctx *);
int	cmd_exists(struct cmdctx *);
int	cmd_type(struct cmdctx *);
int	cmd_dbsize(struct cmdctx *);
int	cmd_ping(struct cmdctx *);
int	cmd_echo(struct cmdctx *);
int	cmd_quit(struct cmdctx *);
int	cmd_select(struct cmdctx *);
int	cmd_auth(struct cmdctx *);
int	cmd_hello(struct cmdctx *);
int	cmd_client(struct cmdctx *);
int	cmd_command(struct cmdctx *);
int	cmd_config(struct cmdctx *);
int	cmd_info(struct cmdctx *);
int	cmd_multi(struct cmdctx *);
int	cmd_exec(struct cmdctx *);
int	cmd_discard(struct cmdctx *);
int	cmd_debug(struct cmdctx *);

/*
 * MULTI's queue across a worker batch (cmd_multi.c): saved when the batch
 * begins, put back when it is rewound, emptied of what ran when it ends.
 */
void	multi_save(struct client *);
void	multi_restore(struct client *);
void	multi_settle(struct client *);
void	multi_refused(struct client *);
/* EXEC itself refused: -EXECABORT with the reason, the queue forgotten. */
void	multi_abort(struct client *, const char *why);
void	multi_queue(struct client *, size_t argc, const char **argv,
	    const size_t *argvlen);

/* Redis' reply to CMD HELP: a title, the lines (NULL-terminated), HELP. */
void	reply_help(struct client *, const char *cmd,
	    const char *const *lines);

/*
 * Redis 7's errors for a subcommand of cmd (upper case), argv[1]: a wrong
 * number of arguments when known, else an unknown subcommand.
 */
void	reply_bad_subcommand(struct cmdctx *, const char *cmd, int known);

/* Shared argument checks; each replies with the error itself. */
int	arg_ll(struct cmdctx *, size_t i, long long *);
int	arg_eq(const struct cmdctx *, size_t i, const char *);
/* A queue name, a body, a delay (0 to MAX_DELAY_MS): -1 after the error. */
int	arg_queue(struct cmdctx *, size_t i);
int	arg_body(struct cmdctx *, size_t i);
int	arg_delay(struct cmdctx *, size_t i, long long *);
/* Refuses an enqueue while the disk is nearly full: -1 after the error. */
int	check_disk_room(struct cmdctx *);

#define MAX_DELAY_MS	3153600000000LL	/* 100 years */
void	reply_syntax_error(struct client *);

#endif
