#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "flush.h"
#include "housekeeper.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#define MAX_CHILDREN	(STATS_SLOTS - 1)
#define FAILCHK_MS	400	/* failchk that takes longer: recovery
				   (chaos.py: at most 83 ms when it
				   worked, and a hang costs all of it) */
#define RECOVERY_MS	(15 * 60 * 1000)
#define STOP_MS		10000	/* SIGTERM, then SIGKILL */
#define QUICK_DEATH_MS	2000	/* a death this soon after start counts */
#define MAX_BACKOFF_MS	30000
#define FD_RESERVE	32	/* a worker's own descriptors, besides clients */

enum kind { K_NONE, K_WORKER, K_HOUSEKEEPER, K_FLUSHER };
static const char *const kind_names[] = { "-", "worker", "housekeeper",
    "flusher" };

struct child {
	enum kind	kind;
	pid_t		pid;		/* 0: waiting to be (re)started */
	int		stopping;	/* told to stop: not replaced */
	uint64_t	started;	/* mono ms */
	uint64_t	respawn_at;	/* mono ms, when pid == 0 */
	int		quick_deaths;
};

static struct config		*cfg;
static int			 debug;		/* -d, kept across reloads */
static struct child		 children[MAX_CHILDREN];
static int			 listen_fd = -1;
static int			 ready_fd = -1;	/* daemonizing parent's pipe */
static pid_t			 failchk_pid;
static uint64_t			 failchk_deadline;
static int			 failchk_again;	/* a death during failchk */
static volatile sig_atomic_t	 got_stop, got_reload, got_chld, got_usr1;
static sigset_t			 waitmask;	/* the signals ppoll() lets in */

static void
on_signal(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		got_stop = 1;
		break;
	case SIGHUP:
		got_reload = 1;
		break;
	case SIGUSR1:
		got_usr1 = 1;
		break;
	case SIGCHLD:
		got_chld = 1;
		break;
	}
}

static void
signals_setup(void)
{
	struct sigaction	sa;
	sigset_t		block;
	int			sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1,
				    SIGCHLD };
	size_t			i;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigemptyset(&block);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&block, sigs[i]);
	}
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* Blocked except inside ppoll(): no signal is lost between checks. */
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);
	sigdelset(&waitmask, SIGUSR1);
	sigdelset(&waitmask, SIGCHLD);
}

/*
 * The default signal state for a child, before it installs its own.  A
 * child whose master is gone (kill -9) is told to stop: no process may go
 * on using the environment unsupervised.
 */
static void
child_signals(void)
{
	sigset_t	none;

	signal(SIGCHLD, SIG_DFL);
	/* Only the master says when the start is done. */
	if (ready_fd != -1)
		close(ready_fd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
	    getppid() != stats->master_pid)
		_exit(1);
}

/*
 * One dqd per data directory.  The lock is held through a descriptor every
 * child inherits, so it lasts until the last process of this dqd is gone:
 * a new master never runs recovery under the feet of an old worker.
 */
static int
lock_data_dir(void)
{
	char	path[4096];
	int	fd, i;

	if (mkdir(cfg->data_dir, 0700) == -1 && errno != EEXIST) {
		log_warn("mkdir %s", cfg->data_dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/dqd.lock", cfg->data_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_warn("%s", path);
		return -1;
	}
	for (i = 0; flock(fd, LOCK_EX | LOCK_NB) == -1; i++) {
		if (errno != EWOULDBLOCK || i == 100) {
			log_warnx("%s is in use by another dqd (or by its "
			    "processes still stopping)", cfg->data_dir);
			close(fd);
			return -1;
		}
		poll(NULL, 0, 100);
	}
	return fd;
}

/* 0: sent or no NOTIFY_SOCKET; -1 with errno. */
static int
sd_notify(const char *msg)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	socklen_t		 len;
	int			 fd, r, e;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	r = sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sun, len);
	e = errno;
	close(fd);
	errno = e;
	return r == -1 ? -1 : 0;
}

/*
 * Written aside and renamed into place: a reader (start-stop-daemon
 * --status, the init script's reload) never sees it empty, as it did
 * between the truncation and the write when a reload rewrote it.
 */
