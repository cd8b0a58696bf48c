/*
 * cmd_server: connection and server commands, there so that real clients'
 * handshakes and tools work: PING, ECHO, QUIT, SELECT, AUTH, HELLO, CLIENT,
 * COMMAND, CONFIG GET and INFO.
 */
#include <sys/socket.h>
#include <sys/utsname.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "client.h"
#include "cmd.h"
#include "config.h"
#include "glob.h"
#include "resp.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#define REDIS_COMPAT_VERSION	"7.2.0"	/* what clients are told */

int
cmd_ping(struct cmdctx *x)
{
	if (x->argc > 2)
		reply_error(x->c, "ERR wrong number of arguments for 'ping' "
		    "command");
	else if (x->argc == 2)
		reply_bulk(x->c, x->argv[1], x->argvlen[1]);
	else
		reply_simple(x->c, "PONG");
	return STORE_OK;
}

int
cmd_echo(struct cmdctx *x)
{
	reply_bulk(x->c, x->argv[1], x->argvlen[1]);
	return STORE_OK;
}

int
cmd_quit(struct cmdctx *x)
{
	reply_ok(x->c);
	worker_close_after_reply(x->c);
	return STORE_OK;
}

int
cmd_select(struct cmdctx *x)
{
	long long	db;

	if (arg_ll(x, 1, &db) == -1)
		return STORE_OK;
	if (db != 0)
		reply_error(x->c, "ERR DB index is out of range");
	else
		reply_ok(x->c);
	return STORE_OK;
}

/* Compares without an early exit, so timing tells nothing. */
static int
secret_eq(const char *a, size_t alen, const char *b)
{
	size_t		blen = strlen(b), i;
	unsigned char	diff = alen != blen;

	for (i = 0; i < alen; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (blen ? blen : 1)];
	return diff == 0;
}

/*
 * Checks user and password; replies with the error and returns -1.  ui is
 * 0 for the one-argument AUTH.  Without requirepass the default user is
 * Redis' "nopass" user: any password names it, so clients configured with
 * a user name and password work against a server that requires none.  Only
 * the one-argument form gets Redis' "no password configured" error.
 */
static int
check_password(struct cmdctx *x, size_t ui, size_t pi)
{
	const char	*pass = server.cfg->requirepass;

	if (pass == NULL && ui == 0) {
		reply_error(x->c, "ERR AUTH <password> called without any "
		    "password configured for the default user. Are you sure "
		    "your configuration is correct?");
		return -1;
	}
	/* User names are case-sensitive, as in Redis. */
	if ((ui != 0 && !(x->argvlen[ui] == 7 &&
	    memcmp(x->argv[ui], "default", 7) == 0)) ||
	    (pass != NULL && !secret_eq(x->argv[pi], x->argvlen[pi], pass))) {
		reply_error(x->c, "WRONGPASS invalid username-password pair "
		    "or user is disabled.");
		return -1;
	}
	x->c->flags |= CLIENT_AUTHED;
	return 0;
}

int
cmd_auth(struct cmdctx *x)
{
	if (x->argc > 3) {
		reply_syntax_error(x->c);
		return STORE_OK;
	}
	if (check_password(x, x->argc == 3 ? 1 : 0, x->argc - 1) == 0)
		reply_ok(x->c);
	return STORE_OK;
}

static int
valid_client_name(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (s[i] < '!' || s[i] > '~')
			return 0;
	return 1;
}

static void
reply_bad_name(struct client *c)
{
	reply_error(c, "ERR Client names cannot contain spaces, newlines or "
	    "special characters.");
}

static int
set_name(struct cmdctx *x, size_t i)
{
	char	*name = NULL;

	if (!valid_client_name(x->argv[i], x->argvlen[i])) {
		reply_bad_name(x->c);
		return -1;
	}
	if (x->argvlen[i] > 0 &&
	    (name = dq_memdup(x->argv[i], x->argvlen[i])) == NULL) {
		reply_error(x->c, "ERR out of memory");
		return -1;
	}
	dq_free(x->c->name);
	x->c->name = name;
	return 0;
}

