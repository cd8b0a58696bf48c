#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"
#include "util.h"

#define REQ_MAX		4096
#define CONN_MS		5000	/* a scrape that takes longer is dropped */

struct mconn {
	int		fd;		/* -1: free */
	char		req[REQ_MAX];
	size_t		reqlen;
	struct buf	out;
	size_t		sent;
	uint64_t	deadline;
};

static int		listen_fd = -1;
static struct mconn	conns[METRICS_CONNS];

int
metrics_open(const struct config *cfg)
{
	struct addrinfo	 hints, *res, *ai;
	char		 port[16];
	int		 one = 1, e, i;

	for (i = 0; i < METRICS_CONNS; i++)
		conns[i].fd = -1;
	if (cfg->metrics_port == 0)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", cfg->metrics_port);
	if ((e = getaddrinfo(cfg->metrics_bind, port, &hints, &res)) != 0) {
		log_warnx("metrics bind %s: %s", cfg->metrics_bind,
		    gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		listen_fd = socket(ai->ai_family, ai->ai_socktype |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (listen_fd == -1)
			continue;
		setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (bind(listen_fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(listen_fd, 16) == 0)
			break;
		close(listen_fd);
		listen_fd = -1;
	}
	freeaddrinfo(res);
	if (listen_fd == -1) {
		log_warn("metrics: cannot listen on %s:%d", cfg->metrics_bind,
		    cfg->metrics_port);
		return -1;
	}
	log_info("metrics on http://%s:%d/metrics", cfg->metrics_bind,
	    cfg->metrics_port);
	return 0;
}

static void
conn_close(struct mconn *c)
{
	close(c->fd);
	c->fd = -1;
	buf_free(&c->out);
}

void
metrics_close(void)
{
	int	i;

	for (i = 0; i < METRICS_CONNS; i++)
		if (conns[i].fd != -1)
			conn_close(&conns[i]);
	if (listen_fd != -1)
		close(listen_fd);
	listen_fd = -1;
}

int
metrics_pollfds(struct pollfd *p, int max)
{
	uint64_t	now = mono_ms();
	int		i, n = 0;

	if (listen_fd == -1)
		return 0;
	if (n < max) {
		p[n].fd = listen_fd;
		p[n++].events = POLLIN;
	}
	for (i = 0; i < METRICS_CONNS && n < max; i++) {
		if (conns[i].fd == -1)
			continue;
		if (now >= conns[i].deadline) {
			conn_close(&conns[i]);
			continue;
		}
		p[n].fd = conns[i].fd;
		p[n++].events = conns[i].out.len ? POLLOUT : POLLIN;
	}
	return n;
}

/*
 * A free slot, else the one of the oldest connection still waiting for its
 * request: a scraper sends its request at once, so connections that stay
 * silent must not keep the scrapers out.  -1: every slot is answering.
 */
static int
free_slot(void)
{
	int	i, old = -1;

	for (i = 0; i < METRICS_CONNS; i++) {
		if (conns[i].fd == -1)
			return i;
		if (conns[i].out.len == 0 && (old == -1 ||
		    conns[i].deadline < conns[old].deadline))
			old = i;
	}
	if (old != -1)
		conn_close(&conns[old]);
	return old;
}

static void
accept_conns(void)
{
	int	fd, i;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		if ((i = free_slot()) == -1) {
			close(fd);	/* busy: the scraper tries again */
			continue;
		}
		conns[i].fd = fd;
		conns[i].reqlen = 0;
		conns[i].sent = 0;
		buf_init(&conns[i].out, 0);
		conns[i].deadline = mono_ms() + CONN_MS;
	}
}

/* "/metrics" or "/", with a query or not, then the end of the path. */
static int
metrics_path(const char *p)
{
	size_t	n;

	if (strncmp(p, "/metrics", 8) == 0)
		n = 8;
	else if (*p == '/')
		n = 1;
	else
		return 0;
	return strchr(" ?\r\n", p[n]) != NULL && p[n] != '\0';
}

/* The blank line that ends the request's header is in. */
static int
request_complete(const struct mconn *c)
{
	return strstr(c->req, "\r\n\r\n") != NULL ||
	    strstr(c->req, "\n\n") != NULL;
}

/*
 * GET, and HEAD as HTTP requires of every server (RFC 9110 9.1): the same
 * status and headers, no body.
 */
static void
respond(struct mconn *c)
{
	struct buf	 body;
	const char	*status = "200 OK", *allow = "";
	int		 head, ok = 0;

	buf_init(&body, 0);
	head = strncmp(c->req, "HEAD ", 5) == 0;
	if (!request_complete(c))
		/* The whole request did not fit: say so, not a reset. */
		status = "431 Request Header Fields Too Large";
	else if (!head && strncmp(c->req, "GET ", 4) != 0) {
		status = "405 Method Not Allowed";
		allow = "Allow: GET, HEAD\r\n";	/* RFC 9110 requires it */
	} else if (!metrics_path(c->req + (head ? 5 : 4)))
		status = "404 Not Found";
	else
		ok = 1;
	if (!ok)
		buf_appendf(&body, "%s\n", status);
	else if (metrics_render(&body) == -1) {
		status = "500 Internal Server Error";
		body.len = 0;
	}
	if (buf_appendf(&c->out, "HTTP/1.0 %s\r\n%sContent-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", status, allow, body.len) == -1 ||
	    (!head && buf_append(&c->out, body.data, body.len) == -1))
		c->out.len = 0;
	buf_free(&body);
}

static void
serve(struct mconn *c, short revents)
{
	ssize_t	n;

	if (c->out.len == 0) {
		n = read(c->fd, c->req + c->reqlen, REQ_MAX - 1 - c->reqlen);
		if (n <= 0) {
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				return;
			conn_close(c);
			return;
		}
		c->reqlen += (size_t)n;
		c->req[c->reqlen] = '\0';
		if (!request_complete(c) && c->reqlen < REQ_MAX - 1)
			return;
		respond(c);
		if (c->out.len == 0) {
			conn_close(c);
			return;
		}
	}
	n = write(c->fd, c->out.data + c->sent, c->out.len - c->sent);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (c->sent += (size_t)n) == c->out.len)
		conn_close(c);
}

void
metrics_handle(const struct pollfd *p, int n)
{
	int	i, j;

	for (i = 0; i < n; i++) {
		if (p[i].revents == 0)
			continue;
		if (p[i].fd == listen_fd) {
			accept_conns();
			continue;
		}
		for (j = 0; j < METRICS_CONNS; j++)
			if (conns[j].fd == p[i].fd) {
				serve(&conns[j], p[i].revents);
				break;
			}
	}
}

/* Rendering ---------------------------------------------------------- */

static void
head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metric(struct buf *b, const char *name, const char *type, const char *help,
    double v)
{
	char	num[32];

	head(b, name, type, help);
	/* The shortest form that reads back as v: 1796643503.943, not
	   1796643503.9430001. */
	snprintf(num, sizeof(num), "%.15g", v);
	if (strtod(num, NULL) != v)
		snprintf(num, sizeof(num), "%.17g", v);
	buf_appendf(b, "%s %s\n", name, num);
}

/*
 * Length of the character at s if it is valid UTF-8 and not a control
 * character, else 0.  Overlong forms, surrogates and code points past
 * U+10FFFF are not valid; the NUL at the end stops a sequence.
 */
static size_t
utf8_char(const unsigned char *s)
{
	uint32_t	cp;
	size_t		i, n;

	if (*s >= 0x20 && *s < 0x7f)
		return 1;
	if (*s >= 0xc2 && *s <= 0xdf) {
		n = 2;
		cp = *s & 0x1f;
	} else if (*s >= 0xe0 && *s <= 0xef) {
		n = 3;
		cp = *s & 0x0f;
	} else if (*s >= 0xf0 && *s <= 0xf4) {
		n = 4;
		cp = *s & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/*
 * A queue name as a label value.  Two names must never give the same
 * series, so the value is one-to-one with the name: printable UTF-8 as it
 * is, a backslash doubled, any other byte (a control character, invalid
 * UTF-8) as \xHH.  The exposition format then escapes \ and " itself, so
 * a backslash of the name is written \\\\ and a byte 0x01 \\x01.  A
 * name longer than STATS_NAME_MAX bytes is cut there and ends with
 * "...#" and the hex hash of the whole name (the label of a name that
 * short is shorter than that).  name is zero-filled past len.
 */
static void
label(struct buf *b, const char *name, size_t len, int cut, uint32_t hash)
{
	const unsigned char	*s = (const unsigned char *)name;
	const unsigned char	*end = s + len;
	size_t			 n;

	while (s < end) {
		if (*s == '\\')
			buf_append(b, "\\\\\\\\", 4);
		else if (*s == '"')
			buf_append(b, "\\\"", 2);
		else if ((n = utf8_char(s)) > 0 && n <= (size_t)(end - s)) {
			buf_append(b, (const char *)s, n);
			s += n;
			continue;
		} else
			buf_appendf(b, "\\\\x%02x", *s);
		s++;
	}
	if (cut)
		buf_appendf(b, "...#%08x", (unsigned)hash);
}

/* One histogram's series; label is "" or `name="value"`. */
static void
histogram_series(struct buf *b, const char *name, const char *label,
    const uint64_t *counts, const double *bounds, size_t n, double sum)
{
	const char	*sep = *label ? "," : "";
	char		 le[32];
	uint64_t	 cum = 0;
	size_t		 i;

	for (i = 0; i < n; i++) {
		cum += counts[i];
		if (i + 1 < n)
			snprintf(le, sizeof(le), "%g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		buf_appendf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, label,
		    sep, le, (unsigned long long)cum);
	}
	if (*label)
		buf_appendf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name,
		    label, sum, name, label, (unsigned long long)cum);
	else
		buf_appendf(b, "%s_sum %.6f\n%s_count %llu\n", name, sum,
		    name, (unsigned long long)cum);
}

static void
histogram(struct buf *b, const char *name, const char *help,
    const uint64_t *counts, const double *bounds, size_t n, double sum)
{
	head(b, name, "histogram", help);
	histogram_series(b, name, "", counts, bounds, n, sum);
}

static void
render_commands(struct buf *b, const struct stats_slot *s)
{
	uint64_t	lat[STATS_LAT];
	char		label[64];
	size_t		i;

	head(b, "dqd_commands_total", "counter", "Commands run, by name.");
	for (i = 0; i < cmd_count && i < STATS_CMDS; i++)
		buf_appendf(b, "dqd_commands_total{command=\"%s\"} %llu\n",
		    cmd_table[i].name, (unsigned long long)s->cmd_calls[i]);
	head(b, "dqd_command_seconds_total", "counter",
	    "Time spent running commands, by name.");
	for (i = 0; i < cmd_count && i < STATS_CMDS; i++) {
		buf_appendf(b, "dqd_command_seconds_total{command=\"%s\"} "
		    "%.6f\n", cmd_table[i].name, s->cmd_usec[i] / 1e6);
	}
	/* Only the commands that ran: 11 series each. */
	head(b, "dqd_command_duration_seconds", "histogram",
	    "Commands by the time they took to run, by name.");
	for (i = 0; i < cmd_count && i < STATS_CMDS; i++) {
		if (s->cmd_calls[i] == 0)
			continue;
		stats_command_lat(i, lat);
		snprintf(label, sizeof(label), "command=\"%s\"",
		    cmd_table[i].name);
		histogram_series(b, "dqd_command_duration_seconds", label, lat,
		    stats_lat_bounds, STATS_LAT, s->cmd_usec[i] / 1e6);
	}
}

static void
queue_gauge(struct buf *b, const struct stats_env *e, const char *name,
    const char *help, int reserved)
{
	uint32_t	i;

	head(b, name, "gauge", help);
	for (i = 0; i < e->npublished && i < STATS_QUEUES; i++) {
		buf_appendf(b, "%s{queue=\"", name);
		label(b, e->queue[i].name, e->queue[i].namelen,
		    e->queue[i].cut, e->queue[i].hash);
		buf_appendf(b, "\"} %lld\n", (long long)(reserved ?
		    e->queue[i].reserved : e->queue[i].messages));
	}
}

static void
render_env(struct buf *b)
{
	struct stats_env	e;
	uint64_t		lookups;

	stats_env_read(&e);
	lookups = e.cache_hit + e.cache_miss;
	metric(b, "dqd_bdb_cache_bytes", "gauge",
	    "Size of the Berkeley DB cache: cache_size_mb, plus a quarter "
	    "under 500 MiB (Berkeley DB's overhead).", e.cache_bytes);
	metric(b, "dqd_bdb_cache_hit_ratio", "gauge",
	    "Page requests found in the cache, since the start.",
	    lookups ? (double)e.cache_hit / lookups : 1);
	metric(b, "dqd_bdb_cache_misses_total", "counter",
	    "Page requests not found in the cache: pages read from the "
	    "files.", e.cache_miss);
	metric(b, "dqd_bdb_lock_waits_total", "counter",
	    "Lock requests that had to wait.", e.lock_waits);
	metric(b, "dqd_bdb_deadlocks_total", "counter",
	    "Deadlocks detected (each retried inside the server).",
	    e.deadlocks);
	metric(b, "dqd_bdb_log_bytes", "gauge",
	    "Size of the transaction log files.", e.log_bytes);
	metric(b, "dqd_bdb_data_bytes", "gauge",
	    "Size of the database files.", e.data_bytes);
	metric(b, "dqd_last_checkpoint_timestamp_seconds", "gauge",
	    "Time of the last checkpoint.", e.last_checkpoint);
	metric(b, "dqd_queues", "gauge", "Queues holding messages.",
	    e.nqueues);
	queue_gauge(b, &e, "dqd_queue_messages", "Messages in a queue (the "
	    "first 100 queues, in creation order).", 0);
	queue_gauge(b, &e, "dqd_queue_reserved", "Messages of a queue "
	    "carrying a lease (the first 100 queues, in creation order).", 1);
}

/* The figures added up over the workers' slots, in the order shown. */
static const struct {
	const char	*name, *type, *help;
	size_t		 off;
} slot_metrics[] = {
#define SLOT(n, t, h, f)	{ n, t, h, offsetof(struct stats_slot, f) }
	SLOT("dqd_blocked_clients", "gauge",
	    "Clients waiting in BSPOP or QRESERVE BLOCK.", blocked),
	SLOT("dqd_errors_total", "counter", "Error replies.", errors),
	SLOT("dqd_protocol_errors_total", "counter",
	    "Connections closed for a protocol error.", protocol_errors),
	SLOT("dqd_messages_enqueued_total", "counter", "Messages enqueued.",
	    enqueued),
	SLOT("dqd_messages_delivered_total", "counter",
	    "Messages handed to consumers.", delivered),
	SLOT("dqd_messages_redelivered_total", "counter",
	    "Deliveries of a message delivered before.", redelivered),
	SLOT("dqd_messages_acked_total", "counter",
	    "Reserved messages acknowledged.", acked),
	SLOT("dqd_messages_dead_lettered_total", "counter",
	    "Messages moved to a dead queue.", dead_lettered),
	SLOT("dqd_commits_total", "counter",
	    "Transactions committed (one per batch of commands).", commits),
	SLOT("dqd_log_syncs_total", "counter",
	    "Syncs of the log under durability fsync; one covers the commits "
	    "of every worker since the one before.", log_syncs),
	SLOT("dqd_log_syncs_by_workers_total", "counter",
	    "Of those, syncs a worker did itself instead of the flusher "
	    "(a lone client, or no flusher).", worker_syncs),
	SLOT("dqd_wheel_moves_total", "counter",
	    "Messages moved from a far bucket to the due-ordered keys, "
	    "about a bucket before they are due.", wheel_moves),
	SLOT("dqd_batch_retries_total", "counter",
	    "Batches run again after a deadlock.", retries),
	SLOT("dqd_net_input_bytes_total", "counter", "Bytes read.", net_in),
	SLOT("dqd_net_output_bytes_total", "counter", "Bytes written.",
	    net_out),
#undef SLOT
};

int
metrics_render(struct buf *b)
{
	struct stats_slot	s;
	size_t			i;

	stats_sum(&s);
	metric(b, "dqd_up", "gauge", "1 while dqd runs.", 1);
	head(b, "dqd_build_info", "gauge", "The version of dqd.");
	buf_appendf(b, "dqd_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	metric(b, "dqd_start_time_seconds", "gauge", "When dqd started.",
	    stats->started_ms / 1e3);
	metric(b, "dqd_workers", "gauge", "Worker processes configured.",
	    stats->nworkers);
	metric(b, "dqd_worker_restarts_total", "counter",
	    "Workers, housekeepers and flushers replaced after they died.",
	    stats->worker_restarts);
	metric(b, "dqd_pool_restarts_total", "counter",
	    "Restarts of every process after recovery.", stats->pool_restarts);
	metric(b, "dqd_connections_total", "counter",
	    "Client connections accepted.", s.connections);
	metric(b, "dqd_connections_rejected_total", "counter",
	    "Connections refused at maxclients.", s.rejected);
	metric(b, "dqd_connected_clients", "gauge", "Clients connected now.",
	    __atomic_load_n(&stats->clients, __ATOMIC_RELAXED));
	for (i = 0; i < sizeof(slot_metrics) / sizeof(slot_metrics[0]); i++)
		metric(b, slot_metrics[i].name, slot_metrics[i].type,
		    slot_metrics[i].help, *(const uint64_t *)((const char *)&s +
		    slot_metrics[i].off));
	render_commands(b, &s);
	histogram(b, "dqd_delivery_lateness_seconds",
	    "Deliveries by delivery time minus due time.", s.late,
	    stats_late_bounds, STATS_LATE, s.late_ms / 1e3);
	render_env(b);
	return b->len > 0 ? 0 : -1;
}
