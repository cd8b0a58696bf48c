/*
 * cmd: the command table, dispatch and shared argument checks.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "cmd.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#define MAX_QUEUE_NAME	4096

#define W	CMD_WRITE
#define R	CMD_READONLY
#define NA	CMD_NOAUTH
#define F	CMD_FAST
#define B	CMD_BLOCKING

/*
 * name, arity, flags, handler, first key, last key, key step, group,
 * since, summary.  Arity follows Redis: the command name counts, a
 * negative number is a minimum.
 */
const struct cmd cmd_table[] = {
	{ "sadd", -4, W | F, cmd_sadd, 1, 1, 1, "queue", "0.1.0",
	  "Enqueue messages, each due after its delay in milliseconds" },
	{ "spop", -2, W | F, cmd_spop, 1, 1, 1, "queue", "0.1.0",
	  "Take the earliest due message(s) of a queue" },
	{ "scard", 2, R | F, cmd_scard, 1, 1, 1, "queue", "0.1.0",
	  "Number of messages in a queue" },
	{ "qadd", -4, W | F, cmd_qadd, 1, 1, 1, "queue", "0.1.0",
	  "Enqueue messages and return their server-assigned ids" },
	{ "qput", 5, W | F, cmd_qput, 1, 1, 1, "queue", "0.1.0",
	  "Create or replace the message with the producer's id" },
	{ "qputat", 5, W | F, cmd_qputat, 1, 1, 1, "queue", "0.1.0",
	  "QPUT with an absolute due time in Unix milliseconds" },
	{ "qreserve", -4, W | F | B, cmd_qreserve, 1, 1, 1, "queue", "0.1.0",
	  "Lease due messages: [id, body, deliveries] each" },
	{ "qack", -3, W | F, cmd_qack, 1, 1, 1, "queue", "0.1.0",
	  "Acknowledge (delete) reserved messages" },
	{ "qnack", 4, W | F, cmd_qnack, 1, 1, 1, "queue", "0.1.0",
	  "Give a reserved message back, due after a delay" },
	{ "qextend", 4, W | F, cmd_qextend, 1, 1, 1, "queue", "0.1.0",
	  "Make a lease end lease_ms from now" },
	{ "qreschedule", 4, W | F, cmd_qreschedule, 1, 1, 1, "queue", "0.1.0",
	  "Make any message due after a delay" },
	{ "qcancel", -3, W | F, cmd_qcancel, 1, 1, 1, "queue", "0.1.0",
	  "Remove messages by id, in any state" },
	{ "qpeek", 3, R, cmd_qpeek, 1, 1, 1, "queue", "0.1.0",
	  "The earliest messages: [id, body, due_unix_ms, deliveries]" },
	{ "qstat", 2, R, cmd_qstat, 1, 1, 1, "queue", "0.1.0",
	  "Counters of a queue, as field/value pairs" },
	{ "bspop", -3, W | B, cmd_bspop, 1, -2, 1, "queue", "0.1.0",
	  "Take a due message of the first queue that has one, or wait" },
	{ "del", -2, W, cmd_del, 1, -1, 1, "queue", "0.1.0",
	  "Delete queues with all their messages" },
	{ "keys", -1, R, cmd_keys, 0, 0, 0, "queue", "0.1.0",
	  "Names of the queues holding messages, matching a glob pattern" },
	{ "scan", -2, R, cmd_scan, 0, 0, 0, "queue", "0.1.0",
	  "Iterate over the queues" },
	{ "exists", -2, R | F, cmd_exists, 1, -1, 1, "queue", "0.1.0",
	  "Count the given queues that hold messages" },
	{ "type", 2, R | F, cmd_type, 1, 1, 1, "queue", "0.1.0",
	  "Type of a queue: set, or none" },
	{ "dbsize", 1, R, cmd_dbsize, 0, 0, 0, "server", "0.1.0",
	  "Number of queues holding messages" },
	{ "ping", -1, F, cmd_ping, 0, 0, 0, "connection", "0.1.0",
	  "Ping the server" },
	{ "echo", 2, F, cmd_echo, 0, 0, 0, "connection", "0.1.0",
	  "Echo the given string" },
	{ "quit", -1, NA | F | CMD_TXCTL, cmd_quit, 0, 0, 0, "connection", "0.1.0",
	  "Close the connection" },
	{ "select", 2, F, cmd_select, 0, 0, 0, "connection", "0.1.0",
	  "Select database 0, the only one" },
	{ "auth", -2, NA | F, cmd_auth, 0, 0, 0, "connection", "0.1.0",
	  "Authenticate to the server" },
	{ "hello", -1, NA | F, cmd_hello, 0, 0, 0, "connection", "0.1.0",
	  "Handshake: RESP2 only" },
	{ "client", -2, 0, cmd_client, 0, 0, 0, "connection", "0.1.0",
	  "CLIENT SETNAME, GETNAME, SETINFO, ID, INFO, LIST" },
	{ "command", -1, 0, cmd_command, 0, 0, 0, "server", "0.1.0",
	  "Details of the commands: COMMAND, COUNT, INFO, DOCS, LIST" },
	{ "config", -2, CMD_ADMIN, cmd_config, 0, 0, 0, "server", "0.1.0",
	  "CONFIG GET parameter [parameter ...]" },
	{ "info", -1, 0, cmd_info, 0, 0, 0, "server", "0.1.0",
	  "Information and statistics about the server" },
	{ "multi", 1, CMD_TXCTL | F, cmd_multi, 0, 0, 0, "transactions",
	  "0.1.0", "Queue the next commands until EXEC" },
	{ "exec", 1, CMD_TXCTL, cmd_exec, 0, 0, 0, "transactions", "0.1.0",
	  "Run the queued commands in one transaction" },
	{ "discard", 1, CMD_TXCTL | F, cmd_discard, 0, 0, 0, "transactions",
	  "0.1.0", "Forget the queued commands" },
};
const size_t cmd_count = sizeof(cmd_table) / sizeof(cmd_table[0]);