static int
write_pidfile(const char *path)
{
	FILE	*f;
	char	 tmp[4096];

	if (path == NULL)
		return 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		log_warnx("pidfile %s: name too long", path);
		return -1;
	}
	if ((f = fopen(tmp, "w")) == NULL) {
		log_warn("pidfile %s", tmp);
		return -1;
	}
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) == EOF || rename(tmp, path) == -1) {
		log_warn("pidfile %s", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int
bind_listen(void)
{
	struct addrinfo	 hints, *res, *ai;
	char		 port[16];
	int		 fd = -1, one = 1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", cfg->port);
	if ((e = getaddrinfo(cfg->bind, port, &hints, &res)) != 0) {
		log_warnx("bind %s: %s", cfg->bind, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 511) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	freeaddrinfo(res);
	if (fd == -1)
		log_warn("cannot listen on %s:%d", cfg->bind, cfg->port);
	return fd;
}

/*
 * Waits for pid until deadline; returns its status, -1 on timeout, or
 * WAIT_STOPPED at a SIGTERM or SIGINT: a recovery that hangs on a broken
 * environment must not make the master deaf to a stop for 15 minutes.
 */
#define WAIT_STOPPED	(-2)

static int
wait_deadline(pid_t pid, uint64_t ms)
{
	struct timespec	ts = { 0, 5 * 1000000 };
	uint64_t	end = mono_ms() + ms;
	int		status;
	pid_t		r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r == -1 && errno != EINTR)
			return -1;
		if (got_stop)
			return WAIT_STOPPED;
		if (mono_ms() >= end)
			return -1;
		(void)ppoll(NULL, 0, &ts, &waitmask);
	}
}

static int
run_recovery(void)
{
	char	err[512];
	pid_t	pid;
	int	status;

	log_info("running recovery in %s", cfg->data_dir);
	if ((pid = fork()) == -1) {
		log_warn("fork");
		return -1;
	}
	if (pid == 0) {
		child_signals();
		log_setproc("recovery");
		if (store_recover(cfg, err, sizeof(err)) == -1) {
			log_warnx("recovery failed: %s", err);
			_exit(1);
		}
		_exit(0);
	}
	status = wait_deadline(pid, RECOVERY_MS);
	if (status == -1 || status == WAIT_STOPPED) {
		/* Safe at any point: the next start runs it again. */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (status == WAIT_STOPPED) {
			log_warnx("recovery interrupted by a stop");
			return WAIT_STOPPED;
		}
		log_warnx("recovery took longer than %d s", RECOVERY_MS / 1000);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	log_info("recovery done");
	return 0;
}

static int
free_slot(void)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind == K_NONE)
			return i;
	return -1;
}

static void
spawn(int slot)
{
	struct child	*ch = &children[slot];
	pid_t		 pid;

	stats_slot_used(slot);		/* before the child can use it */
	__atomic_store_n(&stats->slot[slot].retire, 0, __ATOMIC_SEQ_CST);
	if ((pid = fork()) == -1) {
		log_warn("fork");
		ch->respawn_at = mono_ms() + 1000;
		return;
	}
	if (pid == 0) {
		child_signals();
		if (ch->kind == K_HOUSEKEEPER)
			_exit(housekeeper_main(cfg, slot));
		if (ch->kind == K_FLUSHER)
			_exit(flusher_main(cfg, slot));
		_exit(worker_main(cfg, slot, listen_fd));
	}
	ch->pid = pid;
	ch->started = mono_ms();
	log_info("%s %d started, pid %d", kind_names[ch->kind], slot,
	    (int)pid);
}

static void
add_child(enum kind kind)
{
	int	slot;

	if ((slot = free_slot()) == -1) {
		log_warnx("no slot for a new process");
		return;
	}
	memset(&children[slot], 0, sizeof(children[slot]));
	children[slot].kind = kind;
	spawn(slot);
}

static void
start_pool(void)
{
	int	i;

	add_child(K_HOUSEKEEPER);
	if (cfg->durability == DURABILITY_FSYNC)
		add_child(K_FLUSHER);
	for (i = 0; i < cfg->workers; i++)
		add_child(K_WORKER);
	stats->nworkers = cfg->workers;
}

/* A dead child's share of the shared figures goes with it. */
static void
forget_stats(int slot)
{
	struct stats_slot	*s = &stats->slot[slot];

	__atomic_sub_fetch(&stats->clients, (int64_t)s->clients,
	    __ATOMIC_RELAXED);
	stats_reset_gauges(s);
}

