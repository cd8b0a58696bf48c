/*
 * worker: accept, read, run a batch of commands in one transaction, commit,
 * then write the replies.  See worker.h.
 */
#include <sys/ioctl.h>
#include <sys/param.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <linux/sockios.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "client.h"
#include "cmd.h"
#include "ev.h"
#include "flush.h"
#include "log.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "wake.h"
#include "worker.h"

#define BATCH_MAX_CMDS	4096		/* commands in one transaction */
#define BATCH_MIN_CMDS	8
#define OUT_SOFT_LIMIT	(8 * 1024 * 1024) /* run no more commands above */
#define IN_KEEP_BYTES	(1024 * 1024)	/* a bigger input buffer shrinks */
#define BATCH_ATTEMPTS	16		/* deadlocks before going solo */
#define SOLO_ATTEMPTS	1000
#define SOLO_PAUSE_US	100		/* more after each deadlock, */
#define SOLO_PAUSE_MAX	10000		/* up to this: the loop waits too */
#define ACCEPT_BURST	64
#define CRON_MS		100
#define DRAIN_MS	2000		/* replies' grace period at stop */
#define RETIRE_MS	60000		/* old clients' grace after a reload */
#define SPIN_US		50		/* polling, no sleep, after a batch */
#define ACTIVE_MS	4		/* a client with input this recent is
					   active (sync_here) */
#define SYNC_HERE_ACTIVE 3		/* at most this many active clients */
#define ACCEPT_PAUSE_MS	100		/* out of descriptors: accept later */
#define LINGER_MS	2000		/* reading after a protocol error */

struct server		 server;
static size_t		 batch_ncmds;
/*
 * Commands a batch may take.  Two workers whose big transactions write
 * the same pages deadlock, and the loser runs its whole batch again: after
 * a deadlock the budget halves, so transactions get shorter and collide
 * less; each clean commit lets it grow back.
 */
static size_t		 batch_budget = BATCH_MAX_CMDS;
static int		 accepting;	/* listening socket in our epoll set */
static uint64_t		 accept_paused_until;	/* mono ms, after EMFILE */
static uint64_t		 accept_warned_ms;	/* mono ms, its last warning */
static int		 live_workers = 1;
static uint64_t		 next_block_check = UINT64_MAX;	/* mono ms */
static int		 blocked_changed;
static int		 trim_due;	/* big buffers freed: give memory back */
static uint64_t		 block_seq_last;
static struct client	**wakeq;	/* clients to wake (wakeq_run) */
static size_t		 wakeq_len, wakeq_cap;
static volatile sig_atomic_t reopen_log, retire;
static uint64_t		 retire_deadline;	/* 0: not retiring */
static uint64_t		 batch_ticket;	/* flush.h: the batch's last commit */
static uint64_t		 held_want;	/* flush.h: the newest held ticket */
static int		 batch_sync_here; /* the batch syncs the log itself */
static uint64_t		 last_batch_us;	/* mono us: a lone client's batch began;
					   0: no polling due (wait_events) */
static uint64_t		 active_window;	/* mono ms / ACTIVE_MS */
static int		 active_now;	/* clients with input in this window */
static int		 active_before;	/* and in the one before */

static void	on_client(struct ev_loop *, int, int, void *);

/* Starts a new window of ACTIVE_MS when now is past the current one. */
static void
roll_active(uint64_t now_ms)
{
	uint64_t	w = now_ms / ACTIVE_MS;

	if (w == active_window)
		return;
	active_before = w == active_window + 1 ? active_now : 0;
	active_now = 0;
	active_window = w;
}

/* c sent input: it counts once among this window's active clients. */
static void
note_active(struct client *c)
{
	roll_active(c->last_ms);
	if (c->active_window != active_window) {
		c->active_window = active_window;
		active_now++;
	}
}

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		reopen_log = 1;
	else if (sig == SIGQUIT)
		retire = 1;
	else
		server.stop = 1;
}

/* The environment is broken: leave without touching it; the master
   recovers it and starts a new pool. */
static void __attribute__((noreturn))
panic(void)
{
	log_warnx("the environment needs recovery; exiting so that the "
	    "master runs it");
	_exit(EXIT_PANIC);
}

static void
pend(struct client *c)
{
	/* A lingering client's input is dropped, never run. */
	if (c->flags & (CLIENT_PENDING | CLIENT_LINGERING))
		return;
	c->flags |= CLIENT_PENDING;
	c->pnext = server.pending;
	server.pending = c;
}

static void
unpend(struct client *c)
{
	struct client	**pp;

	if (!(c->flags & CLIENT_PENDING))
		return;
	for (pp = &server.pending; *pp != NULL; pp = &(*pp)->pnext)
		if (*pp == c) {
			*pp = c->pnext;
			break;
		}
	c->flags &= ~CLIENT_PENDING;
}

