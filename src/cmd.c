/*
 * cmd: the command table, dispatch and shared argument checks.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client.h"
#include "cmd.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#define UNKNOWN_SHOWN	128	/* bytes of an unknown command echoed back */

#define W	CMD_WRITE
#define R	CMD_READONLY
#define NA	CMD_NOAUTH
#define F	CMD_FAST
#define B	CMD_BLOCKING

#define OPT	ARG_OPTIONAL
#define MULT	ARG_MULTIPLE

/* Arguments for COMMAND DOCS: name, type, token, flags, members. */
#define ARG(n, t, f)		{ n, t, NULL, f, NULL }
#define TOKEN(tok, n, t, f)	{ n, t, tok, f, NULL }
#define PURE(tok, n)		{ n, "pure-token", tok, 0, NULL }
#define GROUP(tok, n, t, f, a)	{ n, t, tok, f, a }
#define END			{ NULL, NULL, NULL, 0, NULL }

static const struct cmdarg queue_arg[] = { ARG("queue", "key", 0), END };
static const struct cmdarg queues_arg[] = {
	ARG("queue", "key", MULT), END
};
static const struct cmdarg message_args[] = {
	ARG("body", "string", 0), ARG("delay_ms", "integer", 0), END
};
static const struct cmdarg sadd_args[] = {
	ARG("queue", "key", 0),
	GROUP(NULL, "message", "block", MULT, message_args), END
};
static const struct cmdarg spop_args[] = {
	ARG("queue", "key", 0), ARG("count", "integer", OPT), END
};
static const struct cmdarg qput_args[] = {
	ARG("queue", "key", 0), ARG("id", "string", 0),
	ARG("body", "string", 0), ARG("delay_ms", "integer", 0), END
};
static const struct cmdarg qputat_args[] = {
	ARG("queue", "key", 0), ARG("id", "string", 0),
	ARG("body", "string", 0), ARG("due_unix_ms", "unix-time", 0), END
};
static const struct cmdarg qreserve_args[] = {
	ARG("queue", "key", 0), ARG("count", "integer", 0),
	ARG("lease_ms", "integer", 0),
	TOKEN("BLOCK", "timeout_ms", "integer", OPT), END
};
static const struct cmdarg ids_args[] = {
	ARG("queue", "key", 0), ARG("id", "string", MULT), END
};
static const struct cmdarg id_delay_args[] = {
	ARG("queue", "key", 0), ARG("id", "string", 0),
	ARG("delay_ms", "integer", 0), END
};
static const struct cmdarg qextend_args[] = {
	ARG("queue", "key", 0), ARG("id", "string", 0),
	ARG("lease_ms", "integer", 0), END
};
static const struct cmdarg qpeek_args[] = {
	ARG("queue", "key", 0), ARG("count", "integer", 0), END
};
static const struct cmdarg bspop_args[] = {
	ARG("queue", "key", MULT), ARG("timeout", "double", 0), END
};
static const struct cmdarg keys_args[] = {
	ARG("pattern", "pattern", OPT), END
};
static const struct cmdarg scan_args[] = {
	ARG("cursor", "integer", 0),
	TOKEN("MATCH", "pattern", "pattern", OPT),
	TOKEN("COUNT", "count", "integer", OPT),
	TOKEN("TYPE", "type", "string", OPT), END
};
static const struct cmdarg message_arg[] = {
	ARG("message", "string", 0), END
};
static const struct cmdarg ping_args[] = {
	ARG("message", "string", OPT), END
};
static const struct cmdarg select_args[] = {
	ARG("index", "integer", 0), END
};
static const struct cmdarg auth_args[] = {
	ARG("username", "string", OPT), ARG("password", "string", 0), END
};
static const struct cmdarg userpass_args[] = {
	ARG("username", "string", 0), ARG("password", "string", 0), END
};
static const struct cmdarg hello_opts[] = {
	ARG("protover", "integer", 0),
	GROUP("AUTH", "username-password", "block", OPT, userpass_args),
	TOKEN("SETNAME", "clientname", "string", OPT), END
};
static const struct cmdarg hello_args[] = {
	GROUP(NULL, "arguments", "block", OPT, hello_opts), END
};
static const struct cmdarg onoff_args[] = {
	PURE("ON", "on"), PURE("OFF", "off"), END
};
static const struct cmdarg setinfo_args[] = {
	TOKEN("LIB-NAME", "libname", "string", 0),
	TOKEN("LIB-VER", "libver", "string", 0), END
};
static const struct cmdarg client_types[] = {
	PURE("NORMAL", "normal"), PURE("MASTER", "master"),
	PURE("REPLICA", "replica"), PURE("PUBSUB", "pubsub"), END
};
static const struct cmdarg client_list_args[] = {
	GROUP("TYPE", "client-type", "oneof", OPT, client_types),
	TOKEN("ID", "client-id", "integer", OPT | MULT), END
};
static const struct cmdarg client_subs[] = {
	TOKEN("SETNAME", "connection-name", "string", 0),
	PURE("GETNAME", "getname"), PURE("ID", "id"),
	GROUP("SETINFO", "attr", "oneof", 0, setinfo_args),
	PURE("INFO", "info"),
	GROUP("LIST", "list", "block", 0, client_list_args),
	GROUP("NO-EVICT", "no-evict", "oneof", 0, onoff_args),
	GROUP("NO-TOUCH", "no-touch", "oneof", 0, onoff_args),
	PURE("HELP", "help"), END
};
static const struct cmdarg client_args[] = {
	GROUP(NULL, "subcommand", "oneof", 0, client_subs), END
};
static const struct cmdarg names_arg[] = {
	ARG("command-name", "string", OPT | MULT), END
};
static const struct cmdarg filterby_args[] = {
	TOKEN("MODULE", "module-name", "string", 0),
	TOKEN("ACLCAT", "category", "string", 0),
	TOKEN("PATTERN", "pattern", "pattern", 0), END
};
static const struct cmdarg command_list_args[] = {
	GROUP("FILTERBY", "filterby", "oneof", OPT, filterby_args), END
};
static const struct cmdarg command_subs[] = {
	PURE("COUNT", "count"),
	GROUP("LIST", "list", "block", 0, command_list_args),
	GROUP("INFO", "info", "block", 0, names_arg),
	GROUP("DOCS", "docs", "block", 0, names_arg),
	PURE("HELP", "help"), END
};
static const struct cmdarg command_args[] = {
	GROUP(NULL, "subcommand", "oneof", OPT, command_subs), END
};
static const struct cmdarg config_subs[] = {
	TOKEN("GET", "parameter", "pattern", MULT),
	PURE("HELP", "help"), END
};
static const struct cmdarg config_args[] = {
	GROUP(NULL, "subcommand", "oneof", 0, config_subs), END
};
static const struct cmdarg debug_subs[] = {
	TOKEN("COMMIT-PAUSE", "ms", "integer", 0),
	TOKEN("DEADLOCK", "count", "integer", 0),
	PURE("HELP", "help"), END
};
static const struct cmdarg debug_args[] = {
	GROUP(NULL, "subcommand", "oneof", 0, debug_subs), END
};
static const struct cmdarg info_args[] = {
	ARG("section", "string", OPT | MULT), END
};