static void
kill_all(void)
{
	int	i;

	if (failchk_pid != 0) {
		kill(failchk_pid, SIGKILL);
		waitpid(failchk_pid, NULL, 0);
		failchk_pid = 0;
	}
	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind != K_NONE && children[i].pid != 0)
			kill(children[i].pid, SIGKILL);
	for (i = 0; i < MAX_CHILDREN; i++) {
		if (children[i].kind == K_NONE)
			continue;
		if (children[i].pid != 0)
			waitpid(children[i].pid, NULL, 0);
		forget_stats(i);
		children[i].kind = K_NONE;
	}
	stats->clients = 0;
	stats->flush.pid = 0;
}

/* PostgreSQL's answer to a backend that died inside shared state. */
static void
restart_pool(const char *why)
{
	int	tries, r;

	log_warnx("restarting every process after recovery: %s", why);
	stats->pool_restarts++;
	kill_all();
	for (tries = 0; (r = run_recovery()) != 0; tries++) {
		if (r == WAIT_STOPPED)
			return;		/* the main loop stops */
		if (tries == 2) {
			if (cfg->pidfile != NULL)
				unlink(cfg->pidfile);
			fatalx("recovery failed three times; giving up");
		}
		sleep(1 << tries);
	}
	failchk_again = 0;
	start_pool();
}

static void
start_failchk(void)
{
	pid_t	pid;

	if (failchk_pid != 0) {
		failchk_again = 1;
		return;
	}
	if ((pid = fork()) == -1) {
		restart_pool("cannot fork failchk");
		return;
	}
	if (pid == 0) {
		child_signals();
		log_setproc("failchk");
		/* No close: a clean exit must not wait on a stuck region. */
		_exit(store_failchk(cfg) == 0 ? 0 : 1);
	}
	failchk_pid = pid;
	failchk_deadline = mono_ms() + FAILCHK_MS;
	failchk_again = 0;
}

static void
schedule_respawn(struct child *ch)
{
	uint64_t	now = mono_ms(), delay = 0;

	if (now - ch->started < QUICK_DEATH_MS) {
		ch->quick_deaths++;
		delay = 100ULL << (ch->quick_deaths > 9 ? 9 :
		    ch->quick_deaths);
		if (delay > MAX_BACKOFF_MS)
			delay = MAX_BACKOFF_MS;
		log_warnx("it died %d times in a row soon after starting; "
		    "next start in %llu ms", ch->quick_deaths,
		    (unsigned long long)delay);
	} else
		ch->quick_deaths = 0;
	ch->respawn_at = now + delay;
}

static void
describe_exit(const char *what, int slot, pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		log_warnx("%s %d (pid %d) killed by signal %d", what, slot,
		    (int)pid, WTERMSIG(status));
	else
		log_warnx("%s %d (pid %d) exited with status %d", what, slot,
		    (int)pid, WEXITSTATUS(status));
}

static void
child_died(int slot, pid_t pid, int status)
{
	struct child	*ch = &children[slot];
	const char	*what = kind_names[ch->kind];
	pid_t		 fpid = pid;

	forget_stats(slot);
	/* The workers stop counting on it (flush.h). */
	__atomic_compare_exchange_n(&stats->flush.pid, &fpid, 0, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	ch->pid = 0;
	/* A stop signal to the whole group (pkill, killall) reaches the
	   children before the master tells them: they stopped, no crash. */
	if (got_stop)
		ch->stopping = 1;
	if (ch->stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		log_info("%s %d (pid %d) stopped", what, slot, (int)pid);
		ch->kind = K_NONE;
		return;
	}
	describe_exit(what, slot, pid, status);
	if (ch->stopping) {
		/* It was leaving anyway; what it left behind still needs
		   failchk, but it is not replaced. */
		ch->kind = K_NONE;
		start_failchk();
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_PANIC) {
		restart_pool("a process found the environment broken");
		return;
	}
	stats->worker_restarts++;
	schedule_respawn(ch);
	start_failchk();
}

static void
failchk_done(int status)
{
	failchk_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		restart_pool("failchk could not repair the environment");
		return;
	}
	log_info("failchk: the environment is consistent");
	if (failchk_again)
		start_failchk();
}

static int
slot_of(pid_t pid)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind != K_NONE && children[i].pid == pid)
			return i;
	return -1;
}