/* Takes c off the held list; its held replies stay unsent. */
static void
unhold(struct client *c)
{
	struct client	**pp;

	if (!(c->flags & CLIENT_HELD))
		return;
	for (pp = &server.held; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	c->flags &= ~CLIENT_HELD;
}

/*
 * Once a second, after big buffers went: malloc keeps freed memory for
 * reuse, so a worker that once served a few huge requests kept their size
 * for good (hundreds of MiB after a burst of 1 MiB bodies).
 */
static void
give_memory_back(void)
{
	if (!trim_due)
		return;
	trim_due = 0;
	(void)malloc_trim(0);
}

static void
free_client(struct client *c)
{
	unpend(c);
	unhold(c);
	if (c->flags & (CLIENT_ARMED | CLIENT_BLOCKED))
		blocked_changed = 1;	/* the gauge and watched queues */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		server.clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	ev_set(server.ev, c->fd, 0, NULL, NULL);
	server.nclients--;
	STAT_ADD(clients, -1);
	__atomic_sub_fetch(&stats->clients, 1, __ATOMIC_RELAXED);
	log_debug("client %s closed", c->addr);
	if (client_mem(c) > IN_KEEP_BYTES)
		trim_due = 1;
	client_free(c);
}

static void
update_events(struct client *c)
{
	int	mask = 0;

	/* Throttled, it still reads ahead, up to the query buffer limit
	   (client.c, IN_AHEAD_MAX), where it is closed as Redis does. */
	if (!(c->flags & CLIENT_CLOSE_AFTER_REPLY) && !server.stop)
		mask |= EV_READ;
	if (client_unsent(c) > 0)
		mask |= EV_WRITE;
	if (ev_set(server.ev, c->fd, mask, on_client, c) == -1)
		log_warn("epoll_ctl");
}

/*
 * The error reply of a protocol error is sent; the client may still be
 * sending the request it answers (a body over the limit).  Closing now
 * with unread input makes the kernel send a reset, and the client would
 * see "connection reset" instead of the error: the write side is shut,
 * and what comes in is read and dropped until the client closes or
 * LINGER_MS pass (nginx's lingering close).
 */
static void
linger(struct client *c)
{
	if (shutdown(c->fd, SHUT_WR) == -1) {
		free_client(c);
		return;
	}
	c->flags &= ~(CLIENT_CLOSE_AFTER_REPLY | CLIENT_LINGER);
	c->flags |= CLIENT_LINGERING;
	c->linger_until = mono_ms() + LINGER_MS;
	update_events(c);
}

/* Reads and drops what a lingering client sends; closes it at its end. */
static void
linger_read(struct client *c)
{
	if (client_read(c) == -1 || mono_ms() >= c->linger_until) {
		free_client(c);
		return;
	}
	c->in.len = 0;
}

static void
close_lingering(void)
{
	struct client	*c, *next;
	uint64_t	 now = mono_ms();

	for (c = server.clients; c != NULL; c = next) {
		next = c->next;
		if ((c->flags & CLIENT_LINGERING) && now >= c->linger_until)
			free_client(c);
	}
}

/* After a write: close, resume input, or wait for the socket. */
static void
after_write(struct client *c)
{
	if ((c->flags & CLIENT_CLOSE_AFTER_REPLY) && c->sent == c->out.len) {
		if (c->flags & CLIENT_LINGER)
			linger(c);
		else
			free_client(c);
		return;
	}
	if ((c->flags & CLIENT_THROTTLED) &&
	    client_held(c) < OUT_SOFT_LIMIT / 2) {
		c->flags &= ~CLIENT_THROTTLED;
		pend(c);
	}
	update_events(c);
}

static void
on_client(struct ev_loop *ev, int fd, int events, void *arg)
{
	struct client	*c = arg;

	if (c->flags & CLIENT_LINGERING) {
		linger_read(c);
		return;
	}
	if (events & EV_READ) {
		if (client_read(c) == -1) {
			free_client(c);
			return;
		}
		c->last_ms = mono_ms();
		if (server.defer_sync)
			note_active(c);
		if (!(c->flags & CLIENT_THROTTLED))
			pend(c);
	}
	if (events & EV_WRITE) {
		if (client_write(c) == -1) {
			free_client(c);
			return;
		}
		after_write(c);
	}
}

static void
refuse(int fd, const char *msg)
{
	/* Best effort, like Redis: the socket is new and has room. */
	if (write(fd, msg, strlen(msg)) == -1)
		log_debug("refuse: %s", strerror(errno));
	close(fd);
}

static void
accept_one(int fd, const struct sockaddr_storage *ss)
{
	const struct config	*cfg = server.cfg;
	struct client		*c;
	char			 addr[64];
	size_t			 max_bulk, qlimit;
	int64_t			 n;
	int			 one = 1;

	format_sockaddr(ss, addr, sizeof(addr));
	n = __atomic_add_fetch(&stats->clients, 1, __ATOMIC_RELAXED);
	if (n > cfg->maxclients) {
		__atomic_sub_fetch(&stats->clients, 1, __ATOMIC_RELAXED);
		STAT_ADD(rejected, 1);
		log_notice("client %s refused: maxclients (%d) reached", addr,
		    cfg->maxclients);
		refuse(fd, "-ERR max number of clients reached\r\n");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A body may be up to max_message_bytes; a frame twice that plus
	   room for the other arguments is refused as a protocol error. */
	max_bulk = (size_t)cfg->max_message_bytes * 2;
	if (max_bulk < 1024 * 1024)
		max_bulk = 1024 * 1024;
	qlimit = max_bulk * 2 + 16 * 1024 * 1024;
	c = client_new(fd, ++server.next_id * 512 + server.slot, addr,
	    max_bulk, qlimit);
	if (c == NULL || ev_set(server.ev, fd, EV_READ, on_client, c) == -1) {
		__atomic_sub_fetch(&stats->clients, 1, __ATOMIC_RELAXED);
		log_warnx("client %s refused: out of memory", addr);
		if (c != NULL)
			client_free(c);
		else
			close(fd);
		return;
	}
	c->created_ms = c->last_ms = c->last_out_ms = mono_ms();
	if (cfg->requirepass == NULL)
		c->flags |= CLIENT_AUTHED;
	c->next = server.clients;
	if (c->next != NULL)
		c->next->prev = c;
	server.clients = c;
	server.nclients++;
	STAT_ADD(clients, 1);
	STAT_ADD(connections, 1);
	log_debug("client %s accepted", addr);
}

static void	on_accept(struct ev_loop *, int, int, void *);

/*
 * Spreads connections over the workers.  An idle epoll with EPOLLEXCLUSIVE
 * tends to hand every new connection to the same process, so a worker with
 * more than its fair share (plus one) of the server's clients leaves the
 * accepting to the others until the balance is back (nginx's
 * accept_disabled).  With one live worker it always accepts.
 */
static int
fair_share_left(void)
{
	int64_t	total, fair;

	if (live_workers <= 1)
		return 1;
	total = __atomic_load_n(&stats->clients, __ATOMIC_RELAXED);
	fair = (total + live_workers - 1) / live_workers;
	return server.nclients < fair + 1;
}

/*
 * This worker stops accepting, over its share: one below its share may be
 * asleep with the listening socket out of its epoll set (it left it when
 * it was over its share itself), and a burst of connections would wait in
 * the backlog until its next wake, 100 ms later, again and again.  A poke
 * wakes it to take the socket back (balance_accept at the end of its loop).
 */
static void
poke_other_workers(void)
{
	int	i, slots = stats_slots();

	for (i = 0; i < slots; i++)
		if (&stats->slot[i] != my_stats && stats->slot[i].is_worker &&
		    stats->slot[i].pid != 0)
			wake_poke(i);
}

static void
balance_accept(void)
{
	int	want;

	/* The clock only while a pause (EMFILE) runs: this is every loop. */
	if (accept_paused_until != 0 && mono_ms() >= accept_paused_until)
		accept_paused_until = 0;
	want = fair_share_left() && !server.stop && !retire_deadline &&
	    accept_paused_until == 0;

	if (want == accepting)
		return;
	if (ev_set(server.ev, server.listen_fd, want ? EV_READ | EV_EXCLUSIVE :
	    0, on_accept, NULL) == -1) {
		log_warn("epoll_ctl listen");
		return;
	}
	accepting = want;
	if (!want)
		poke_other_workers();
}

/*
 * Out of file descriptors: the connection stays in the listen backlog and
 * the socket, level-triggered, would wake this worker again at once, for
 * ever.  So it leaves the socket alone for a moment (nginx's accept
 * pause; the loop wakes every CRON_MS to take it back), and says so once
 * a second at most.
 */
static void
pause_accept(void)
{
	uint64_t	now = mono_ms();

	if (now - accept_warned_ms >= 1000) {
		log_warn("accept (connections wait in the backlog)");
		accept_warned_ms = now;
	}
	accept_paused_until = now + ACCEPT_PAUSE_MS;
}

static void
count_live_workers(void)
{
	int	i, n = 0, slots = stats_slots();

	for (i = 0; i < slots; i++)
		n += stats->slot[i].is_worker && stats->slot[i].pid != 0;
	live_workers = n > 0 ? n : 1;
}

static void
on_accept(struct ev_loop *ev, int lfd, int events, void *arg)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	int			i, fd;

	if (__atomic_load_n(&my_stats->retire, __ATOMIC_SEQ_CST)) {
		retire = 1;	/* a reload: the new workers take it */
		return;
	}
	/*
	 * The first connection is always taken: the kernel woke this worker
	 * alone for it, and one that finds itself over its share only now
	 * (another worker's clients just left) would otherwise leave it in
	 * the backlog, unseen by the others until the next connection.
	 * The live workers are counted again first: just after the start
	 * the others may not have been up at the last count, and this one
	 * would take every client for a second.
	 */
	count_live_workers();
	for (i = 0; i < ACCEPT_BURST && (i == 0 || fair_share_left()); i++) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE)
				pause_accept();
			else if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept");
			break;
		}
		accept_one(fd, &ss);
	}
	balance_accept();
}