static void
reply_hello(struct client *c)
{
	reply_array(c, 14);
	reply_bulkstr(c, "server");
	reply_bulkstr(c, "redis");
	reply_bulkstr(c, "version");
	reply_bulkstr(c, REDIS_COMPAT_VERSION);
	reply_bulkstr(c, "proto");
	reply_int(c, 2);
	reply_bulkstr(c, "id");
	reply_int(c, (long long)c->id);
	reply_bulkstr(c, "mode");
	reply_bulkstr(c, "standalone");
	reply_bulkstr(c, "role");
	reply_bulkstr(c, "master");
	reply_bulkstr(c, "modules");
	reply_array(c, 0);
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]: RESP2 only. */
int
cmd_hello(struct cmdctx *x)
{
	long long	ver;
	size_t		i, auth = 0, setname = 0;

	if (x->argc >= 2) {
		if (parse_ll(x->argv[1], x->argvlen[1], &ver) == -1) {
			reply_error(x->c, "ERR Protocol version is not an "
			    "integer or out of range");
			return STORE_OK;
		}
		if (ver != 2) {
			reply_error(x->c, "NOPROTO unsupported protocol "
			    "version");
			return STORE_OK;
		}
	}
	for (i = 2; i < x->argc; i++) {
		if (arg_eq(x, i, "auth") && i + 2 < x->argc) {
			auth = i + 1;
			i += 2;
		} else if (arg_eq(x, i, "setname") && i + 1 < x->argc) {
			/* Checked before AUTH, as in Redis: a refused HELLO
			   must not have authenticated the connection. */
			setname = ++i;
			if (!valid_client_name(x->argv[i], x->argvlen[i])) {
				reply_bad_name(x->c);
				return STORE_OK;
			}
		} else {
			reply_error(x->c, "ERR Syntax error in HELLO option "
			    "'%.*s'", (int)(x->argvlen[i] > 32 ? 32 :
			    x->argvlen[i]), x->argv[i]);
			return STORE_OK;
		}
	}
	if (auth != 0 && check_password(x, auth, auth + 1) == -1)
		return STORE_OK;
	if (!(x->c->flags & CLIENT_AUTHED)) {
		reply_error(x->c, "NOAUTH HELLO must be called with the client "
		    "already authenticated, otherwise the HELLO <proto> AUTH "
		    "<user> <pass> option can be used to authenticate the "
		    "client and select the RESP protocol version at the same "
		    "time");
		return STORE_OK;
	}
	if (setname != 0 && set_name(x, setname) == -1)
		return STORE_OK;
	reply_hello(x->c);
	return STORE_OK;
}

/*
 * Every field of Redis 7.2's CLIENT LIST, in its order: clients parse the
 * line into a map and index fields such as argv-mem without a check.
 * dqd has one output buffer and no reply list, so oll is always 0; the
 * input buffer shrinks back after a big request, and its peak (rbp) is
 * reported as its size (rbs).
 */
static void
client_line(struct buf *b, const struct client *c)
{
	struct sockaddr_storage	ss;
	socklen_t	sslen = sizeof(ss);
	uint64_t	now = mono_ms();
	size_t		amem = resp_parser_mem(&c->parser);
	/* Inside EXEC, as Redis shows it: still a transaction. */
	int		multi = (c->flags & (CLIENT_MULTI | CLIENT_EXEC)) != 0;
	const char	*flags = multi ? "x" :
			    (c->flags & CLIENT_BLOCKED) ? "b" : "N";
	char		laddr[64];

	/* The address the client reached, whatever bind says (0.0.0.0). */
	if (getsockname(c->fd, (struct sockaddr *)&ss, &sslen) == 0)
		format_sockaddr(&ss, laddr, sizeof(laddr));
	else
		snprintf(laddr, sizeof(laddr), "%s:%d", server.cfg->bind,
		    server.cfg->port);
	buf_appendf(b, "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu "
	    "idle=%llu flags=%s db=0 sub=0 psub=0 ssub=0 multi=%lld qbuf=%zu "
	    "qbuf-free=%zu argv-mem=%zu multi-mem=%zu rbs=%zu rbp=%zu obl=0 "
	    "oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=default "
	    "redir=-1 resp=2 lib-name=%s lib-ver=%s\n",
	    (unsigned long long)c->id, c->addr, laddr, c->fd,
	    c->name ? c->name : "",
	    (unsigned long long)(now - c->created_ms) / 1000,
	    (unsigned long long)(now - c->last_ms) / 1000, flags,
	    !multi ? -1LL : (c->flags & CLIENT_EXEC) ? (long long)c->exec_n :
	    (long long)c->multi_n,
	    c->in.len, c->in.cap - c->in.len, amem, c->multi.cap, c->in.cap,
	    c->in.cap, c->out.len,
	    client_mem(c),
	    (c->flags & CLIENT_EXEC) ? "exec" :
	    c->last_cmd ? c->last_cmd : "NULL",
	    c->lib_name ? c->lib_name : "", c->lib_ver ? c->lib_ver : "");
}