static void
reap(void)
{
	pid_t	pid;
	int	status, slot;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == failchk_pid)
			failchk_done(status);
		else if ((slot = slot_of(pid)) != -1)
			child_died(slot, pid, status);
	}
}

/* Children waiting for failchk and their back-off start again. */
static void
respawn_due(void)
{
	uint64_t	now = mono_ms();
	int		i;

	if (failchk_pid != 0)
		return;
	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind != K_NONE && children[i].pid == 0 &&
		    !children[i].stopping && now >= children[i].respawn_at)
			spawn(i);
}

static uint64_t
next_respawn(void)
{
	uint64_t	next = UINT64_MAX;
	int		i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind != K_NONE && children[i].pid == 0 &&
		    children[i].respawn_at < next)
			next = children[i].respawn_at;
	return next;
}

static void
signal_all(int sig, enum kind kind)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind == kind && children[i].pid != 0) {
			children[i].stopping = 1;
			kill(children[i].pid, sig);
		}
}

/* SIGUSR1: every process reopens its log file. */
static void
forward(int sig)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind != K_NONE && children[i].pid != 0)
			kill(children[i].pid, sig);
}

static int
alive(enum kind kind)
{
	int	i, n = 0;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind == kind && children[i].pid != 0)
			n++;
	return n;
}

/* Children waiting to be restarted are not restarted after all. */
static void
forget_waiting(void)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind != K_NONE && children[i].pid == 0)
			children[i].kind = K_NONE;
}

/* SIGTERM to one kind, SIGKILL after STOP_MS; 1 if any was killed. */
static int
stop_kind(enum kind kind)
{
	uint64_t	end = mono_ms() + STOP_MS;
	int		killed = 0;

	forget_waiting();
	signal_all(SIGTERM, kind);
	while (alive(kind) > 0 && mono_ms() < end) {
		poll(NULL, 0, 10);
		reap();
	}
	if (alive(kind) > 0) {
		log_warnx("%d process(es) did not stop in %d s: killing them",
		    alive(kind), STOP_MS / 1000);
		signal_all(SIGKILL, kind);
		killed = 1;
		while (alive(kind) > 0) {
			poll(NULL, 0, 10);
			reap();
		}
	}
	return killed;
}

static int
shutdown_all(void)
{
	int	killed;

	log_notice("stopping");
	/* start-stop-daemon --notify-await removes its socket once READY
	   came: nobody listens any more, which is no fault. */
	if (sd_notify("STOPPING=1") == -1)
		log_debug("sd_notify: %s", strerror(errno));
	if (failchk_pid != 0) {
		kill(failchk_pid, SIGKILL);
		waitpid(failchk_pid, NULL, 0);
		failchk_pid = 0;
	}
	/* Workers first, so that the housekeeper's last checkpoint comes
	   after the last write. */
	killed = stop_kind(K_WORKER);
	killed |= stop_kind(K_FLUSHER);
	killed |= stop_kind(K_HOUSEKEEPER);
	close(listen_fd);
	if (cfg->pidfile != NULL)
		unlink(cfg->pidfile);
	if (killed)
		log_warnx("stopped by force: the next start runs recovery");
	else
		log_notice("stopped");
	return 0;
}

static int
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * One worker may hold every client: past what RLIMIT_NOFILE leaves once its
 * own descriptors (databases, log, sockets) are open, accept(2) would fail
 * with EMFILE instead of refusing the client with Redis' error.  So
 * maxclients is lowered to fit, as Redis does.
 */
static void
fit_maxclients(struct config *c)
{
	struct rlimit	rl;
	rlim_t		fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY)
		return;
	fit = rl.rlim_cur > FD_RESERVE * 2 ? rl.rlim_cur - FD_RESERVE :
	    rl.rlim_cur / 2;
	if (fit < 1)
		fit = 1;
	if ((rlim_t)c->maxclients <= fit)
		return;
	log_warnx("maxclients %d needs %d open files, but the limit is %llu: "
	    "maxclients is lowered to %llu (raise the limit with ulimit -n, "
	    "or LimitNOFILE= under systemd)", c->maxclients,
	    c->maxclients + FD_RESERVE, (unsigned long long)rl.rlim_cur,
	    (unsigned long long)fit);
	c->maxclients = (int)fit;
}

/*
 * An empty file is the defaults at the start, but on a reload it is far
 * more likely a file caught between its truncation and its writing (an
 * editor or a script that rewrites it in place): applied, it dropped the
 * pidfile and the log file.  Refused, as nginx refuses a file without its
 * required blocks.
 */