/*
 * A blocking command found nothing: it stays in the input, unparsed, to
 * run again.  The first time it only arms: its queues are published to the
 * other workers (wake.h) and it runs once more, so that an enqueue that
 * committed before the publication is not missed.  Then it sleeps.
 */
static void
block(struct client *c)
{
	resp_parser_reset(&c->parser);
	if (c->flags & CLIENT_ARMED)
		c->flags |= CLIENT_BLOCKED;
	else {
		/* Kept through wakes that found nothing: its place in line. */
		c->block_seq = ++block_seq_last;
		c->flags |= CLIENT_ARMED | CLIENT_MORE;
	}
	blocked_changed = 1;
}

static void
unblock_done(struct client *c)
{
	if (!(c->flags & (CLIENT_ARMED | CLIENT_BLOCKED)))
		return;
	c->flags &= ~(CLIENT_ARMED | CLIENT_BLOCKED);
	c->block_deadline = c->block_due = c->block_bits = c->block_seq = 0;
	blocked_changed = 1;
}

/* A blocked client to run again; wakeq_run() runs them in order. */
static void
wakeq_add(struct client *c)
{
	struct client	**v;
	size_t		  cap;

	c->flags &= ~CLIENT_BLOCKED;
	if (wakeq_len == wakeq_cap) {
		cap = wakeq_cap ? 2 * wakeq_cap : 64;
		if ((v = dq_reallocarray(wakeq, cap, sizeof(*v))) == NULL) {
			pend(c);	/* out of order, not forgotten */
			return;
		}
		wakeq = v;
		wakeq_cap = cap;
	}
	wakeq[wakeq_len++] = c;
}