/*
 * name, arity, flags, handler, first key, last key, key step, group,
 * since, summary, arguments.  Arity follows Redis: the command name
 * counts, a negative number is a minimum.
 */
const struct cmd cmd_table[] = {
	{ "sadd", -4, W | F, cmd_sadd, 1, 1, 1, "queue", "0.1.0",
	  "Enqueue messages, each due after its delay in milliseconds",
	  sadd_args },
	{ "spop", -2, W | F, cmd_spop, 1, 1, 1, "queue", "0.1.0",
	  "Take the earliest due message(s) of a queue",
	  spop_args },
	{ "scard", 2, R | F, cmd_scard, 1, 1, 1, "queue", "0.1.0",
	  "Number of messages in a queue",
	  queue_arg },
	{ "qadd", -4, W | F, cmd_qadd, 1, 1, 1, "queue", "0.1.0",
	  "Enqueue messages and return their server-assigned ids",
	  sadd_args },
	{ "qput", 5, W | F, cmd_qput, 1, 1, 1, "queue", "0.1.0",
	  "Create or replace the message with the producer's id",
	  qput_args },
	{ "qputat", 5, W | F, cmd_qputat, 1, 1, 1, "queue", "0.1.0",
	  "QPUT with an absolute due time in Unix milliseconds",
	  qputat_args },
	{ "qreserve", -4, W | F | B, cmd_qreserve, 1, 1, 1, "queue", "0.1.0",
	  "Lease due messages: [id, body, deliveries] each",
	  qreserve_args },
	{ "qack", -3, W | F, cmd_qack, 1, 1, 1, "queue", "0.1.0",
	  "Acknowledge (delete) reserved messages",
	  ids_args },
	{ "qnack", 4, W | F, cmd_qnack, 1, 1, 1, "queue", "0.1.0",
	  "Give a reserved message back, due after a delay",
	  id_delay_args },
	{ "qextend", 4, W | F, cmd_qextend, 1, 1, 1, "queue", "0.1.0",
	  "Make a lease end lease_ms from now",
	  qextend_args },
	{ "qreschedule", 4, W | F, cmd_qreschedule, 1, 1, 1, "queue", "0.1.0",
	  "Make any message due after a delay",
	  id_delay_args },
	{ "qcancel", -3, W | F, cmd_qcancel, 1, 1, 1, "queue", "0.1.0",
	  "Remove messages by id, in any state",
	  ids_args },
	{ "qpeek", 3, R, cmd_qpeek, 1, 1, 1, "queue", "0.1.0",
	  "The earliest messages: [id, body, due_unix_ms, deliveries]",
	  qpeek_args },
	{ "qstat", 2, R, cmd_qstat, 1, 1, 1, "queue", "0.1.0",
	  "Counters of a queue, as field/value pairs",
	  queue_arg },
	{ "bspop", -3, W | B, cmd_bspop, 1, -2, 1, "queue", "0.1.0",
	  "Take a due message of the first queue that has one, or wait",
	  bspop_args },
	{ "del", -2, W, cmd_del, 1, -1, 1, "queue", "0.1.0",
	  "Delete queues with all their messages",
	  queues_arg },
	{ "keys", -1, R, cmd_keys, 0, 0, 0, "queue", "0.1.0",
	  "Names of the queues holding messages, matching a glob pattern",
	  keys_args },
	{ "scan", -2, R, cmd_scan, 0, 0, 0, "queue", "0.1.0",
	  "Iterate over the queues",
	  scan_args },
	{ "exists", -2, R | F, cmd_exists, 1, -1, 1, "queue", "0.1.0",
	  "Count the given queues that hold messages",
	  queues_arg },
	{ "type", 2, R | F, cmd_type, 1, 1, 1, "queue", "0.1.0",
	  "Type of a queue: set, or none",
	  queue_arg },
	{ "dbsize", 1, R, cmd_dbsize, 0, 0, 0, "server", "0.1.0",
	  "Number of queues holding messages",
	  NULL },
	{ "ping", -1, F, cmd_ping, 0, 0, 0, "connection", "0.1.0",
	  "Ping the server",
	  ping_args },
	{ "echo", 2, F, cmd_echo, 0, 0, 0, "connection", "0.1.0",
	  "Echo the given string",
	  message_arg },
	{ "quit", -1, NA | F | CMD_TXCTL, cmd_quit, 0, 0, 0, "connection",
	  "0.1.0", "Close the connection",
	  NULL },
	{ "select", 2, F, cmd_select, 0, 0, 0, "connection", "0.1.0",
	  "Select database 0, the only one",
	  select_args },
	{ "auth", -2, NA | F, cmd_auth, 0, 0, 0, "connection", "0.1.0",
	  "Authenticate to the server",
	  auth_args },
	{ "hello", -1, NA | F, cmd_hello, 0, 0, 0, "connection", "0.1.0",
	  "Handshake: RESP2 only",
	  hello_args },
	{ "client", -2, CMD_SUBCMDS, cmd_client, 0, 0, 0, "connection", "0.1.0",
	  "The connection: SETNAME, GETNAME, SETINFO, ID, INFO, LIST, HELP",
	  client_args },
	{ "command", -1, CMD_SUBCMDS, cmd_command, 0, 0, 0, "server", "0.1.0",
	  "Details of the commands: COUNT, LIST, INFO, DOCS, HELP",
	  command_args },
	{ "config", -2, CMD_ADMIN | CMD_SUBCMDS, cmd_config, 0, 0, 0, "server", "0.1.0",
	  "Read the configuration: GET, HELP",
	  config_args },
	{ "info", -1, 0, cmd_info, 0, 0, 0, "server", "0.1.0",
	  "Information and statistics about the server",
	  info_args },
	{ "multi", 1, CMD_TXCTL | F, cmd_multi, 0, 0, 0, "transaction",
	  "0.1.0", "Queue the next commands until EXEC",
	  NULL },
	{ "exec", 1, CMD_TXCTL, cmd_exec, 0, 0, 0, "transaction", "0.1.0",
	  "Run the queued commands in one transaction",
	  NULL },
	{ "discard", 1, CMD_TXCTL | F, cmd_discard, 0, 0, 0, "transaction",
	  "0.1.0", "Forget the queued commands",
	  NULL },
	{ "debug", -2, CMD_ADMIN, cmd_debug, 0, 0, 0, "server", "0.1.0",
	  "Testing aids: COMMIT-PAUSE, DEADLOCK, HELP "
	  "(enable_debug_command)",
	  debug_args },
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
	char	args[UNKNOWN_SHOWN + 4], name[UNKNOWN_SHOWN + 1];
	size_t	i, off = 0, left;
	int	n;

	/* As Redis: the name and the arguments up to 128 bytes each. */
	args[0] = '\0';
	for (i = 1; i < argc && off < UNKNOWN_SHOWN; i++) {
		left = UNKNOWN_SHOWN - off;
		n = snprintf(args + off, sizeof(args) - off, "'%.*s' ",
		    (int)(argvlen[i] > left ? left : argvlen[i]), argv[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	snprintf(name, sizeof(name), "%.*s",
	    (int)(argvlen[0] > UNKNOWN_SHOWN ? UNKNOWN_SHOWN : argvlen[0]),
	    argv[0]);
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

/*
 * The name CLIENT LIST shows in cmd=: a subcommand as Redis 7 names it
 * (client|info), else the command's.
 */
static const char *
last_cmd_name(const struct cmd *cmd, size_t argc, const char **argv,
    const size_t *argvlen)
{
	static const char *const subs[] = {
		"client|getname", "client|id", "client|info", "client|list",
		"client|setinfo", "client|setname", "client|help",
		"command|count", "command|docs", "command|info",
		"command|list", "command|help", "config|get", "config|set",
		"config|resetstat", "config|help", NULL
	};
	const char *const	*p;
	size_t			 n;

	/* Off the path of every other command. */
	if (!(cmd->flags & CMD_SUBCMDS) || argc < 2)
		return cmd->name;
	n = strlen(cmd->name);
	for (p = subs; *p != NULL; p++)
		if (strncmp(*p, cmd->name, n) == 0 && (*p)[n] == '|' &&
		    strlen(*p + n + 1) == argvlen[1] &&
		    strncasecmp(*p + n + 1, argv[1], argvlen[1]) == 0)
			return *p;
	return cmd->name;
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

	if ((cmd = cmd_lookup(argv[0], argvlen[0])) == NULL) {
		multi_refused(c);
		reply_unknown(c, argc, argv, argvlen);
		return STORE_OK;
	}
	if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
	    (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
		if (cmd->proc == cmd_exec && (c->flags & CLIENT_MULTI)) {
			/* As Redis: EXEC refused ends the transaction. */
			multi_abort(c, "wrong number of arguments for 'exec' "
			    "command");
			return STORE_OK;
		}
		multi_refused(c);
		reply_error(c, "ERR wrong number of arguments for '%s' command",
		    cmd->name);
		return STORE_OK;
	}
	if (!(c->flags & CLIENT_AUTHED) && !(cmd->flags & CMD_NOAUTH)) {
		multi_refused(c);
		/* As Redis: a refused EXEC says it aborted a transaction. */
		reply_error(c, "%sNOAUTH Authentication required.",
		    cmd->proc == cmd_exec ? "EXECABORT Transaction discarded "
		    "because of: " : "");
		return STORE_OK;
	}
	c->last_cmd = last_cmd_name(cmd, argc, argv, argvlen);
	if ((c->flags & CLIENT_MULTI) && !(cmd->flags & CMD_TXCTL)) {
		multi_queue(c, argc, argv, argvlen);
		return STORE_OK;
	}
	x.c = c;
	x.argc = argc;
	x.argv = argv;
	x.argvlen = argvlen;
	x.now = now_ms();
	t0 = usec_now();
	r = cmd->proc(&x);
	/*
	 * As in Redis, a command counts when it runs: not when refused or
	 * queued by MULTI, and a blocking command that waits, which runs
	 * again when woken, once, on the run that answers.
	 */
	if (r == CMD_BLOCKED)
		return r;
	STAT_ADD(commands, 1);
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
	const size_t	sfx = sizeof(STORE_DEAD_SUFFIX) - 1;
	size_t		len = x->argvlen[i];

	if (len <= STORE_NAME_MAX)
		return 0;
	/* The dead letter queue of a queue with a name at the limit. */
	if (len <= STORE_DEAD_NAME_MAX && memcmp(x->argv[i] + len - sfx,
	    STORE_DEAD_SUFFIX, sfx) == 0)
		return 0;
	reply_error(x->c, "ERR queue name is %zu bytes, longer than the "
	    "limit of %d", len, STORE_NAME_MAX);
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
	reply_error(x->c, "ERR disk full: less than %llu MiB (min_free_disk_mb "
	    "%d, and room for a checkpoint) free in %s; enqueues are "
	    "refused until space is freed (dequeues, acknowledgements and "
	    "DEL go on)", (unsigned long long)config_disk_floor_mb(server.cfg),
	    server.cfg->min_free_disk_mb, server.cfg->data_dir);
	return -1;
}
