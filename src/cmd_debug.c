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
 *
 * DEBUG COMMIT-PAUSE ms: under durability fsync, the worker sleeps ms
 * between its next commit and the taking of its ticket (flush.h), the
 * instant in which another worker can see a commit that no sync covers
 * yet; tests widen it to check that such a reader waits for a sync.
 */
#include <stdio.h>

#include "client.h"
#include "cmd.h"
#include "config.h"
#include "store.h"
#include "worker.h"

#define MAX_FAKE_DEADLOCKS	1000000
#define MAX_COMMIT_PAUSE_MS	10000

static const char *const debug_help[] = {
	"DEADLOCK <count>",
	"    Make the next <count> transactions committed by this",
	"    connection's worker fail as deadlock victims (0: none).",
	"COMMIT-PAUSE <ms>",
	"    Under durability fsync, sleep <ms> between this worker's next",
	"    commit and its request for a log sync (0: none).",
	NULL
};

/* Argument i as a number from 0 to max, or -1 with the error replied. */
static int
arg_in_range(struct cmdctx *x, size_t i, const char *what, long long max,
    long long *n)
{
	if (arg_ll(x, i, n) == -1)
		return -1;
	if (*n < 0 || *n > max) {
		reply_error(x->c, "ERR %s must be from 0 to %lld", what, max);
		return -1;
	}
	return 0;
}

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
		if (arg_in_range(x, 2, "count", MAX_FAKE_DEADLOCKS, &n) == 0) {
			store_fake_deadlocks(server.store, (unsigned)n);
			reply_ok(x->c);
		}
	} else if (arg_eq(x, 1, "commit-pause") && x->argc == 3) {
		if (arg_in_range(x, 2, "ms", MAX_COMMIT_PAUSE_MS, &n) == 0) {
			server.commit_pause_ms = (unsigned)n;
			reply_ok(x->c);
		}
	} else
		reply_bad_subcommand(x, "DEBUG", arg_eq(x, 1, "help") ||
		    arg_eq(x, 1, "deadlock") || arg_eq(x, 1, "commit-pause"));
	return STORE_OK;
}