static int
by_block_seq(const void *a, const void *b)
{
	const struct client	*x = *(struct client * const *)a;
	const struct client	*y = *(struct client * const *)b;

	return x->block_seq < y->block_seq ? -1 : x->block_seq > y->block_seq;
}

/*
 * The woken clients run in the order they blocked, as Redis serves a
 * key's BLPOP waiters: with fewer messages than consumers, the one that
 * waited longest gets the first (the list of clients is newest first).
 * A batch runs its clients in the order they were pended.
 */
static void
wakeq_run(void)
{
	size_t	i;

	if (wakeq_len > 1)
		qsort(wakeq, wakeq_len, sizeof(*wakeq), by_block_seq);
	for (i = 0; i < wakeq_len; i++)
		pend(wakeq[i]);
	wakeq_len = 0;
}

/* Runs the blocked clients that bits concern. */
static void
wake_clients(uint64_t bits)
{
	struct client	*c;

	if (bits == 0)
		return;
	for (c = server.clients; c != NULL; c = c->next)
		if ((c->flags & CLIENT_BLOCKED) && (c->block_bits & bits))
			wakeq_add(c);
	wakeq_run();
}

/* A dead letter was made: consumers blocked on the dead queue look. */
static void
on_dead_letter(const void *name, size_t len)
{
	wake_note_name(name, len);
	STAT_ADD(dead_lettered, 1);
}

static void
on_wake(struct ev_loop *ev, int fd, int events, void *arg)
{
	wake_clients(wake_take());
}

/*
 * Wakes blocked clients whose deadline passed or whose queue has a message
 * due by now; publishes what the others wait on; finds the next check.
 */
static void
check_blocked(void)
{
	struct client	*c;
	uint64_t	 mono = mono_ms(), now = now_ms(), next = UINT64_MAX;
	uint64_t	 bits = 0, t, nblocked = 0;

	for (c = server.clients; c != NULL; c = c->next) {
		if (!(c->flags & (CLIENT_ARMED | CLIENT_BLOCKED)))
			continue;
		bits |= c->block_bits;
		nblocked++;
		if (!(c->flags & CLIENT_BLOCKED))
			continue;
		if ((c->block_deadline && mono >= c->block_deadline) ||
		    (c->block_due && now >= c->block_due)) {
			wakeq_add(c);
			continue;
		}
		if (c->block_deadline && c->block_deadline < next)
			next = c->block_deadline;
		if (c->block_due) {
			t = mono + (c->block_due - now);
			if (t < next)
				next = t;
		}
	}
	wakeq_run();
	wake_watch(bits);
	__atomic_store_n(&my_stats->blocked, nblocked, __ATOMIC_RELAXED);
	next_block_check = next;
	blocked_changed = 0;
}

/* After a commit: the blocked clients of the queues it filled, here and in
   the other workers. */
static void
after_commit(void)
{
	wake_clients(wake_send());
}

/*
 * Commits the transaction; under durability fsync takes the ticket that
 * covers it (wake: the flusher syncs it, else this worker does).  Between
 * the two the commit is marked for the other workers (flush_seen).  A
 * transaction that only read has nothing of its own to sync: its replies
 * wait only for what it may have seen (flush_seen), so reads and empty
 * SPOPs cost no sync.
 */
