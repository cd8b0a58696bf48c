#include <linux/futex.h>
#include <sys/syscall.h>

#include <time.h>
#include <unistd.h>

#include "child.h"
#include "flush.h"
#include "log.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "wake.h"

#define SLEEP_MS	100	/* the flusher looks again this often */

static struct stats_flush *
shared(void)
{
	return &stats->flush;
}

static void
futex_wake(uint32_t *word)
{
	/* Not FUTEX_PRIVATE: the word is in memory shared by processes. */
	(void)syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void
futex_wait(uint32_t *word, uint32_t val, int ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	(void)syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0);
}

uint64_t
flush_ticket(int wake)
{
	struct stats_flush	*f = shared();
	uint64_t		 t;

	t = __atomic_add_fetch(&f->ticket, 1, __ATOMIC_SEQ_CST);
	/* Pairs with the flusher's store to sleeping and load of ticket. */
	if (wake && __atomic_load_n(&f->sleeping, __ATOMIC_SEQ_CST)) {
		__atomic_add_fetch(&f->futex, 1, __ATOMIC_SEQ_CST);
		futex_wake(&f->futex);
	}
	return t;
}

void
flush_committing(int on)
{
	__atomic_store_n(&stats_own()->committing, (uint64_t)on,
	    __ATOMIC_SEQ_CST);
}

/* Another process is between a commit and its ticket. */
static int
others_committing(void)
{
	struct stats_slot	*me = stats_own(), *w;
	int			 i, n = stats_slots();

	for (i = 0; i < n; i++) {
		w = &stats->slot[i];
		if (w != me && __atomic_load_n(&w->committing,
		    __ATOMIC_SEQ_CST))
			return 1;
	}
	return 0;
}

uint64_t
flush_seen(void)
{
	uint64_t	t;

	/*
	 * A commit this batch saw may be in the log with its ticket still
	 * to come: the tickets so far would not cover it, and the replies
	 * would show a write that a crash of the machine can undo.  Such a
	 * batch waits for a sync of its own.  Read before the ticket: a
	 * committer clears its mark only after taking its ticket.
	 */
	if (others_committing())
		return flush_ticket(1);
	t = __atomic_load_n(&shared()->ticket, __ATOMIC_SEQ_CST);
	return flush_covered(t) ? 0 : t;
}

int
flush_covered(uint64_t ticket)
{
	return __atomic_load_n(&shared()->covered, __ATOMIC_SEQ_CST) >= ticket;
}

void
flush_want(uint64_t ticket)
{
	__atomic_store_n(&my_stats->flush_wanted, ticket, __ATOMIC_SEQ_CST);
}

int
flush_idle(void)
{
	struct stats_flush	*f = shared();

	return __atomic_load_n(&f->sleeping, __ATOMIC_SEQ_CST) &&
	    __atomic_load_n(&f->ticket, __ATOMIC_SEQ_CST) <=
	    __atomic_load_n(&f->covered, __ATOMIC_SEQ_CST);
}

int
flush_running(void)
{
	return __atomic_load_n(&shared()->pid, __ATOMIC_RELAXED) != 0;
}

/* Every ticket up to t is synced: say so, and poke whoever waits for it. */
static void
publish(uint64_t t)
{
	struct stats_flush	*f = shared();
	struct stats_slot	*w;
	uint64_t		 old, want;
	int			 i, n;

	/* Counted first: a worker that sees covered move may reply at
	   once, and its client's INFO must count the sync it waited for. */
	STAT_ADD(log_syncs, 1);
	old = __atomic_load_n(&f->covered, __ATOMIC_SEQ_CST);
	while (old < t && !__atomic_compare_exchange_n(&f->covered, &old, t,
	    0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	n = stats_slots();
	for (i = 0; i < n; i++) {
		w = &stats->slot[i];
		if (w == my_stats || w->pid == 0)
			continue;
		want = __atomic_load_n(&w->flush_wanted, __ATOMIC_SEQ_CST);
		if (want == 0 || want > t)
			continue;
		/* Whoever clears it sends the one datagram. */
		if (__atomic_compare_exchange_n(&w->flush_wanted, &want, 0, 0,
		    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			wake_poke(i);
	}
}

int
flush_sync(struct store *s)
{
	uint64_t	t;
	int		r;

	/* Read before the sync: the commits counted so far are in the log
	   file already, and the sync makes all of it durable. */
	t = __atomic_load_n(&shared()->ticket, __ATOMIC_SEQ_CST);
	if ((r = store_log_flush(s)) == STORE_OK)
		publish(t);
	return r;
}

/* Sleeps until a ticket newer than t is taken, a signal, or SLEEP_MS. */
static void
sleep_after(uint64_t t)
{
	struct stats_flush	*f = shared();
	uint32_t		 v;

	v = __atomic_load_n(&f->futex, __ATOMIC_SEQ_CST);
	__atomic_store_n(&f->sleeping, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&f->ticket, __ATOMIC_SEQ_CST) == t && !child_stop)
		futex_wait(&f->futex, v, SLEEP_MS);
	__atomic_store_n(&f->sleeping, 0, __ATOMIC_SEQ_CST);
}

int
flusher_main(const struct config *cfg, int slot)
{
	struct stats_flush	*f;
	struct store		*s;
	uint64_t		 t;
	pid_t			 me;
	int			 r;

	if (child_open(cfg, slot, "flusher", &s) == -1)
		return 1;
	log_info("ready");
	f = shared();
	me = getpid();
	__atomic_store_n(&f->pid, me, __ATOMIC_SEQ_CST);
	while (!child_stop) {
		child_reopen_log();
		t = __atomic_load_n(&f->ticket, __ATOMIC_SEQ_CST);
		if (flush_covered(t)) {
			sleep_after(t);
			continue;
		}
		if ((r = flush_sync(s)) == STORE_PANIC) {
			log_warnx("log flush: the environment needs recovery");
			_exit(EXIT_PANIC);
		}
		if (r != STORE_OK) {
			/* The workers' own syncs report it to the clients. */
			log_warnx("log flush: %s", store_errstr(s));
			sleep_after(t);
		}
	}
	/* Unless a flusher of the next generation (reload) took over. */
	__atomic_compare_exchange_n(&f->pid, &me, 0, 0, __ATOMIC_SEQ_CST,
	    __ATOMIC_SEQ_CST);
	store_close(s);
	log_info("stopped");
	return 0;
}
