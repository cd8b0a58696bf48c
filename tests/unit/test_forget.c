/*
 * Forgetting empty queues (store_queue_forget) against a real environment:
 * an empty queue goes, one with messages or touched since its stamp stays,
 * and a producer that looked the queue up before is waited for.
 */
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <db.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "store.h"
#include "testenv.h"
#include "util.h"

static struct config	 cfg;
static struct store	*s;
static char		 dir[] = "/tmp/dq-test-forget-XXXXXX";

static void
setup(void)
{
	testenv_config(&cfg, dir);
	testenv_open(&cfg, &s);
}

static void
teardown(void)
{
	testenv_close(&cfg, s, dir);
}

static int
record(void *arg, const struct store_msg *m)
{
	(void)arg;
	(void)m;
	return 0;
}

/* A queue that had one message, taken: empty, with a stamp. */
static uint32_t
drained(const char *name, uint64_t *stamp)
{
	struct store_take	t;
	int64_t			c[STORE_NCOUNTERS];
	uint32_t		qid;

	cr_assert_eq(store_queue_create(s, name, strlen(name), &qid),
	    STORE_OK);
	cr_assert_eq(store_msg_add(s, qid, now_ms(), "m", 1, NULL, NULL),
	    STORE_OK);
	cr_assert_eq(store_commit(s), STORE_OK);
	memset(&t, 0, sizeof(t));
	t.now = now_ms();
	t.max = 10;
	t.fn = record;
	cr_assert_eq(store_msg_take(s, qid, &t), STORE_OK);
	cr_assert_eq(t.n, 1);
	cr_assert_eq(store_queue_counters(s, qid, c), STORE_OK);
	cr_assert_eq(c[STORE_C_MESSAGES], 0);
	*stamp = store_queue_stamp(c);
	cr_assert_eq(store_commit(s), STORE_OK);
	return qid;
}

static int
exists(const char *name)
{
	uint32_t	qid;
	int		r;

	r = store_queue_find(s, name, strlen(name), &qid);
	store_abort(s);
	cr_assert(r == STORE_OK || r == STORE_NOTFOUND);
	return r == STORE_OK;
}

TestSuite(forget, .init = setup, .fini = teardown);

Test(forget, an_empty_queue_goes)
{
	uint64_t	stamp;
	uint32_t	qid = drained("q", &stamp);

	cr_assert_eq(store_queue_forget(s, qid, stamp), STORE_OK);
	cr_assert_eq(store_commit(s), STORE_OK);
	cr_assert_not(exists("q"));
	/* Gone: a second time finds nothing. */
	cr_assert_eq(store_queue_forget(s, qid, stamp), STORE_NOTFOUND);
	store_abort(s);
}

Test(forget, a_queue_with_a_message_stays)
{
	int64_t		c[STORE_NCOUNTERS];
	uint32_t	qid;

	cr_assert_eq(store_queue_create(s, "q", 1, &qid), STORE_OK);
	cr_assert_eq(store_msg_add(s, qid, now_ms() + 3600000, "m", 1, NULL,
	    NULL), STORE_OK);
	cr_assert_eq(store_commit(s), STORE_OK);
	cr_assert_eq(store_queue_counters(s, qid, c), STORE_OK);
	cr_assert_eq(store_queue_forget(s, qid, store_queue_stamp(c)),
	    STORE_NOTFOUND);
	cr_assert_eq(store_commit(s), STORE_OK);
	cr_assert(exists("q"));
}

Test(forget, a_queue_used_since_its_stamp_stays)
{
	uint64_t	stamp, later;
	uint32_t	qid = drained("q", &stamp);

	/* Used again and drained again: empty, but not untouched. */
	cr_assert_eq(drained("q", &later), qid);
	cr_assert_neq(later, stamp);
	cr_assert_eq(store_queue_forget(s, qid, stamp), STORE_NOTFOUND);
	cr_assert_eq(store_commit(s), STORE_OK);
	cr_assert(exists("q"));
}

/*
 * A producer (another process) looked the queue up and holds its
 * transaction open for 300 ms before it enqueues: the forget waits for it
 * and then finds the queue changed.  Without the lock it went at once and
 * the message landed under a forgotten queue.
 */
Test(forget, waits_for_a_producer_that_looked_the_queue_up)
{
	char		 err[512];
	uint64_t	 stamp, t0;
	uint32_t	 qid = drained("q", &stamp), found;
	int64_t		 n;
	int		 fds[2], status;
	pid_t		 pid;

	store_close(s);
	s = NULL;
	cr_assert_eq(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		struct store	*p;

		if (store_open(&cfg, 1, &p, err, sizeof(err)) != 0 ||
		    store_queue_find(p, "q", 1, &found) != STORE_OK ||
		    write(fds[1], "x", 1) != 1)
			_exit(1);
		usleep(300 * 1000);
		if (store_msg_add(p, found, now_ms(), "late", 4, NULL,
		    NULL) != STORE_OK || store_commit(p) != STORE_OK)
			_exit(2);
		store_close(p);
		_exit(0);
	}
	cr_assert_gt(pid, 0);
	cr_assert_eq(read(fds[0], err, 1), 1, "the producer failed");
	cr_assert_eq(store_open(&cfg, 0, &s, err, sizeof(err)), 0, "%s", err);
	t0 = now_ms();
	cr_assert_eq(store_queue_forget(s, qid, stamp), STORE_NOTFOUND);
	cr_assert_geq(now_ms() - t0, 200, "did not wait for the producer");
	cr_assert_eq(store_commit(s), STORE_OK);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "producer status %d", status);
	cr_assert_eq(store_queue_count(s, qid, &n), STORE_OK);
	cr_assert_eq(n, 1);
	store_abort(s);
	cr_assert(exists("q"));
}
