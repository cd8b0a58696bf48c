#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "housekeeper.h"
#include "log.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "wake.h"

#define PURGE_CHUNK	1000	/* records deleted per transaction */
#define IDLE_MS		100

static volatile sig_atomic_t	stop, reopen_log;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		reopen_log = 1;
	else
		stop = 1;
}

static void
signals_setup(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	/* ^C reaches the whole process group: only the master acts on it
	   and stops the children in order. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
}

/* Exits for the master to recover the environment on a panic. */
static void
check(int r, const char *what)
{
	if (r == STORE_PANIC) {
		log_warnx("%s: the environment needs recovery", what);
		_exit(EXIT_PANIC);
	}
}

int
housekeeper_main(const struct config *cfg, int slot)
{
	struct store	*s;
	char		 err[512];
	uint64_t	 now, next_flush = 0, next_ckpt;
	int		 more = 0, more2, r;

	log_setproc("housekeeper");
	signals_setup();
	stats_attach(slot);
	stats_reset_gauges(my_stats);
	my_stats->pid = getpid();
	if (store_open(cfg, slot, &s, err, sizeof(err)) == -1) {
		log_warnx("cannot open the environment: %s", err);
		return 1;
	}
	store_set_dead_hook(s, wake_note_name);
	next_ckpt = mono_ms() + (uint64_t)cfg->checkpoint_interval_s * 1000;
	while (!stop) {
		now = mono_ms();
		if (cfg->durability != DURABILITY_FSYNC && now >= next_flush) {
			check(store_log_flush(s), "log flush");
			next_flush = now + cfg->flush_interval_ms;
		}
		if (now >= next_ckpt) {
			check(r = store_checkpoint(s), "checkpoint");
			if (r == STORE_OK)
				stats->last_checkpoint_ms = now_ms();
			next_ckpt = now + (uint64_t)cfg->checkpoint_interval_s *
			    1000;
		}
		check(r = store_purge_step(s, PURGE_CHUNK, &more), "purge");
		/* Leases that ran out: due again, or dead letters. */
		check(r = store_expire_leases(s, now_ms(), PURGE_CHUNK,
		    (uint32_t)cfg->max_deliveries, NULL, &more2), "leases");
		/* Consumers blocked on a dead queue that just got letters. */
		if (r == STORE_OK)
			wake_send();
		else
			wake_discard();
		more |= more2;
		if (reopen_log) {
			reopen_log = 0;
			log_reopen();
		}
		/* Between purge chunks, a pause that lets writers in. */
		poll(NULL, 0, more ? 1 : (cfg->durability == DURABILITY_FSYNC ||
		    cfg->flush_interval_ms > IDLE_MS ? IDLE_MS :
		    cfg->flush_interval_ms));
	}
	if (cfg->durability != DURABILITY_FSYNC)
		check(store_log_flush(s), "log flush");
	check(store_checkpoint(s), "checkpoint");
	store_close(s);
	log_info("stopped");
	return 0;
}