static int
commit(int wake)
{
	int	r;

	if (!server.defer_sync)
		return store_commit(server.store);
	if (!store_txn_wrote(server.store)) {
		if ((r = store_commit(server.store)) == STORE_OK)
			batch_ticket = MAX(batch_ticket, flush_seen());
		return r;
	}
	flush_committing(1);
	if ((r = store_commit(server.store)) == STORE_OK) {
		if (server.commit_pause_ms > 0) {
			usleep(server.commit_pause_ms * 1000);
			server.commit_pause_ms = 0;
		}
		/* Never lower: a batch's lone commands each commit. */
		batch_ticket = MAX(batch_ticket, flush_ticket(wake));
	}
	flush_committing(0);
	return r;
}

/* Runs one command alone in its own transaction, retrying deadlocks. */
static int
run_solo(struct client *c, size_t argc, const char **argv,
    const size_t *argvlen)
{
	size_t	mark = c->out.len;
	int	attempt, r;

	multi_save(c);
	for (attempt = 0; attempt < SOLO_ATTEMPTS; attempt++) {
		if (attempt > 0)	/* an EXEC ended the MULTI it runs again */
			multi_restore(c);
		stats_batch_begin();
		r = cmd_execute(c, argc, argv, argvlen);
		if (r == STORE_OK || r == CMD_BLOCKED) {
			int r2 = commit(1);

			if (r2 == STORE_OK) {
				stats_batch_commit();
				after_commit();
				return r;
			}
			r = r2;
		}
		stats_batch_abort();
		store_abort(server.store);
		wake_discard();
		buf_truncate(&c->out, mark);
		if (r == STORE_PANIC)
			panic();
		if (r == STORE_ERR)
			r = store_out_of_locks(server.store);
		if (r != STORE_RETRY) {
			reply_error(c, "ERR storage error, nothing was "
			    "changed: %s", store_errstr(server.store));
			return STORE_OK;
		}
		STAT_ADD(retries, 1);
		usleep(SOLO_PAUSE_US * (attempt + 1) < SOLO_PAUSE_MAX ?
		    SOLO_PAUSE_US * (attempt + 1) : SOLO_PAUSE_MAX);
	}
	log_warnx("client %s: a command deadlocked %d times", c->addr,
	    SOLO_ATTEMPTS);
	reply_error(c, "ERR storage busy: a deadlock repeated %d times, "
	    "nothing was changed", SOLO_ATTEMPTS);
	return STORE_OK;
}

static void
protocol_error(struct client *c)
{
	log_notice("client %s: %s", c->addr, c->parser.error);
	STAT_ADD(protocol_errors, 1);
	reply_error(c, "%s", c->parser.error);
	c->flags |= CLIENT_CLOSE_AFTER_REPLY | CLIENT_LINGER;
	c->qpos = c->in.len;
}

/*
 * Runs the client's complete commands.  In batch mode they join the open
 * transaction and the first non-OK storage code is returned for the caller
 * to abort the batch; in solo mode each command commits on its own.
 */
static int
process_client(struct client *c, int solo)
{
	struct resp_parser	*p = &c->parser;
	enum resp_status	 st;
	size_t			 used;
	int			 r;

	c->flags &= ~CLIENT_MORE;
	while (c->qpos < c->in.len &&
	    !(c->flags & (CLIENT_CLOSE_AFTER_REPLY | CLIENT_CLOSE_ASAP))) {
		if ((!solo && batch_ncmds >= batch_budget) ||
		    client_held(c) > OUT_SOFT_LIMIT) {
			c->flags |= CLIENT_MORE;
			break;
		}
		st = resp_parse(p, c->in.data + c->qpos, c->in.len - c->qpos,
		    &used);
		if (st == RESP_INCOMPLETE) {
			c->qpos += used;
			if (used == 0)
				break;
			continue;
		}
		if (st == RESP_ERROR) {
			protocol_error(c);
			break;
		}
		if (solo)
			r = run_solo(c, p->argc, p->argv, p->argvlen);
		else if ((r = cmd_execute(c, p->argc, p->argv,
		    p->argvlen)) != STORE_OK && r != CMD_BLOCKED)
			return r;
		batch_ncmds++;
		if (r == CMD_BLOCKED) {
			block(c);
			break;
		}
		unblock_done(c);
		c->qpos += used;
	}
	return STORE_OK;
}

static void
rewind_batch(struct client *list)
{
	struct client	*c;

	for (c = list; c != NULL; c = c->bnext) {
		c->qpos = c->batch_qpos;
		buf_truncate(&c->out, c->batch_outlen);
		multi_restore(c);
		resp_parser_reset(&c->parser);
		c->flags &= ~(CLIENT_CLOSE_AFTER_REPLY | CLIENT_LINGER |
		    CLIENT_MORE | CLIENT_BLOCKED);
	}
}

/* The replies so far wait for the log sync with this ticket (flush.h). */
static void
hold(struct client *c, uint64_t ticket)
{
	if (!(c->flags & CLIENT_HELD)) {
		if (server.held == NULL)
			server.held_since = mono_ms();
		c->flags |= CLIENT_HELD;
		c->hnext = server.held;
		server.held = c;
	}
	c->hold_ticket = ticket;
	c->hold_off = c->out.len;
	if (ticket > held_want)
		held_want = ticket;
}