const struct cmd *
cmd_lookup(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < cmd_count; i++)
		if (eqcase(name, len, cmd_table[i].name))
			return &cmd_table[i];
	return NULL;
}

static void
reply_unknown(struct client *c, size_t argc, const char **argv,
    const size_t *argvlen)
{
	char	args[256], name[64];
	size_t	i, off = 0;
	int	n;

	args[0] = '\0';
	for (i = 1; i < argc && off < sizeof(args) - 1; i++) {
		n = snprintf(args + off, sizeof(args) - off, "'%.*s' ",
		    (int)(argvlen[i] > 64 ? 64 : argvlen[i]), argv[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	snprintf(name, sizeof(name), "%.*s",
	    (int)(argvlen[0] > 48 ? 48 : argvlen[0]), argv[0]);
	reply_error(c, "ERR unknown command '%s', with args beginning with: "
	    "%s", name, args);
}

static uint64_t
usec_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
cmd_execute(struct client *c, size_t argc, const char **argv,
    const size_t *argvlen)
{
	const struct cmd	*cmd;
	struct cmdctx		 x;
	uint64_t		 t0;
	size_t			 idx;
	int			 r;

	STAT_ADD(commands, 1);
	if ((cmd = cmd_lookup(argv[0], argvlen[0])) == NULL) {
		multi_refused(c);
		reply_unknown(c, argc, argv, argvlen);
		return STORE_OK;
	}
	if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
	    (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
		multi_refused(c);
		reply_error(c, "ERR wrong number of arguments for '%s' command",
		    cmd->name);
		return STORE_OK;
	}
	if (!(c->flags & CLIENT_AUTHED) && !(cmd->flags & CMD_NOAUTH)) {
		multi_refused(c);
		reply_error(c, "NOAUTH Authentication required.");
		return STORE_OK;
	}
	if ((c->flags & CLIENT_MULTI) && !(cmd->flags & CMD_TXCTL)) {
		multi_queue(c, argc, argv, argvlen);
		return STORE_OK;
	}
	c->last_cmd = cmd->name;
	x.c = c;
	x.argc = argc;
	x.argv = argv;
	x.argvlen = argvlen;
	x.now = now_ms();
	t0 = usec_now();
	r = cmd->proc(&x);
	idx = (size_t)(cmd - cmd_table);
	stats_command(idx, usec_now() - t0);
	return r;
}

int
arg_ll(struct cmdctx *x, size_t i, long long *v)
{
	if (parse_ll(x->argv[i], x->argvlen[i], v) == 0)
		return 0;
	reply_error(x->c, "ERR value is not an integer or out of range");
	return -1;
}

int
arg_eq(const struct cmdctx *x, size_t i, const char *word)
{
	return i < x->argc && eqcase(x->argv[i], x->argvlen[i], word);
}

void
reply_syntax_error(struct client *c)
{
	reply_error(c, "ERR syntax error");
}

int
arg_queue(struct cmdctx *x, size_t i)
{
	if (x->argvlen[i] <= MAX_QUEUE_NAME)
		return 0;
	reply_error(x->c, "ERR queue name is %zu bytes, longer than the "
	    "limit of %d", x->argvlen[i], MAX_QUEUE_NAME);
	return -1;
}

int
arg_delay(struct cmdctx *x, size_t i, long long *delay)
{
	if (parse_ll(x->argv[i], x->argvlen[i], delay) == 0 &&
	    *delay >= 0 && *delay <= MAX_DELAY_MS)
		return 0;
	reply_error(x->c, "ERR invalid delay_ms '%.*s': must be an integer "
	    "from 0 to %lld", (int)(x->argvlen[i] > 32 ? 32 : x->argvlen[i]),
	    x->argv[i], MAX_DELAY_MS);
	return -1;
}

int
arg_body(struct cmdctx *x, size_t i)
{
	long long	max = server.cfg->max_message_bytes;

	if ((long long)x->argvlen[i] <= max)
		return 0;
	reply_error(x->c, "ERR message body is %zu bytes, more than "
	    "max_message_bytes (%lld)", x->argvlen[i], max);
	return -1;
}

int
check_disk_room(struct cmdctx *x)
{
	static uint64_t	last;
	uint64_t	now = mono_ms();

	/* Fresh enough that a burst of enqueues cannot overshoot much. */
	if (now - last >= 10) {
		check_disk();
		last = now;
	}
	if (!server.disk_low)
		return 0;
	reply_error(x->c, "ERR disk full: less than min_free_disk_mb (%d MiB) "
	    "free in %s; enqueues are refused until space is freed "
	    "(dequeues, acknowledgements and DEL go on)",
	    server.cfg->min_free_disk_mb, server.cfg->data_dir);
	return -1;
}
