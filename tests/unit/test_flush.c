/*
 * flush.h against a real environment in a temporary directory: tickets,
 * what a sync covers, and who gets poked.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "flush.h"
#include "stats.h"
#include "store.h"
#include "testenv.h"

static struct config	 cfg;
static struct store	*s;
static char		 dir[] = "/tmp/dq-test-flush-XXXXXX";

static void
setup(void)
{
	cr_assert_eq(stats_create(), 0);
	stats_slot_used(0);
	stats_attach(0);
	my_stats->pid = getpid();
	stats->master_pid = getpid();
	testenv_config(&cfg, dir);
	cfg.durability = DURABILITY_FSYNC;
	testenv_open(&cfg, &s);
	store_defer_sync(s);
}

static void
teardown(void)
{
	testenv_close(&cfg, s, dir);
}

/* One committed message, its log written but not synced. */
static uint64_t
commit_one(const char *queue)
{
	uint32_t	qid;

	cr_assert_eq(store_queue_create(s, queue, strlen(queue), &qid),
	    STORE_OK);
	cr_assert_eq(store_msg_add(s, qid, 1, "body", 4, NULL, NULL),
	    STORE_OK);
	cr_assert_eq(store_commit(s), STORE_OK);
	return flush_ticket(0);
}

TestSuite(flush, .init = setup, .fini = teardown);

Test(flush, tickets_count_up_and_wait_for_a_sync)
{
	uint64_t	a, b;

	cr_assert(flush_covered(0));
	cr_assert_eq(flush_seen(), 0, "nothing to wait for yet");
	a = commit_one("a");
	b = commit_one("b");
	cr_assert_eq(b, a + 1);
	cr_assert_not(flush_covered(a));
	cr_assert_eq(flush_seen(), b, "a read waits for every commit so far");
	cr_assert_eq(flush_sync(s), STORE_OK);
	cr_assert(flush_covered(a));
	cr_assert(flush_covered(b));
	cr_assert_eq(flush_seen(), 0);
	cr_assert_eq(my_stats->log_syncs, 1);
}

Test(flush, a_sync_covers_only_tickets_taken_before_it)
{
	uint64_t	a;

	a = commit_one("a");
	cr_assert_eq(flush_sync(s), STORE_OK);
	cr_assert(flush_covered(a));
	cr_assert_not(flush_covered(a + 1));
}

Test(flush, idle_only_while_the_flusher_sleeps_and_nothing_waits)
{
	stats->flush.sleeping = 0;
	cr_assert_not(flush_idle());
	stats->flush.sleeping = 1;
	cr_assert(flush_idle());
	(void)commit_one("a");
	cr_assert_not(flush_idle(), "a commit waits for a sync");
	cr_assert_eq(flush_sync(s), STORE_OK);
	cr_assert(flush_idle());
}

Test(flush, the_sync_clears_the_wants_it_covers)
{
	struct stats_slot	*w1 = &stats->slot[1], *w2 = &stats->slot[2];
	uint64_t		 a;

	a = commit_one("a");
	stats_slot_used(2);		/* as the master does before a fork */
	w1->pid = w2->pid = getpid();	/* alive; their sockets do not exist */
	w1->flush_wanted = a;
	w2->flush_wanted = a + 1;
	flush_want(a);			/* our own: never poked by ourselves */
	cr_assert_eq(flush_sync(s), STORE_OK);
	cr_assert_eq(w1->flush_wanted, 0, "covered: cleared and poked");
	cr_assert_eq(w2->flush_wanted, a + 1, "not covered yet: left alone");
	cr_assert_eq(my_stats->flush_wanted, a);
}

Test(flush, no_flusher_until_one_says_so)
{
	cr_assert_not(flush_running());
	stats->flush.pid = getpid();
	cr_assert(flush_running());
}