/*
 * The batch is over: release its replies, or hold them until the log sync
 * with this ticket (0: none needed), and decide what comes next.
 */
static void
finish_client(struct client *c, uint64_t ticket)
{
	buf_consume(&c->in, c->qpos);
	c->qpos = 0;
	/* A big request served: its memory goes back (Redis resizes its
	   query buffers likewise), or every client would keep its largest. */
	if (c->in.cap > IN_KEEP_BYTES) {
		buf_shrink(&c->in);
		trim_due = 1;
	}
	multi_settle(c);
	if (ticket != 0 && !flush_covered(ticket))
		hold(c, ticket);
	else {
		unhold(c);
		c->committed = c->out.len;
	}
	if (c->flags & CLIENT_CLOSE_ASAP || client_write(c) == -1) {
		free_client(c);
		return;
	}
	if (client_held(c) > OUT_SOFT_LIMIT)
		c->flags |= CLIENT_THROTTLED;
	if ((c->flags & CLIENT_MORE) && !(c->flags & CLIENT_THROTTLED))
		pend(c);
	after_write(c);
}

/*
 * With nothing else to do and the flusher asleep, waking it would only add
 * two context switches to this batch's wait (one client, or a quiet time):
 * the worker syncs the log itself.  Not while many other clients of this
 * worker are active, though they have nothing pending at this instant:
 * they are waiting for their replies and come back during the sync, which
 * the worker would spend blocked instead of running their next batch.
 * With 50 connections under durability fsync a third to half of the syncs
 * were workers' own; with this limit the flusher does them all and the
 * rate went up 4-10 % (paired runs, bench/results/2026-12-07m-before-after.md).
 * With two or three clients the worker's own sync is still the faster
 * (7.2k against 5.0k/s for two): the flusher's wake-up costs more than
 * the little there is to do meanwhile.
 */
static int
sync_here(void)
{
	roll_active(mono_ms());
	return server.pending == NULL &&
	    MAX(active_now, active_before) <= SYNC_HERE_ACTIVE && flush_idle();
}

/*
 * A log sync failed: the held replies cannot be sent, nor taken back.  On
 * a full disk that repeats for every batch: one line a second says it.
 */
static void
drop_held(void)
{
	static uint64_t	 last_ms;
	static int	 unsaid;
	struct client	*c;
	uint64_t	 now = mono_ms();
	int		 n = 0;

	while ((c = server.held) != NULL) {
		free_client(c);
		n++;
	}
	unsaid += n;
	if (last_ms != 0 && now - last_ms < 1000)
		return;
	log_warnx("log sync failed (%s): closed %d client(s) whose last "
	    "writes may not be durable%s", store_errstr(server.store), unsaid,
	    last_ms != 0 ? " (since the last such line)" : "");
	last_ms = now;
	unsaid = 0;
}

/*
 * Sends the held replies whose log sync is done.  The worker syncs the
 * log itself when no flusher runs, when the oldest has waited
 * FLUSH_WAIT_MS, or with force (stopping).
 */
static void
release_held(int force)
{
	struct client	*c, **pp;
	int		 r;

	if (server.held == NULL)
		return;
	if (force || !flush_running() ||
	    mono_ms() - server.held_since >= FLUSH_WAIT_MS) {
		if ((r = flush_sync(server.store)) == STORE_PANIC)
			panic();
		if (r != STORE_OK) {
			drop_held();
			return;
		}
		STAT_ADD(worker_syncs, 1);
	}
	for (pp = &server.held; (c = *pp) != NULL;) {
		if (!flush_covered(c->hold_ticket)) {
			pp = &c->hnext;
			continue;
		}
		*pp = c->hnext;
		c->flags &= ~CLIENT_HELD;
		c->committed = c->hold_off;
		if (client_write(c) == -1)
			free_client(c);
		else
			after_write(c);
	}
	if (server.held == NULL)
		held_want = 0;
}