static int
client_setinfo(struct cmdctx *x)
{
	char	**field, *v;

	if (x->argc != 4) {
		reply_error(x->c, "ERR wrong number of arguments for 'client|"
		    "setinfo' command");
		return STORE_OK;
	}
	if (arg_eq(x, 2, "lib-name"))
		field = &x->c->lib_name;
	else if (arg_eq(x, 2, "lib-ver"))
		field = &x->c->lib_ver;
	else {
		reply_error(x->c, "ERR Unrecognized option '%.*s'",
		    (int)(x->argvlen[2] > 32 ? 32 : x->argvlen[2]), x->argv[2]);
		return STORE_OK;
	}
	if (!valid_client_name(x->argv[3], x->argvlen[3])) {
		reply_error(x->c, "ERR %.*s cannot contain spaces, newlines or "
		    "special characters.", (int)x->argvlen[2], x->argv[2]);
		return STORE_OK;
	}
	if ((v = dq_memdup(x->argv[3], x->argvlen[3])) == NULL) {
		reply_error(x->c, "ERR out of memory");
		return STORE_OK;
	}
	dq_free(*field);
	*field = v;
	reply_ok(x->c);
	return STORE_OK;
}

static void
reply_client_info(struct cmdctx *x)
{
	struct buf	 b;

	buf_init(&b, 0);
	client_line(&b, x->c);
	reply_bulk(x->c, b.data, b.len);
	buf_free(&b);
}

/* Whether CLIENT LIST's ID filter, if any, names this client. */
static int
client_listed(const struct cmdctx *x, uint64_t cid)
{
	long long	id;
	size_t		i;

	if (x->argc <= 3 || !arg_eq(x, 2, "id"))
		return 1;
	for (i = 3; i < x->argc; i++)
		if (parse_ll(x->argv[i], x->argvlen[i], &id) == 0 &&
		    (uint64_t)id == cid)
			return 1;
	return 0;
}

/*
 * CLIENT LIST [TYPE type | ID id [id ...]], as Redis 7: every client of
 * this worker is of type normal; ids are checked before anything is sent.
 */
static void
client_list(struct cmdctx *x)
{
	struct buf	 b;
	struct client	*c;
	long long	 id;
	size_t		 i;
	int		 none = 0;

	if (x->argc == 4 && arg_eq(x, 2, "type")) {
		if (!arg_eq(x, 3, "normal") && !arg_eq(x, 3, "master") &&
		    !arg_eq(x, 3, "replica") && !arg_eq(x, 3, "slave") &&
		    !arg_eq(x, 3, "pubsub")) {
			reply_error(x->c, "ERR Unknown client type '%.*s'",
			    (int)(x->argvlen[3] > 32 ? 32 : x->argvlen[3]),
			    x->argv[3]);
			return;
		}
		none = !arg_eq(x, 3, "normal");
	} else if (x->argc > 3 && arg_eq(x, 2, "id")) {
		for (i = 3; i < x->argc; i++)
			if (parse_ll(x->argv[i], x->argvlen[i], &id) == -1) {
				reply_error(x->c, "ERR Invalid client ID");
				return;
			}
	} else if (x->argc != 2) {
		reply_syntax_error(x->c);
		return;
	}
	buf_init(&b, 0);
	for (c = server.clients; c != NULL && !none; c = c->next)
		if (client_listed(x, c->id))
			client_line(&b, c);
	reply_bulk(x->c, b.data, b.len);
	buf_free(&b);
}