static int
reload_empty(const char *path, char *err, size_t errlen)
{
	struct stat	st;

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
		snprintf(err, errlen, "%s is empty (being written?); to run on "
		    "the defaults, restart or leave a comment in it", path);
		return -1;
	}
	return 0;
}

/* The file's configuration, checked; NULL (logged) if it is refused. */
static struct config *
reload_load(void)
{
	struct config	*n;
	char		 err[1024];

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		log_warn("reload");
		return NULL;
	}
	config_defaults(n);
	if ((cfg->path != NULL && (reload_empty(cfg->path, err,
	    sizeof(err)) == -1 || config_load(n, cfg->path, err,
	    sizeof(err)) == -1)) || config_check(n, err, sizeof(err)) == -1) {
		log_warnx("reload failed, keeping the running configuration: "
		    "%s", err);
		config_free(n);
		free(n);
		return NULL;
	}
	return n;
}

static int
replace_str(char **dst, const char *src)
{
	char	*dup;

	if ((dup = strdup(src)) == NULL)
		return -1;
	free(*dst);
	*dst = dup;
	return 0;
}

/*
 * What the running environment and socket were made with stays, and the
 * rest must still be allowed with it: a file that drops requirepass while
 * the socket stays on a public address is refused.
 */
static int
keep_running(struct config *n)
{
	char	err[1024];

	if (!same_str(n->bind, cfg->bind) || n->port != cfg->port ||
	    !same_str(n->data_dir, cfg->data_dir) ||
	    n->cache_size_mb != cfg->cache_size_mb ||
	    !same_str(n->metrics_bind, cfg->metrics_bind) ||
	    n->metrics_port != cfg->metrics_port)
		log_warnx("reload: bind, port, data_dir, cache_size_mb and "
		    "metrics take effect only after a restart");
	if (replace_str(&n->bind, cfg->bind) == -1 ||
	    replace_str(&n->data_dir, cfg->data_dir) == -1 ||
	    replace_str(&n->metrics_bind, cfg->metrics_bind) == -1) {
		log_warnx("reload: out of memory");
		return -1;
	}
	n->port = cfg->port;
	n->cache_size_mb = cfg->cache_size_mb;
	n->metrics_port = cfg->metrics_port;
	/* Not the file's lines: those values did not come from it. */
	dq_free(n->bind_origin);
	dq_free(n->metrics_port_origin);
	n->bind_origin = n->metrics_port_origin = NULL;
	if (config_check(n, err, sizeof(err)) == -1) {
		log_warnx("reload failed, keeping the running configuration: "
		    "dqd stays on %s:%d until a restart: %s", cfg->bind,
		    cfg->port, err);
		return -1;
	}
	return 0;
}

/*
 * The new pidfile and log file, before anything else changes: if either
 * cannot be written the reload is refused and the old ones stay in use.
 */
static int
reload_files(struct config *n)
{
	int	moved = !same_str(n->pidfile, cfg->pidfile);

	if (debug) {
		free(n->log_file);
		n->log_file = NULL;
		n->log_level = LOG_LEVEL_DEBUG;
	}
	if (write_pidfile(n->pidfile) == -1) {
		if (moved && n->pidfile != NULL)
			unlink(n->pidfile);
		log_warnx("reload failed, keeping the running configuration: "
		    "cannot write the pidfile %s", n->pidfile);
		return -1;
	}
	if (log_init(n->log_file, n->log_level, "dqd") == -1) {
		log_warn("reload failed, keeping the running configuration: "
		    "log file %s", n->log_file);
		if (moved && n->pidfile != NULL)
			unlink(n->pidfile);
		return -1;
	}
	return 0;
}

/*
 * The old workers stop accepting.  The flag in shared memory is read
 * before every accept, so it holds even before a worker handles the
 * signal: a client that connects once the reload shows (the old pidfile
 * gone) waits in the backlog for a worker of the new configuration.
 */
static void
retire_workers(void)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].kind == K_WORKER && children[i].pid != 0)
			__atomic_store_n(&stats->slot[i].retire, 1,
			    __ATOMIC_SEQ_CST);
	signal_all(SIGQUIT, K_WORKER);
}