static void
run_batch(void)
{
	struct client	*list = NULL, *c, *next;
	int		 r = STORE_OK, attempt;

	if (server.pending == NULL)
		return;
	/* One client's batch: it may be waiting for this reply to send the
	   next request (wait_events). */
	last_batch_us = server.pending->pnext == NULL ? mono_us() : 0;
	/* The pending clients become this batch. */
	for (c = server.pending; c != NULL; c = next) {
		next = c->pnext;
		c->flags &= ~CLIENT_PENDING;
		c->batch_qpos = c->qpos;
		c->batch_outlen = c->out.len;
		multi_save(c);
		c->bnext = list;
		list = c;
	}
	server.pending = NULL;
	batch_ticket = 0;
	batch_sync_here = 0;
	for (attempt = 0; attempt < BATCH_ATTEMPTS; attempt++) {
		r = STORE_OK;
		batch_ncmds = 0;
		stats_batch_begin();
		for (c = list; c != NULL && r == STORE_OK; c = c->bnext)
			r = process_client(c, 0);
		if (r == STORE_OK && store_in_txn(server.store)) {
			batch_sync_here = server.defer_sync && sync_here();
			if ((r = commit(!batch_sync_here)) == STORE_OK)
				STAT_ADD(commits, 1);
		}
		if (r == STORE_OK) {
			stats_batch_commit();
			after_commit();
			if (attempt == 0 && batch_budget < BATCH_MAX_CMDS)
				batch_budget *= 2;
			break;
		}
		stats_batch_abort();
		store_abort(server.store);
		wake_discard();
		rewind_batch(list);
		if (r == STORE_PANIC)
			panic();
		if (r == STORE_ERR)
			r = store_out_of_locks(server.store);
		if (r != STORE_RETRY)
			break;
		STAT_ADD(retries, 1);
		if (batch_budget > BATCH_MIN_CMDS)
			batch_budget /= 2;
	}
	if (r != STORE_OK) {
		/*
		 * Too many deadlocks (r is still STORE_RETRY: the rewound
		 * commands must run now, nothing would bring them back), or
		 * an error: one command at a time.
		 */
		for (c = list; c != NULL; c = c->bnext)
			process_client(c, 1);
	}
	/* Replies that show what others committed wait for it too. */
	if (batch_ticket == 0 && server.defer_sync)
		batch_ticket = flush_seen();
	for (c = list; c != NULL; c = next) {
		next = c->bnext;
		c->bnext = NULL;
		finish_client(c, batch_ticket);
	}
	store_trim(server.store);
	if (server.held != NULL) {
		flush_want(held_want);
		release_held(batch_sync_here);
	}
}

/*
 * Whether a client with replies waiting for it is reading them: what the
 * kernel still holds for it (sent or not, unacknowledged) changed since
 * the last look.  Our own writes stop for as long as the socket's large
 * send buffer stays full, even while a slow client drains it.
 */
static int
reading_replies(struct client *c, uint64_t now)
{
	int	queued;

	if (ioctl(c->fd, SIOCOUTQ, &queued) == -1 ||
	    (size_t)queued == c->outq)
		return 0;
	c->outq = (size_t)queued;
	c->last_out_ms = now;
	return 1;
}

static void
close_idle_clients(void)
{
	struct client	*c, *next;
	uint64_t	 now = mono_ms(), limit;

	if (server.cfg->timeout == 0)
		return;
	limit = (uint64_t)server.cfg->timeout * 1000;
	for (c = server.clients; c != NULL; c = next) {
		next = c->next;
		/* Replies waiting for the client to read them do not keep
		   it: only their progress does (a client that stopped
		   reading stayed for ever). */
		if (now - c->last_ms > limit && (client_unsent(c) == 0 ||
		    (now - c->last_out_ms > limit &&
		    !reading_replies(c, now))) &&
		    !(c->flags & (CLIENT_PENDING | CLIENT_ARMED |
		    CLIENT_BLOCKED | CLIENT_HELD))) {
			log_info("client %s idle for %d s, closing", c->addr,
			    server.cfg->timeout);
			free_client(c);
		}
	}
}

static void
stop_listening(void)
{
	if (server.listen_fd == -1)
		return;
	if (accepting)
		ev_set(server.ev, server.listen_fd, 0, NULL, NULL);
	accepting = 0;
	close(server.listen_fd);
	server.listen_fd = -1;
}

/*
 * After a reload (SIGQUIT from the master) the new workers take the new
 * connections; this one keeps serving the clients it has, with the old
 * configuration, until they leave or RETIRE_MS have passed.
 */
static void
start_retiring(void)
{
	retire = 0;
	if (retire_deadline != 0)
		return;
	retire_deadline = mono_ms() + RETIRE_MS;
	my_stats->is_worker = 0;
	stop_listening();
	log_info("retiring: serving %d client(s) until they leave, %d s at "
	    "most", server.nclients, RETIRE_MS / 1000);
}

/* Stop: no new connections or commands; send what is owed, then close. */
static void
drain_and_close(void)
{
	struct client	*c, *next;
	uint64_t	 deadline;
	int		 owed;

	stop_listening();
	while (server.pending != NULL)
		run_batch();
	release_held(1);
	deadline = mono_ms() + DRAIN_MS;
	do {
		owed = 0;
		for (c = server.clients; c != NULL; c = c->next) {
			update_events(c);
			owed |= client_unsent(c) > 0;
		}
		if (owed)
			ev_poll(server.ev, 50);
	} while (owed && mono_ms() < deadline);
	for (c = server.clients; c != NULL; c = next) {
		next = c->next;
		free_client(c);
	}
}

/*
 * Berkeley DB cannot recover from a full disk without room to write, so
 * enqueues stop short of it (min_free_disk_mb); everything that frees
 * space goes on.  Checked every CRON_MS: far less than the reserve can be
 * written in that time.
 */