/* CLIENT NO-EVICT|NO-TOUCH ON|OFF: accepted and ignored. */
static void
client_onoff(struct cmdctx *x, const char *sub)
{
	if (x->argc != 3)
		reply_error(x->c, "ERR wrong number of arguments for 'client|%s' "
		    "command", sub);
	else if (arg_eq(x, 2, "on") || arg_eq(x, 2, "off"))
		reply_ok(x->c);
	else
		reply_syntax_error(x->c);
}

/*
 * Redis' reply to CMD HELP: a title, the lines given (NULL-terminated),
 * and HELP itself, each a status.
 */
void
reply_help(struct client *c, const char *cmd, const char *const *lines)
{
	size_t	i, n = 0;
	char	title[80];

	while (lines[n] != NULL)
		n++;
	reply_array(c, n + 3);
	snprintf(title, sizeof(title), "%s <subcommand> [<arg> [value] [opt] "
	    "...]. Subcommands are:", cmd);
	reply_simple(c, title);
	for (i = 0; i < n; i++)
		reply_simple(c, lines[i]);
	reply_simple(c, "HELP");
	reply_simple(c, "    Print this help.");
}

static const char *const client_help[] = {
	"GETNAME",
	"    Return the name of the current connection.",
	"ID",
	"    Return the ID of the current connection.",
	"INFO",
	"    Return information about the current client connection.",
	"LIST [TYPE <type>] [ID <id> [<id> ...]]",
	"    Return information about the connections served by the same",
	"    worker process as the current one, all of type NORMAL, or those",
	"    of the given ids.",
	"NO-EVICT (ON|OFF)",
	"    Accepted and ignored: dqd evicts no clients.",
	"NO-TOUCH (ON|OFF)",
	"    Accepted and ignored: dqd keeps no access times.",
	"SETINFO <option> <value>",
	"    Set client meta attr. Options are:",
	"    * LIB-NAME: the client lib name.",
	"    * LIB-VER: the client lib version.",
	"SETNAME <name>",
	"    Assign the name <name> to the current connection.",
	NULL
};

static int
client_wrong_args(struct cmdctx *x, size_t argc, const char *sub)
{
	if (x->argc == argc)
		return 0;
	reply_error(x->c, "ERR wrong number of arguments for 'client|%s' "
	    "command", sub);
	return 1;
}

int
cmd_client(struct cmdctx *x)
{
	if (arg_eq(x, 1, "setname")) {
		if (!client_wrong_args(x, 3, "setname") && set_name(x, 2) == 0)
			reply_ok(x->c);
	} else if (arg_eq(x, 1, "getname")) {
		if (client_wrong_args(x, 2, "getname"))
			return STORE_OK;
		if (x->c->name != NULL)
			reply_bulkstr(x->c, x->c->name);
		else
			reply_nil(x->c);
	} else if (arg_eq(x, 1, "id")) {
		if (!client_wrong_args(x, 2, "id"))
			reply_int(x->c, (long long)x->c->id);
	} else if (arg_eq(x, 1, "setinfo"))
		return client_setinfo(x);
	else if (arg_eq(x, 1, "info")) {
		if (!client_wrong_args(x, 2, "info"))
			reply_client_info(x);
	} else if (arg_eq(x, 1, "list"))
		client_list(x);
	else if (arg_eq(x, 1, "no-evict"))
		client_onoff(x, "no-evict");
	else if (arg_eq(x, 1, "no-touch"))
		client_onoff(x, "no-touch");
	else if (arg_eq(x, 1, "help")) {
		if (!client_wrong_args(x, 2, "help"))
			reply_help(x->c, "CLIENT", client_help);
	}
	else
		reply_bad_subcommand(x, "CLIENT", 0);
	return STORE_OK;
}

