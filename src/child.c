#include <unistd.h>

#include "child.h"
#include "log.h"
#include "stats.h"
#include "store.h"
#include "util.h"

int
child_open(const struct config *cfg, int slot, const char *name,
    void (*on_signal)(int), struct store **s)
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