void
check_disk(void)
{
	struct statvfs	sv;
	uint64_t	freemb, floor_mb = config_disk_floor_mb(server.cfg);
	int		low;

	if (floor_mb == 0 || statvfs(server.cfg->data_dir, &sv) == -1) {
		server.disk_low = 0;
		return;
	}
	freemb = (uint64_t)sv.f_bavail * sv.f_frsize / (1024 * 1024);
	low = freemb < floor_mb;
	if (low && !server.disk_low)
		log_warnx("%llu MiB free in %s, below %llu (min_free_disk_mb "
		    "%d, and room for a checkpoint of the cache): enqueues "
		    "are refused until space is freed",
		    (unsigned long long)freemb, server.cfg->data_dir,
		    (unsigned long long)floor_mb, server.cfg->min_free_disk_mb);
	else if (!low && server.disk_low)
		log_notice("%llu MiB free in %s again: enqueues accepted",
		    (unsigned long long)freemb, server.cfg->data_dir);
	server.disk_low = low;
}

static int
poll_timeout(void)
{
	uint64_t	now, waited;

	if (server.pending != NULL)
		return 0;
	if (server.held != NULL) {
		waited = mono_ms() - server.held_since;
		return waited >= FLUSH_WAIT_MS ? 0 :
		    (int)(FLUSH_WAIT_MS - waited);
	}
	if (next_block_check == UINT64_MAX)
		return CRON_MS;
	now = mono_ms();
	if (next_block_check <= now)
		return 0;
	return next_block_check - now < CRON_MS ?
	    (int)(next_block_check - now) : CRON_MS;
}

/*
 * Right after the batch of a lone client that waits for each reply (one
 * producer sending SADDs one by one), its next request comes within tens
 * of microseconds.  Sleeping in epoll_wait meanwhile costs more than that
 * on a virtual machine, whose idle vCPU halts and takes as long again to
 * wake: so the worker looks without sleeping for SPIN_US before it blocks
 * (16k -> 25k requests/s for one connection).  Not after a batch of many
 * clients: with the CPUs busy, spinning would take time from them.
 */
static int
wait_events(void)
{
	int	n, timeout = poll_timeout();

	if (timeout != 0 && last_batch_us != 0) {
		while (mono_us() - last_batch_us < SPIN_US)
			if ((n = ev_poll(server.ev, 0)) != 0)
				return n;
		last_batch_us = 0;
	}
	return ev_poll(server.ev, timeout);
}

static int
max_fds(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return 65536;
	return rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur;
}

int
worker_main(const struct config *cfg, int slot, int listen_fd)
{
	char		err[512];
	uint64_t	next_cron = 0, next_disk = 0;
	int		wfd;

	log_setproc("worker %d", slot);
	child_signals_setup(on_signal);
	memset(&server, 0, sizeof(server));
	server.cfg = cfg;
	server.slot = slot;
	server.listen_fd = listen_fd;
	server.start_ms = now_ms();
	server.next_id = server.start_ms;	/* ids differ across restarts */
	stats_attach(slot);
	stats_reset_gauges(my_stats);
	my_stats->pid = getpid();
	my_stats->started_ms = server.start_ms;
	if (store_open(cfg, slot, &server.store, err, sizeof(err)) == -1) {
		log_warnx("cannot open the environment: %s", err);
		return 1;
	}
	my_stats->is_worker = 1;
	store_set_dead_hook(server.store, on_dead_letter);
	store_set_wheel_hook(server.store, stats_wheel_moves);
	if (cfg->durability == DURABILITY_FSYNC) {
		store_defer_sync(server.store);
		server.defer_sync = 1;
	}
	if ((server.ev = ev_create(max_fds())) == NULL) {
		log_warn("event loop");
		store_close(server.store);
		return 1;
	}
	count_live_workers();
	balance_accept();
	if ((wfd = wake_open(slot)) == -1 ||
	    ev_set(server.ev, wfd, EV_READ, on_wake, NULL) == -1)
		log_warn("wake socket: blocked clients of this worker are "
		    "woken by their timers only");
	log_info("ready");
	while (!server.stop) {
		if (wait_events() == -1)
			fatal("epoll_wait");
		release_held(0);
		if (mono_ms() >= next_block_check)
			check_blocked();
		run_batch();
		if (blocked_changed)
			check_blocked();
		if (reopen_log) {
			reopen_log = 0;
			if (log_reopen() == -1)
				log_warn("reopen log");
		}
		if (retire)
			start_retiring();
		if (retire_deadline != 0 && (server.nclients == 0 ||
		    mono_ms() >= retire_deadline))
			break;
		balance_accept();
		if (mono_ms() >= next_disk) {
			check_disk();
			next_disk = mono_ms() + CRON_MS;
		}
		if (mono_ms() >= next_cron) {
			count_live_workers();
			close_idle_clients();
			close_lingering();
			give_memory_back();
			next_cron = mono_ms() + 1000;
		}
	}
	log_info("stopping");
	drain_and_close();
	wake_close();
	store_close(server.store);
	ev_free(server.ev);
	my_stats->pid = 0;
	return 0;
}

void
worker_close_after_reply(struct client *c)
{
	c->flags |= CLIENT_CLOSE_AFTER_REPLY;
}