static void
reply_flags(struct client *c, int flags)
{
	static const struct { int flag; const char *name; } names[] = {
		{ CMD_WRITE, "write" }, { CMD_READONLY, "readonly" },
		{ CMD_NOAUTH, "no_auth" }, { CMD_FAST, "fast" },
		{ CMD_ADMIN, "admin" }, { CMD_BLOCKING, "blocking" },
	};
	size_t	i, n = 0;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		n += (flags & names[i].flag) != 0;
	reply_array(c, n);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (flags & names[i].flag)
			reply_simple(c, names[i].name);
}

/*
 * ACL categories as Redis 7 derives them from the flags (@write, @read,
 * @fast or @slow, @blocking, @admin and @dangerous), then the command's
 * group: @connection, @transaction, or dqd's own @queue and @server.
 */
#define NCATS	7

/* Fills cat (NCATS; group holds the last one); returns how many. */
static size_t
categories(const struct cmd *cmd, const char **cat, char *group,
    size_t grouplen)
{
	size_t	n = 0;

	if (cmd->flags & CMD_WRITE)
		cat[n++] = "@write";
	if (cmd->flags & CMD_READONLY)
		cat[n++] = "@read";
	cat[n++] = (cmd->flags & CMD_FAST) ? "@fast" : "@slow";
	if (cmd->flags & CMD_BLOCKING)
		cat[n++] = "@blocking";
	if (cmd->flags & CMD_ADMIN) {
		cat[n++] = "@admin";
		cat[n++] = "@dangerous";
	}
	snprintf(group, grouplen, "@%s", cmd->group);
	cat[n++] = group;
	return n;
}

static void
reply_categories(struct client *c, const struct cmd *cmd)
{
	const char	*cat[NCATS];
	char		 group[32];
	size_t		 i, n;

	n = categories(cmd, cat, group, sizeof(group));
	reply_array(c, n);
	for (i = 0; i < n; i++)
		reply_simple(c, cat[i]);
}

/* COMMAND LIST FILTERBY ACLCAT: any of its categories, without the @. */
static int
in_category(const struct cmd *cmd, const char *name, size_t len)
{
	const char	*cat[NCATS];
	char		 group[32];
	size_t		 i, n;

	n = categories(cmd, cat, group, sizeof(group));
	for (i = 0; i < n; i++)
		if (eqcase(name, len, cat[i] + 1))
			return 1;
	return 0;
}

/* Redis 7's ten-element command description. */
static void
reply_command_info(struct client *c, const struct cmd *cmd)
{
	reply_array(c, 10);
	reply_bulkstr(c, cmd->name);
	reply_int(c, cmd->arity);
	reply_flags(c, cmd->flags);
	reply_int(c, cmd->firstkey);
	reply_int(c, cmd->lastkey);
	reply_int(c, cmd->keystep);
	reply_categories(c, cmd);
	reply_array(c, 0);	/* tips */
	reply_array(c, 0);	/* key specs */
	reply_array(c, 0);	/* subcommands */
}

static size_t
count_args(const struct cmdarg *a)
{
	size_t	n = 0;

	while (a[n].name != NULL)
		n++;
	return n;
}

static void reply_args(struct client *, const struct cmdarg *);

/* One argument's map; flags are statuses, as redis-cli asserts. */
static void
reply_arg(struct client *c, const struct cmdarg *a)
{
	size_t	nflags = ((a->flags & ARG_OPTIONAL) != 0) +
		    ((a->flags & ARG_MULTIPLE) != 0);

	reply_array(c, 2 * (2 + (a->token != NULL) + (nflags > 0) +
	    (a->args != NULL)));
	reply_bulkstr(c, "name");
	reply_bulkstr(c, a->name);
	reply_bulkstr(c, "type");
	reply_bulkstr(c, a->type);
	if (a->token != NULL) {
		reply_bulkstr(c, "token");
		reply_bulkstr(c, a->token);
	}
	if (nflags > 0) {
		reply_bulkstr(c, "flags");
		reply_array(c, nflags);
		if (a->flags & ARG_OPTIONAL)
			reply_simple(c, "optional");
		if (a->flags & ARG_MULTIPLE)
			reply_simple(c, "multiple");
	}
	if (a->args != NULL) {
		reply_bulkstr(c, "arguments");
		reply_args(c, a->args);
	}
}

