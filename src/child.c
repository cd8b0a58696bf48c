#include <unistd.h>

#include "child.h"
#include "log.h"
#include "stats.h"
#include "store.h"
#include "util.h"

volatile sig_atomic_t		child_stop;
static volatile sig_atomic_t	reopen_log;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		reopen_log = 1;
	else
		child_stop = 1;
}

void
child_reopen_log(void)
{
	if (!reopen_log)
		return;
	reopen_log = 0;
	if (log_reopen() == -1)
		log_warn("reopen log");
}

int
child_open(const struct config *cfg, int slot, const char *name,
    struct store **s)
{
	char	err[512];

	log_setproc("%s", name);
	child_signals_setup(on_signal);
	stats_attach(slot);
	stats_reset_gauges(my_stats);
	my_stats->pid = getpid();
	if (store_open(cfg, slot, s, err, sizeof(err)) == -1) {
		log_warnx("cannot open the environment: %s", err);
		return -1;
	}
	return 0;
}