/* SIGHUP: a new configuration and a new generation of children. */
static void
reload(void)
{
	struct config	*n;

	log_notice("reloading %s", cfg->path ? cfg->path : "(defaults)");
	if ((n = reload_load()) == NULL)
		return;
	if (keep_running(n) == -1 || reload_files(n) == -1) {
		config_free(n);
		free(n);
		return;
	}
	fit_maxclients(n);
	forget_waiting();
	/* Old workers keep their clients for a while (worker.c). */
	retire_workers();
	if (!same_str(n->pidfile, cfg->pidfile) && cfg->pidfile != NULL)
		unlink(cfg->pidfile);
	signal_all(SIGTERM, K_HOUSEKEEPER);
	signal_all(SIGTERM, K_FLUSHER);
	config_free(cfg);
	free(cfg);
	cfg = n;
	start_pool();
	log_notice("reloaded");
}

static int
poll_timeout(void)
{
	uint64_t	now = mono_ms(), next = now + 500;

	if (failchk_pid != 0 && failchk_deadline < next)
		next = failchk_deadline;
	if (next_respawn() < next)
		next = next_respawn();
	return next > now ? (int)(next - now) : 0;
}

/*
 * A daemon's start is over: stdio leaves the terminal it was started from
 * (before the pool starts, so that no child keeps it), and once the pool
 * is up its parent is told to exit 0 (dqd.c).
 */
static void
detach_stdio(void)
{
	int	fd;

	log_stderr_too(0);	/* from now on, the log only */
	if (ready_fd == -1)
		return;
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

static void
tell_ready(void)
{
	if (sd_notify("READY=1") == -1)
		log_warn("sd_notify");
	if (ready_fd == -1)
		return;
	if (write(ready_fd, "", 1) == -1)
		log_warn("telling the parent dqd is ready");
	close(ready_fd);
	ready_fd = -1;
}

int
master_main(struct config *c, int dbg, int rfd)
{
	struct pollfd	pfd[METRICS_CONNS + 1];
	struct timespec	ts;
	int		t, npfd;

	cfg = c;
	debug = dbg;
	ready_fd = rfd;
	log_setproc("master");
	signals_setup();
	if (stats_create() == -1)
		fatal("shared memory");
	stats->master_pid = getpid();
	stats->started_ms = now_ms();
	if (lock_data_dir() == -1) {
		config_free(cfg);
		free(cfg);
		return 1;
	}
	switch (run_recovery()) {
	case 0:
		break;
	case WAIT_STOPPED:
		config_free(cfg);
		free(cfg);
		return 0;
	default:
		fatalx("cannot open the environment in %s", cfg->data_dir);
	}
	if (write_pidfile(cfg->pidfile) == -1)
		return 1;
	if ((listen_fd = bind_listen()) == -1) {
		if (cfg->pidfile != NULL)
			unlink(cfg->pidfile);
		config_free(cfg);
		free(cfg);
		return 1;
	}
	if (metrics_open(cfg) == -1)
		log_warnx("running without the metrics endpoint");
	fit_maxclients(cfg);
	detach_stdio();
	start_pool();
	log_notice("ready to accept connections on %s:%d (%d worker%s, "
	    "durability %s)", cfg->bind, cfg->port, cfg->workers,
	    cfg->workers == 1 ? "" : "s",
	    config_durability_name(cfg->durability));
	tell_ready();
	for (;;) {
		t = poll_timeout();
		ts.tv_sec = t / 1000;
		ts.tv_nsec = (long)(t % 1000) * 1000000;
		npfd = metrics_pollfds(pfd, METRICS_CONNS + 1);
		if (ppoll(npfd ? pfd : NULL, npfd, &ts, &waitmask) > 0)
			metrics_handle(pfd, npfd);
		got_chld = 0;
		reap();
		if (failchk_pid != 0 && mono_ms() >= failchk_deadline) {
			kill(failchk_pid, SIGKILL);
			waitpid(failchk_pid, NULL, 0);
			failchk_pid = 0;
			restart_pool("failchk did not finish in time");
		}
		if (got_stop) {
			metrics_close();
			shutdown_all();
			config_free(cfg);
			free(cfg);
			return 0;
		}
		if (got_reload) {
			got_reload = 0;
			reload();
		}
		if (got_usr1) {
			got_usr1 = 0;
			if (log_reopen() == -1)
				log_warn("reopen log");
			forward(SIGUSR1);
		}
		respawn_due();
	}
}
