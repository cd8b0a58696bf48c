/*
 * cmd_debug: DEBUG, testing aids (Redis' DEBUG, much smaller).
 *
 * Refused unless enable_debug_command is set, as Redis 7 refuses it
 * unless enable-debug-command is: it lets a client make the server
 * misbehave on purpose.
 *
 * DEBUG DEADLOCK count: the next count transactions this connection's
 * worker commits fail as if Berkeley DB had chosen them as the victim of a
 * deadlock, so tests can drive the retry paths (worker.c: the batch run
 * again, then each command alone) at will instead of by luck.
 */
#include <stdio.h>

#include "client.h"
#include "cmd.h"
#include "config.h"
#include "store.h"
#include "worker.h"

#define MAX_FAKE_DEADLOCKS	1000000

static const char *const debug_help[] = {
	"DEADLOCK <count>",
	"    Make the next <count> transactions committed by this",
	"    connection's worker fail as deadlock victims (0: none).",
	NULL
};

int
cmd_debug(struct cmdctx *x)
{
	long long	n;

	if (!server.cfg->enable_debug_command) {
		reply_error(x->c, "ERR DEBUG command not allowed: set "
		    "enable_debug_command = true in the configuration file");
		return STORE_OK;
	}
	if (arg_eq(x, 1, "help") && x->argc == 2)
		reply_help(x->c, "DEBUG", debug_help);
	else if (arg_eq(x, 1, "deadlock") && x->argc == 3) {
		if (arg_ll(x, 2, &n) == -1)
			return STORE_OK;
		if (n < 0 || n > MAX_FAKE_DEADLOCKS) {
			reply_error(x->c, "ERR count must be from 0 to %d",
			    MAX_FAKE_DEADLOCKS);
			return STORE_OK;
		}
		store_fake_deadlocks(server.store, (unsigned)n);
		reply_ok(x->c);
	} else
		reply_bad_subcommand(x, "DEBUG", arg_eq(x, 1, "help") ||
		    arg_eq(x, 1, "deadlock"));
	return STORE_OK;
}