static void
reply_args(struct client *c, const struct cmdarg *a)
{
	reply_array(c, count_args(a));
	for (; a->name != NULL; a++)
		reply_arg(c, a);
}

/* Like Redis, a command without arguments has no "arguments" entry. */
static void
reply_command_docs(struct client *c, const struct cmd *cmd)
{
	reply_bulkstr(c, cmd->name);
	reply_array(c, cmd->args != NULL ? 8 : 6);
	reply_bulkstr(c, "summary");
	reply_bulkstr(c, cmd->summary);
	reply_bulkstr(c, "since");
	reply_bulkstr(c, cmd->since);
	reply_bulkstr(c, "group");
	reply_bulkstr(c, cmd->group);
	if (cmd->args != NULL) {
		reply_bulkstr(c, "arguments");
		reply_args(c, cmd->args);
	}
}

static void
command_subset(struct cmdctx *x, int docs)
{
	const struct cmd	*cmd;
	size_t			 i, n = 0;

	if (docs) {
		for (i = 2; i < x->argc; i++)
			n += cmd_lookup(x->argv[i], x->argvlen[i]) != NULL;
		reply_array(x->c, 2 * (x->argc > 2 ? n : cmd_count));
	} else
		reply_array(x->c, x->argc > 2 ? x->argc - 2 : cmd_count);
	if (x->argc <= 2) {
		for (i = 0; i < cmd_count; i++)
			if (docs)
				reply_command_docs(x->c, &cmd_table[i]);
			else
				reply_command_info(x->c, &cmd_table[i]);
		return;
	}
	for (i = 2; i < x->argc; i++) {
		cmd = cmd_lookup(x->argv[i], x->argvlen[i]);
		if (docs && cmd != NULL)
			reply_command_docs(x->c, cmd);
		else if (!docs && cmd != NULL)
			reply_command_info(x->c, cmd);
		else if (!docs)
			reply_nil(x->c);	/* Redis' null, $-1 */
	}
}

static const char *const command_help[] = {
	"(no subcommand)",
	"    Return details about all commands.",
	"COUNT",
	"    Return the total number of commands in this server.",
	"LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
	"    Return a list of all commands in this server.",
	"INFO [<command-name> ...]",
	"    Return details about multiple commands.",
	"    If no command names are given, details for all commands are",
	"    returned.",
	"DOCS [<command-name> ...]",
	"    Return documentation details about multiple commands.",
	"    If no command names are given, documentation details for all",
	"    commands are returned.",
	NULL
};

/* Whether COMMAND LIST's filter, if any, keeps this command. */
static int
command_listed(const struct cmdctx *x, const struct cmd *cmd)
{
	if (x->argc == 2)
		return 1;
	if (arg_eq(x, 3, "pattern"))
		return glob_match(x->argv[4], x->argvlen[4], cmd->name,
		    strlen(cmd->name), 1);
	if (arg_eq(x, 3, "aclcat"))
		return in_category(cmd, x->argv[4], x->argvlen[4]);
	return 0;		/* MODULE: there are none */
}

/* COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern] */
static void
command_list(struct cmdctx *x)
{
	size_t	i, n = 0;

	if (x->argc != 2 && (x->argc != 5 || !arg_eq(x, 2, "filterby") ||
	    !(arg_eq(x, 3, "module") || arg_eq(x, 3, "aclcat") ||
	    arg_eq(x, 3, "pattern")))) {
		reply_syntax_error(x->c);
		return;
	}
	for (i = 0; i < cmd_count; i++)
		n += command_listed(x, &cmd_table[i]);
	reply_array(x->c, n);
	for (i = 0; i < cmd_count; i++)
		if (command_listed(x, &cmd_table[i]))
			reply_bulkstr(x->c, cmd_table[i].name);
}

void
reply_bad_subcommand(struct cmdctx *x, const char *cmd, int known)
{
	char	sub[33], name[33];
	size_t	i, n = x->argvlen[1] > 32 ? 32 : x->argvlen[1];
	/* As Redis: the first 128 bytes of an unknown one. */
	int	shown = x->argvlen[1] > 128 ? 128 : (int)x->argvlen[1];

	for (i = 0; i < n; i++)
		sub[i] = (char)tolower((unsigned char)x->argv[1][i]);
	sub[n] = '\0';
	for (i = 0; i < sizeof(name) - 1 && cmd[i] != '\0'; i++)
		name[i] = (char)tolower((unsigned char)cmd[i]);
	name[i] = '\0';
	if (known)
		reply_error(x->c, "ERR wrong number of arguments for "
		    "'%s|%s' command", name, sub);
	else
		reply_error(x->c, "ERR unknown subcommand '%.*s'. Try %s "
		    "HELP.", shown, x->argv[1], cmd);
}

int
cmd_command(struct cmdctx *x)
{
	if (x->argc == 1)
		command_subset(x, 0);
	else if (arg_eq(x, 1, "count") && x->argc == 2)
		reply_int(x->c, (long long)cmd_count);
	else if (arg_eq(x, 1, "info"))
		command_subset(x, 0);
	else if (arg_eq(x, 1, "docs"))
		command_subset(x, 1);
	else if (arg_eq(x, 1, "list"))
		command_list(x);
	else if (arg_eq(x, 1, "help") && x->argc == 2)
		reply_help(x->c, "COMMAND", command_help);
	else
		reply_bad_subcommand(x, "COMMAND", arg_eq(x, 1, "count") ||
		    arg_eq(x, 1, "help"));
	return STORE_OK;
}

struct config_pairs {
	struct buf	 b;
	size_t		 n;
	char		 seen[64][48];	/* names already in the reply */
	const char	*asked;		/* a name, not a pattern: as given */
	size_t		 askedlen;
};

static void
config_pair(const char *name, const char *value, void *arg)
{
	struct config_pairs	*p = arg;
	size_t			 i;

	for (i = 0; i < p->n && i < 64; i++)
		if (strcmp(p->seen[i], name) == 0)
			return;
	if (p->n < 64)
		snprintf(p->seen[p->n], sizeof(p->seen[p->n]), "%s", name);
	/* As Redis: CONFIG GET MAXCLIENTS answers MAXCLIENTS. */
	if (p->asked != NULL)
		resp_add_bulk(&p->b, p->asked, p->askedlen);
	else
		resp_add_bulkstr(&p->b, name);
	resp_add_bulkstr(&p->b, value);
	p->n++;
}

static const char *const config_help[] = {
	"GET <pattern> [<pattern> ...]",
	"    Return parameters matching the glob-like <pattern> and their",
	"    values.",
	"SET",
	"    Not supported: edit the configuration file and send SIGHUP to",
	"    the master process.",
	NULL
};

int
cmd_config(struct cmdctx *x)
{
	struct config_pairs	p;
	size_t			i;

	if (!arg_eq(x, 1, "get")) {
		if (arg_eq(x, 1, "help") && x->argc == 2)
			reply_help(x->c, "CONFIG", config_help);
		else if (arg_eq(x, 1, "set"))
			reply_error(x->c, "ERR CONFIG SET is not supported: "
			    "edit the configuration file and send SIGHUP to "
			    "the master process");
		else
			reply_bad_subcommand(x, "CONFIG",
			    arg_eq(x, 1, "help"));
		return STORE_OK;
	}
	if (x->argc < 3) {
		reply_error(x->c, "ERR wrong number of arguments for "
		    "'config|get' command");
		return STORE_OK;
	}
	memset(&p, 0, sizeof(p));
	buf_init(&p.b, 0);
	for (i = 2; i < x->argc; i++) {
		p.asked = glob_special(x->argv[i], x->argvlen[i]) ? NULL :
		    x->argv[i];
		p.askedlen = x->argvlen[i];
		config_each(server.cfg, x->argv[i], x->argvlen[i], 1,
		    config_pair, &p);
	}
	reply_array(x->c, 2 * p.n);
	if (buf_append(&x->c->out, p.b.data, p.b.len) == -1)
		x->c->flags |= CLIENT_CLOSE_ASAP;
	buf_free(&p.b);
	return STORE_OK;
}
