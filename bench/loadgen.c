/*
 * loadgen: the load generator of dqd's benchmarks (bench/README.md).
 *
 * One process, one epoll loop per thread, many non-blocking connections,
 * a configurable number of requests in flight per connection, its own
 * RESP and beanstalkd reply parsers (no client library in the way), and
 * fixed seeds.  It speaks to three systems with the same request shapes:
 *
 *   system     enq (batch b)              deq (count b)
 *   dqd        SADD q body delay x b      SPOP q b          (or QRESERVE+QACK)
 *   redis      ZADD q due member x b      EVALSHA take 1 q b (ZRANGEBYSCORE
 *                                          LIMIT 0 b + ZREM, atomic Lua)
 *   beanstalkd b pipelined "put"          b pipelined reserve-with-timeout 0,
 *                                          each followed by "delete id"
 *
 * Modes: ping (the generator's own ceiling), enq, deq, lat (delivery
 * lateness: producers at a fixed rate, consumers polling or blocked).
 * The result is one JSON object on stdout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum sys { SYS_DQD, SYS_REDIS, SYS_BEANSTALKD };
enum mode { M_PING, M_ENQ, M_DEQ, M_LAT };
enum deqcmd { D_SPOP, D_QRESERVE, D_BSPOP };

#define REDIS_TAKE_LUA \
	"local t = redis.call('TIME') " \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) " \
	"local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, " \
	"'LIMIT', 0, tonumber(ARGV[1])) " \
	"if #m > 0 then redis.call('ZREM', KEYS[1], unpack(m)) end " \
	"return m"

/* Options ---------------------------------------------------------------- */
static const char *o_host = "127.0.0.1";
static int o_port = 6379;
static enum sys o_sys = SYS_DQD;
static enum mode o_mode = M_ENQ;
static enum deqcmd o_deqcmd = D_SPOP;
static int o_conns = 50;
static int o_depth = 1;
static int o_batch = 1;
static double o_duration = 5;
static long long o_total = 0;		/* messages; 0 = until duration */
static const char *o_queue = "bench";
static int o_bodysize = 100;
static long long o_dmin = 3600000, o_dmax = 90000000; /* delay, ms */
static uint64_t o_seed = 1;
static int o_threads = 1;
static const char *o_tag = "r";
/* lat mode */
static double o_rate = 2000;		/* messages/s produced */
static int o_producers = 1;
static int o_consumers = 4;
static double o_poll_ms = 1;
static double o_grace = 5;
static int o_lease_ms = 30000;

/* Time -------------------------------------------------------------------- */
static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* Histogram: log-linear, microseconds, ~3% resolution. ------------------- */
#define HBUCKETS (64 + 40 * 32)
struct hist {
	uint64_t b[HBUCKETS];
	uint64_t n, max;
	double sum;
};

static int
hidx(uint64_t v)
{
	int e, i;

	if (v < 64)
		return (int)v;
	e = 63 - __builtin_clzll(v);
	i = 64 + (e - 6) * 32 + (int)((v >> (e - 5)) & 31);
	return i < HBUCKETS ? i : HBUCKETS - 1;
}

static uint64_t
hval(int i)
{
	int e;

	if (i < 64)
		return (uint64_t)i;
	e = (i - 64) / 32 + 6;
	return ((uint64_t)1 << e) | ((uint64_t)((i - 64) % 32) << (e - 5));
}

static void
hadd(struct hist *h, uint64_t v)
{
	h->b[hidx(v)]++;
	h->n++;
	h->sum += (double)v;
	if (v > h->max)
		h->max = v;
}

static void
hmerge(struct hist *d, const struct hist *s)
{
	for (int i = 0; i < HBUCKETS; i++)
		d->b[i] += s->b[i];
	d->n += s->n;
	d->sum += s->sum;
	if (s->max > d->max)
		d->max = s->max;
}

static uint64_t
hpct(const struct hist *h, double p)
{
	uint64_t want, acc = 0;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)h->n);
	if (want >= h->n)
		want = h->n - 1;
	for (int i = 0; i < HBUCKETS; i++) {
		acc += h->b[i];
		if (acc > want) {
			uint64_t v = hval(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* Random numbers: xorshift64*, seeded per connection. -------------------- */
static uint64_t
rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Buffers ---------------------------------------------------------------- */
struct buf {
	char *p;
	size_t len, off, cap;
};

static void
breserve(struct buf *b, size_t n)
{
	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n <= b->cap)
		return;
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + n <= b->cap)
			return;
	}
	while (b->len + n > b->cap)
		b->cap = b->cap ? b->cap * 2 : 65536;
	if ((b->p = realloc(b->p, b->cap)) == NULL)
		die("out of memory");
}

static void
bput(struct buf *b, const void *d, size_t n)
{
	breserve(b, n);
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void bprintf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	breserve(b, 256);
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if ((size_t)n >= b->cap - b->len) {
		breserve(b, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static void
bulk(struct buf *b, const char *s, size_t n)
{
	bprintf(b, "$%zu\r\n", n);
	bput(b, s, n);
	bput(b, "\r\n", 2);
}

static void
bulkstr(struct buf *b, const char *s)
{
	bulk(b, s, strlen(s));
}

static void
bulkll(struct buf *b, long long v)
{
	char t[32];
	int n = snprintf(t, sizeof t, "%lld", v);

	bulk(b, t, (size_t)n);
}

/* Connections -------------------------------------------------------------- */
enum role { R_WORK, R_PRODUCER, R_CONSUMER };

struct conn {
	int fd, id, role;
	struct buf w, r;
	uint64_t *ts;			/* send times of requests in flight */
	int tsn, tshead, tstail, inflight;
	int drained;			/* got an empty reply / TIMED_OUT */
	int pending_deletes;		/* beanstalkd deletes in this read */
	uint64_t seq, rng;
	uint64_t next_poll;		/* lat: mono_us of the next poll */
	struct thr *t;
};

struct thr {
	int idx, efd;
	struct conn *c;
	int nc;
	pthread_t tid;
	/* results */
	uint64_t reqs, msgs, errors, empties;
	uint64_t last_msg_us;
	struct hist lat;		/* request latency */
	struct hist late;		/* lat mode: delivered - due */
	uint64_t early, dup, produced, consumed;
	long long worst_early_us;
	char firsterr[256];
};

static char redis_sha[41];
static uint64_t t_start, t_end;		/* mono_us */
static uint64_t lat_total;		/* lat: messages to produce */
static unsigned char *lat_seen;		/* lat: bitmap of received ids */

static void
ts_push(struct conn *c, uint64_t t)
{
	if (c->inflight == c->tsn) {
		int n = c->tsn ? c->tsn * 2 : 64;
		uint64_t *p = malloc(sizeof *p * (size_t)n);
		for (int i = 0; i < c->inflight; i++)
			p[i] = c->ts[(c->tshead + i) % c->tsn];
		free(c->ts);
		c->ts = p;
		c->tshead = 0;
		c->tstail = c->inflight;
		c->tsn = n;
	}
	c->ts[c->tstail] = t;
	c->tstail = (c->tstail + 1) % c->tsn;
	c->inflight++;
}

static uint64_t
ts_pop(struct conn *c)
{
	uint64_t t;

	if (c->inflight == 0)
		die("reply without a request (protocol desync)");
	t = c->ts[c->tshead];
	c->tshead = (c->tshead + 1) % c->tsn;
	c->inflight--;
	return t;
}

static int
dial(void)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)o_port);
	if (inet_pton(AF_INET, o_host, &sa.sin_addr) != 1)
		die("bad IPv4 address %s", o_host);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1)
		die("connect %s:%d: %s", o_host, o_port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* Blocking request/reply during setup: read until `lines` CRLFs seen. */
static void
setup_exchange(int fd, const char *req, size_t len, int lines, char *out,
    size_t outsz)
{
	size_t got = 0;
	int seen = 0;

	if (write(fd, req, len) != (ssize_t)len)
		die("setup write: %s", strerror(errno));
	while (seen < lines) {
		ssize_t n = read(fd, out + got, outsz - 1 - got);
		if (n <= 0)
			die("setup read: %s", n == 0 ? "closed" : strerror(errno));
		for (ssize_t i = 0; i < n; i++)
			if (out[got + (size_t)i] == '\n')
				seen++;
		got += (size_t)n;
	}
	out[got] = 0;
}

/* Message bodies: unique "tag:conn:seq:" + send time + padding. ---------- */
static size_t
make_body(struct conn *c, char *dst, long long delay_ms, uint64_t send_us)
{
	int n;

	if (o_mode == M_LAT)
		n = snprintf(dst, (size_t)o_bodysize + 1, "L%" PRIu64 ":%lld:%" PRIu64 ":",
		    send_us, delay_ms, c->seq);
	else
		n = snprintf(dst, (size_t)o_bodysize + 1, "%s:%d:%" PRIu64 ":", o_tag,
		    c->id, c->seq);
	if (n > o_bodysize)
		n = o_bodysize;
	memset(dst + n, 'x', (size_t)(o_bodysize - n));
	return (size_t)o_bodysize;
}

static long long
pick_delay(struct conn *c)
{
	long long d = o_dmin;

	if (o_dmax > o_dmin)
		d += (long long)(rnd(&c->rng) % (uint64_t)(o_dmax - o_dmin + 1));
	if (o_sys == SYS_BEANSTALKD)	/* whole seconds, rounded up */
		d = (d + 999) / 1000 * 1000;
	return d;
}

/* Requests ------------------------------------------------------------------ */
static char bodybuf[1 << 20];

/* One enqueue request of `n` messages; returns messages in it. */
static int
req_enq(struct conn *c, int n)
{
	struct buf *w = &c->w;
	uint64_t now = mono_us();
	uint64_t rus = real_us();
	size_t qlen = strlen(o_queue);

	if (o_sys == SYS_BEANSTALKD) {
		for (int i = 0; i < n; i++) {
			long long d = pick_delay(c);
			size_t bl = make_body(c, bodybuf, d, rus);
			c->seq++;
			bprintf(w, "put 1024 %lld 120 %zu\r\n", d / 1000, bl);
			bput(w, bodybuf, bl);
			bput(w, "\r\n", 2);
			ts_push(c, now);
		}
		return n;
	}
	bprintf(w, "*%d\r\n", 2 + 2 * n);
	if (o_sys == SYS_DQD)
		bulkstr(w, "SADD");
	else
		bulkstr(w, "ZADD");
	bulk(w, o_queue, qlen);
	uint64_t nowms = rus / 1000;
	for (int i = 0; i < n; i++) {
		long long d = pick_delay(c);
		size_t bl = make_body(c, bodybuf, d, rus);
		c->seq++;
		if (o_sys == SYS_DQD) {
			bulk(w, bodybuf, bl);
			bulkll(w, d);
		} else {
			bulkll(w, (long long)nowms + d);
			bulk(w, bodybuf, bl);
		}
	}
	ts_push(c, now);
	return n;
}

static void req_redis_take(struct conn *c);

static void
req_deq(struct conn *c)
{
	struct buf *w = &c->w;
	uint64_t now = mono_us();

	if (o_sys == SYS_BEANSTALKD) {
		int to = o_mode == M_LAT ? 1 : 0;
		int n = o_mode == M_LAT ? 1 : o_batch;
		for (int i = 0; i < n; i++) {
			bprintf(w, "reserve-with-timeout %d\r\n", to);
			ts_push(c, now);
		}
		return;
	}
	if (o_sys == SYS_REDIS) {
		req_redis_take(c);
		return;
	}
	switch (o_deqcmd) {
	case D_SPOP:
		bprintf(w, "*3\r\n");
		bulkstr(w, "SPOP");
		bulkstr(w, o_queue);
		bulkll(w, o_batch);
		break;
	case D_QRESERVE:
		bprintf(w, "*4\r\n");
		bulkstr(w, "QRESERVE");
		bulkstr(w, o_queue);
		bulkll(w, o_batch);
		bulkll(w, o_lease_ms);
		break;
	case D_BSPOP:
		bprintf(w, "*3\r\n");
		bulkstr(w, "BSPOP");
		bulkstr(w, o_queue);
		bulkstr(w, "1");
		break;
	}
	ts_push(c, now);
}

static void
req_redis_take(struct conn *c)
{
	struct buf *w = &c->w;

	bprintf(w, "*5\r\n");
	bulkstr(w, "EVALSHA");
	bulkstr(w, redis_sha);
	bulkstr(w, "1");
	bulkstr(w, o_queue);
	bulkll(w, o_batch);
	ts_push(c, mono_us());
}

static void
req_ping(struct conn *c)
{
	bput(&c->w, "*1\r\n$4\r\nPING\r\n", 14);
	ts_push(c, mono_us());
}

/* Replies ------------------------------------------------------------------ */
struct item {			/* one element of a top-level array */
	const char *p, *p2;	/* bulk, or first/second bulk of a sub-array */
	size_t len, len2;
};

struct reply {
	char type;		/* + - : $ * */
	long long n;		/* integer, bulk length or array size (-1 nil) */
	const char *s;
	size_t slen;
	int nitems;
	struct item *items;
};

static struct item *items_buf;
static int items_cap;

static const char *
findcrlf(const char *p, const char *end)
{
	const char *q = memchr(p, '\r', (size_t)(end - p));

	while (q && q + 1 < end && q[1] != '\n')
		q = memchr(q + 1, '\r', (size_t)(end - q - 1));
	return q && q + 1 < end ? q : NULL;
}

/* Parses one RESP value at p; returns the byte after it, NULL if incomplete.
 * depth 0: fills r; depth 1: appends items; depth 2: fills p/p2. */
static const char *
resp_value(const char *p, const char *end, int depth, struct reply *r,
    struct item *it, int sub)
{
	const char *e;
	long long n;

	if (p >= end)
		return NULL;
	if ((e = findcrlf(p, end)) == NULL)
		return NULL;
	char t = *p;
	n = strtoll(p + 1, NULL, 10);
	switch (t) {
	case '+': case '-': case ':':
		if (depth == 0) {
			r->type = t;
			r->n = n;
			r->s = p + 1;
			r->slen = (size_t)(e - p - 1);
		}
		return e + 2;
	case '$':
		if (n < 0) {
			if (depth == 0) {
				r->type = '$';
				r->n = -1;
			}
			return e + 2;
		}
		if (end - (e + 2) < n + 2)
			return NULL;
		if (depth == 0) {
			r->type = '$';
			r->n = n;
			r->s = e + 2;
			r->slen = (size_t)n;
		} else if (depth == 1) {
			it->p = e + 2;
			it->len = (size_t)n;
		} else if (depth == 2 && it) {
			if (sub == 0) {
				it->p = e + 2;
				it->len = (size_t)n;
			} else if (sub == 1) {
				it->p2 = e + 2;
				it->len2 = (size_t)n;
			}
		}
		return e + 2 + n + 2;
	case '*':
		p = e + 2;
		if (depth == 0) {
			r->type = '*';
			r->n = n;
			r->nitems = 0;
			if (n > items_cap) {
				void *nb = realloc(items_buf,
				    sizeof *items_buf * (size_t)n);

				if (nb == NULL)
					err(1, "reply of %lld items", n);
				items_buf = nb;
				items_cap = (int)n;
			}
			r->items = items_buf;
		}
		for (long long i = 0; i < n; i++) {
			struct item *sit = NULL;
			if (depth == 0) {
				sit = &r->items[i];
				memset(sit, 0, sizeof *sit);
			}
			p = resp_value(p, end, depth + 1, r,
			    depth == 0 ? sit : it, (int)i);
			if (p == NULL)
				return NULL;
			if (depth == 0)
				r->nitems++;
		}
		return p;
	default:
		die("protocol error: reply starts with 0x%02x", (unsigned char)t);
	}
	return NULL;
}

/* Lateness of one delivered body "L<send_us>:<delay_ms>:<id>:" */
static void
record_delivery(struct thr *t, const char *p, size_t len, uint64_t recv_us)
{
	char tmp[64];
	unsigned long long send_us, delay_ms, id;
	long long late;

	if (len > sizeof tmp - 1)
		len = sizeof tmp - 1;
	memcpy(tmp, p, len);
	tmp[len] = 0;
	if (sscanf(tmp, "L%llu:%llu:%llu:", &send_us, &delay_ms, &id) != 3) {
		t->errors++;
		return;
	}
	/* The server's clock is read after the send, in whole ms at worst. */
	uint64_t due = (send_us / 1000 + delay_ms) * 1000;
	late = (long long)recv_us - (long long)due;
	if (late < 0) {
		t->early++;
		if (late < t->worst_early_us)
			t->worst_early_us = late;
		late = 0;
	}
	hadd(&t->late, (uint64_t)late);
	t->consumed++;
	if (id < lat_total) {
		unsigned char bit = (unsigned char)(1u << (id & 7));
		if (lat_seen[id >> 3] & bit)
			t->dup++;
		lat_seen[id >> 3] |= bit;
	}
}

static void
note_error(struct thr *t, const char *s, size_t n)
{
	t->errors++;
	if (t->firsterr[0] == 0)
		snprintf(t->firsterr, sizeof t->firsterr, "%.*s",
		    (int)(n > 200 ? 200 : n), s);
}

/* Handles the replies in c->r; returns 0, or -1 if the connection is done. */
static void
handle_resp(struct conn *c, uint64_t now)
{
	struct thr *t = c->t;
	struct buf *b = &c->r;

	for (;;) {
		struct reply r;
		const char *p = b->p + b->off, *end = b->p + b->len;
		const char *q;

		memset(&r, 0, sizeof r);
		if ((q = resp_value(p, end, 0, &r, NULL, 0)) == NULL)
			break;
		b->off += (size_t)(q - p);
		uint64_t sent = ts_pop(c);
		hadd(&t->lat, now - sent);
		if (r.type == '-') {
			note_error(t, r.s, r.slen);
			continue;
		}
		if (c->role == R_PRODUCER) {
			t->produced++;
			continue;
		}
		t->reqs++;
		switch (o_mode) {
		case M_PING:
			t->msgs++;
			break;
		case M_ENQ:
			if (r.type == ':')
				t->msgs += (uint64_t)r.n;
			else
				t->msgs += (uint64_t)o_batch;
			t->last_msg_us = now;
			break;
		case M_DEQ:
		case M_LAT:
			if (o_deqcmd == D_QRESERVE && o_sys == SYS_DQD &&
			    r.type == ':') {
				/* the reply to a QACK */
				t->reqs--;
				break;
			}
			if (r.type != '*' || r.n <= 0) {
				t->empties++;
				c->drained = 1;
				break;
			}
			if (o_deqcmd == D_BSPOP && o_sys == SYS_DQD) {
				if (o_mode == M_LAT && r.nitems == 2)
					record_delivery(t, r.items[1].p,
					    r.items[1].len, real_us());
				t->msgs++;
				t->last_msg_us = now;
				break;
			}
			t->msgs += (uint64_t)r.nitems;
			t->last_msg_us = now;
			if (o_mode == M_LAT) {
				uint64_t ru = real_us();
				for (int i = 0; i < r.nitems; i++) {
					struct item *it = &r.items[i];
					if (o_deqcmd == D_QRESERVE)
						record_delivery(t, it->p2,
						    it->len2, ru);
					else
						record_delivery(t, it->p,
						    it->len, ru);
				}
			}
			if (o_deqcmd == D_QRESERVE && o_sys == SYS_DQD) {
				/* acknowledge them all in one QACK */
				struct buf *w = &c->w;
				bprintf(w, "*%d\r\n", 2 + r.nitems);
				bulkstr(w, "QACK");
				bulkstr(w, o_queue);
				for (int i = 0; i < r.nitems; i++)
					bulk(w, r.items[i].p, r.items[i].len);
				ts_push(c, now);
			}
			break;
		}
	}
}

static void
handle_beanstalk(struct conn *c, uint64_t now)
{
	struct thr *t = c->t;
	struct buf *b = &c->r;

	for (;;) {
		const char *p = b->p + b->off, *end = b->p + b->len;
		const char *e = findcrlf(p, end);
		size_t ll;

		if (e == NULL)
			break;
		ll = (size_t)(e - p);
		if (ll > 9 && memcmp(p, "RESERVED ", 9) == 0) {
			unsigned long long id;
			size_t bytes;
			if (sscanf(p + 9, "%llu %zu", &id, &bytes) != 2)
				die("bad RESERVED line");
			if ((size_t)(end - (e + 2)) < bytes + 2)
				break;
			const char *body = e + 2;
			b->off += ll + 2 + bytes + 2;
			hadd(&t->lat, now - ts_pop(c));
			t->reqs++;
			if (o_mode == M_LAT)
				record_delivery(t, body, bytes, real_us());
			bprintf(&c->w, "delete %llu\r\n", id);
			ts_push(c, now);
			continue;
		}
		b->off += ll + 2;
		hadd(&t->lat, now - ts_pop(c));
		if (ll >= 8 && memcmp(p, "INSERTED", 8) == 0) {
			if (c->role == R_PRODUCER) {
				t->produced++;
			} else {
				t->reqs++;
				t->msgs++;
				t->last_msg_us = now;
			}
		} else if (ll >= 7 && memcmp(p, "DELETED", 7) == 0) {
			t->msgs++;
			t->last_msg_us = now;
		} else if (ll >= 9 && memcmp(p, "TIMED_OUT", 9) == 0) {
			t->reqs++;
			t->empties++;
			if (o_mode != M_LAT)
				c->drained = 1;
		} else if (ll >= 13 && memcmp(p, "DEADLINE_SOON", 13) == 0) {
			t->reqs++;
		} else {
			note_error(t, p, ll);
		}
	}
}

/* Refill: keep `depth` requests in flight. */
static int
stopped(uint64_t now)
{
	return now >= t_end;
}

/* n, or what is left of this connection's share of -n; 0: done. */
static int
enq_share(const struct conn *c, int n)
{
	long long	left;

	if (o_total == 0)
		return n;
	left = o_total / o_conns - (long long)c->seq;
	if (left <= 0)
		return 0;
	return n > left ? (int)left : n;
}

static void
refill(struct conn *c, uint64_t now)
{
	int want, n;

	if (stopped(now))
		return;
	switch (o_mode) {
	case M_PING:
		while (c->inflight < o_depth)
			req_ping(c);
		break;
	case M_ENQ:
		/* beanstalkd counts messages in flight (no batch command),
		   the others requests. */
		want = o_sys == SYS_BEANSTALKD ? o_depth * o_batch : o_depth;
		while (c->inflight < want && (n = enq_share(c,
		    o_sys == SYS_BEANSTALKD ? want - c->inflight : o_batch)) > 0)
			req_enq(c, n);
		break;
	case M_DEQ:
		if (c->drained)
			break;
		want = o_sys == SYS_BEANSTALKD ? o_depth * o_batch : o_depth;
		while (c->inflight < want) {
			if (o_sys == SYS_REDIS)
				req_redis_take(c);
			else if (o_sys == SYS_BEANSTALKD) {
				bprintf(&c->w, "reserve-with-timeout 0\r\n");
				ts_push(c, now);
			} else
				req_deq(c);
		}
		break;
	case M_LAT:
		break;
	}
}

static void
lat_refill(struct conn *c, uint64_t now, uint64_t prod_end)
{
	if (c->role == R_PRODUCER) {
		/* messages this producer should have sent by now */
		double el = (double)(now - t_start) / 1e6;
		uint64_t due = (uint64_t)(el * o_rate / o_producers);
		uint64_t mine = lat_total / (uint64_t)o_producers;
		if (due > mine || now >= prod_end)
			due = mine;
		while (c->seq < due) {
			/* ids are global: producer k owns k, k+P, ... */
			uint64_t local = c->seq;
			uint64_t gid = local * (uint64_t)o_producers + (uint64_t)c->id;
			c->seq = gid;
			(void)req_enq(c, 1);	/* increments c->seq */
			c->seq = local + 1;
		}
		return;
	}
	/* consumer */
	if (c->inflight > 0)
		return;
	if (o_sys == SYS_BEANSTALKD || o_deqcmd == D_BSPOP) {
		req_deq(c);	/* blocking: one outstanding */
		return;
	}
	if (c->drained) {
		if (now < c->next_poll)
			return;
		c->drained = 0;
	}
	if (o_sys == SYS_REDIS)
		req_redis_take(c);
	else
		req_deq(c);
	c->next_poll = now + (uint64_t)(o_poll_ms * 1000);
}

static void
flush_out(struct conn *c)
{
	struct buf *w = &c->w;

	while (w->off < w->len) {
		ssize_t n = write(c->fd, w->p + w->off, w->len - w->off);
		if (n > 0) {
			w->off += (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		die("write: %s", n == 0 ? "closed" : strerror(errno));
	}
	if (w->off == w->len)
		w->off = w->len = 0;
}

static void
conn_setup(struct conn *c)
{
	char out[4096];

	c->fd = dial();
	if (o_sys == SYS_BEANSTALKD) {
		char req[1024];
		int n = snprintf(req, sizeof req,
		    "use %s\r\nwatch %s\r\nignore default\r\n", o_queue, o_queue);
		setup_exchange(c->fd, req, (size_t)n, 3, out, sizeof out);
		if (strncmp(out, "USING", 5) != 0)
			die("beanstalkd setup: %s", out);
	} else if (o_sys == SYS_REDIS && redis_sha[0] == 0 &&
	    (o_mode == M_DEQ || o_mode == M_LAT)) {
		struct buf b = {0};
		bprintf(&b, "*3\r\n");
		bulkstr(&b, "SCRIPT");
		bulkstr(&b, "LOAD");
		bulkstr(&b, REDIS_TAKE_LUA);
		setup_exchange(c->fd, b.p, b.len, 2, out, sizeof out);
		if (out[0] != '$' || strlen(out) < 45)
			die("SCRIPT LOAD: %s", out);
		memcpy(redis_sha, strchr(out, '\n') + 1, 40);
		redis_sha[40] = 0;
		free(b.p);
	}
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
}

static int
all_done(struct thr *t, uint64_t now, uint64_t prod_end)
{
	int busy = 0;

	for (int i = 0; i < t->nc; i++) {
		struct conn *c = &t->c[i];
		if (o_mode == M_DEQ && !c->drained)
			return 0;
		if (o_mode == M_ENQ && o_total &&
		    (c->inflight > 0 || (long long)c->seq <
		    o_total / o_conns))
			return 0;
		if (c->inflight > 0)
			busy = 1;
	}
	if (o_mode == M_LAT) {
		uint64_t p = 0, q = 0;
		(void)busy;
		p = lat_total;
		q = t->consumed;
		return now >= prod_end && q >= p;
	}
	if (o_mode == M_DEQ)
		return 1;
	if (o_mode == M_ENQ && o_total)
		return 1;
	return 0;
}

static void *
run_thread(void *arg)
{
	struct thr *t = arg;
	struct epoll_event ev[256];
	uint64_t prod_end = t_start + (uint64_t)(o_duration * 1e6);

	for (int i = 0; i < t->nc; i++) {
		struct conn *c = &t->c[i];
		struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLET,
		    .data.ptr = c };
		epoll_ctl(t->efd, EPOLL_CTL_ADD, c->fd, &e);
	}
	for (int i = 0; i < t->nc; i++) {
		struct conn *c = &t->c[i];
		if (o_mode == M_LAT)
			lat_refill(c, t_start, prod_end);
		else
			refill(c, t_start);
		flush_out(c);
	}
	for (;;) {
		uint64_t now = mono_us();
		if (now >= t_end || all_done(t, now, prod_end))
			break;
		int n = epoll_wait(t->efd, ev, 256, o_mode == M_LAT ? 1 : 10);
		now = mono_us();
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
				for (;;) {
					breserve(&c->r, 65536);
					size_t room = c->r.cap - c->r.len;
					ssize_t r = read(c->fd, c->r.p + c->r.len,
					    room);
					if (r > 0) {
						c->r.len += (size_t)r;
						if ((size_t)r < room)
							break;
						continue;
					}
					if (r == -1 && errno == EINTR)
						continue;
					if (r == -1 && errno == EAGAIN)
						break;
					die("read: %s", r == 0 ?
					    "server closed the connection" :
					    strerror(errno));
				}
				if (o_sys == SYS_BEANSTALKD)
					handle_beanstalk(c, now);
				else
					handle_resp(c, now);
			}
			if (o_mode != M_LAT)
				refill(c, now);
			flush_out(c);
		}
		if (o_mode == M_LAT)
			for (int i = 0; i < t->nc; i++) {
				lat_refill(&t->c[i], now, prod_end);
				flush_out(&t->c[i]);
			}
	}
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr,
"usage: loadgen -s dqd|redis|beanstalkd -m ping|enq|deq|lat [options]\n"
"  -H host       127.0.0.1            -p port     6379\n"
"  -c conns      50                   -d depth    1 (requests in flight per conn)\n"
"  -b batch      1 (messages per request; beanstalkd: pipelined puts/reserves)\n"
"  -t seconds    5 (duration; lat: production time)\n"
"  -n messages   0 (enq: stop after this many)\n"
"  -q queue      bench                -S bytes    100 (body size)\n"
"  -D min:max    delay range in ms    (default 3600000:90000000)\n"
"  -r seed       1                    -T threads  1\n"
"  -R tag        body prefix, keeps members unique across runs\n"
"  -x spop|qreserve|bspop   dqd dequeue command (default spop)\n"
"  lat: -a rate (msg/s) -P producers -C consumers -i poll_ms -g grace_s\n");
	exit(2);
}

/* The index of arg in names (NULL-terminated, in enum order), or usage. */
static int
choose(const char *arg, const char *const *names)
{
	int	i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(arg, names[i]) == 0)
			return i;
	usage();
	return -1;
}

int
main(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "H:p:s:m:c:d:b:t:n:q:S:D:r:T:R:x:a:P:C:i:g:L:h")) != -1) {
		switch (ch) {
		case 'H': o_host = optarg; break;
		case 'p': o_port = atoi(optarg); break;
		case 's':
			o_sys = (enum sys)choose(optarg, (const char *const [])
			    { "dqd", "redis", "beanstalkd", NULL });
			break;
		case 'm':
			o_mode = (enum mode)choose(optarg, (const char *const [])
			    { "ping", "enq", "deq", "lat", NULL });
			break;
		case 'c': o_conns = atoi(optarg); break;
		case 'd': o_depth = atoi(optarg); break;
		case 'b': o_batch = atoi(optarg); break;
		case 't': o_duration = atof(optarg); break;
		case 'n': o_total = atoll(optarg); break;
		case 'q': o_queue = optarg; break;
		case 'S': o_bodysize = atoi(optarg); break;
		case 'D':
			if (sscanf(optarg, "%lld:%lld", &o_dmin, &o_dmax) != 2)
				usage();
			break;
		case 'r': o_seed = strtoull(optarg, NULL, 10); break;
		case 'T': o_threads = atoi(optarg); break;
		case 'R': o_tag = optarg; break;
		case 'x':
			o_deqcmd = (enum deqcmd)choose(optarg,
			    (const char *const []){ "spop", "qreserve", "bspop",
			    NULL });
			break;
		case 'a': o_rate = atof(optarg); break;
		case 'P': o_producers = atoi(optarg); break;
		case 'C': o_consumers = atoi(optarg); break;
		case 'i': o_poll_ms = atof(optarg); break;
		case 'g': o_grace = atof(optarg); break;
		case 'L': o_lease_ms = atoi(optarg); break;
		default: usage();
		}
	}
	if (strcmp(o_host, "127.0.0.1") != 0 && strcmp(o_host, "::1") != 0 &&
	    strncmp(o_host, "127.", 4) != 0)
		die("refusing non-loopback host %s", o_host);
	if (o_bodysize < 40 || o_bodysize > (int)sizeof bodybuf - 1)
		die("body size must be 40 to %zu", sizeof bodybuf - 1);
	if (o_conns < 1 || o_depth < 1 || o_batch < 1 || o_threads < 1 ||
	    o_duration <= 0 || o_duration > 3600)
		usage();
	if (o_mode == M_PING && o_sys == SYS_BEANSTALKD)
		die("beanstalkd has no PING");
	if (o_mode == M_LAT) {
		o_threads = 1;
		o_conns = o_producers + o_consumers;
		lat_total = (uint64_t)(o_rate * o_duration);
		lat_total -= lat_total % (uint64_t)o_producers;
		lat_seen = calloc(lat_total / 8 + 1, 1);
	}
	if (o_threads > o_conns)
		o_threads = o_conns;

	struct thr *th = calloc((size_t)o_threads, sizeof *th);
	for (int i = 0; i < o_threads; i++) {
		th[i].idx = i;
		th[i].efd = epoll_create1(0);
		th[i].nc = o_conns / o_threads + (i < o_conns % o_threads);
		th[i].c = calloc((size_t)th[i].nc, sizeof *th[i].c);
	}
	int id = 0;
	for (int i = 0; i < o_threads; i++)
		for (int k = 0; k < th[i].nc; k++) {
			struct conn *c = &th[i].c[k];
			c->t = &th[i];
			c->id = id;
			c->rng = o_seed * 0x9E3779B97F4A7C15ULL + (uint64_t)id + 1;
			for (int j = 0; j < 4; j++)
				rnd(&c->rng);
			if (o_mode == M_LAT) {
				c->role = id < o_producers ? R_PRODUCER : R_CONSUMER;
				if (c->role == R_CONSUMER)
					c->id = id - o_producers;
			}
			conn_setup(c);
			id++;
		}
	t_start = mono_us();
	if (o_mode == M_LAT)
		t_end = t_start + (uint64_t)((o_duration + (double)o_dmax / 1000 +
		    o_grace) * 1e6);
	else
		t_end = t_start + (uint64_t)(o_duration * 1e6);
	if (o_threads == 1)
		run_thread(&th[0]);
	else {
		for (int i = 0; i < o_threads; i++)
			pthread_create(&th[i].tid, NULL, run_thread, &th[i]);
		for (int i = 0; i < o_threads; i++)
			pthread_join(th[i].tid, NULL);
	}
	uint64_t stop = mono_us();

	/* Totals */
	struct thr tot;
	memset(&tot, 0, sizeof tot);
	tot.worst_early_us = 0;
	for (int i = 0; i < o_threads; i++) {
		struct thr *t = &th[i];
		tot.reqs += t->reqs;
		tot.msgs += t->msgs;
		tot.errors += t->errors;
		tot.empties += t->empties;
		tot.early += t->early;
		tot.dup += t->dup;
		tot.produced += t->produced;
		tot.consumed += t->consumed;
		if (t->worst_early_us < tot.worst_early_us)
			tot.worst_early_us = t->worst_early_us;
		if (t->last_msg_us > tot.last_msg_us)
			tot.last_msg_us = t->last_msg_us;
		hmerge(&tot.lat, &t->lat);
		hmerge(&tot.late, &t->late);
		if (!tot.firsterr[0] && t->firsterr[0])
			memcpy(tot.firsterr, t->firsterr, sizeof tot.firsterr);
	}
	/* Elapsed: until the stop, or (deq, enq -n) the last message. */
	uint64_t end = stop;
	if ((o_mode == M_DEQ || (o_mode == M_ENQ && o_total)) &&
	    tot.last_msg_us > t_start)
		end = tot.last_msg_us;
	if (end > t_end && o_mode != M_LAT)
		end = t_end;
	double el = (double)(end - t_start) / 1e6;
	if (el <= 0)
		el = 1e-6;
	for (char *s = tot.firsterr; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 32)
			*s = '?';
	printf("{\"system\":\"%s\",\"mode\":\"%s\",\"conns\":%d,\"depth\":%d,"
	    "\"batch\":%d,\"threads\":%d,\"elapsed_s\":%.3f,\"requests\":%" PRIu64
	    ",\"messages\":%" PRIu64 ",\"msgs_per_s\":%.1f,\"reqs_per_s\":%.1f,"
	    "\"errors\":%" PRIu64 ",\"first_error\":\"%s\",\"empties\":%" PRIu64
	    ",\"req_lat_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
	    ",\"max\":%" PRIu64 "}",
	    o_sys == SYS_DQD ? "dqd" : o_sys == SYS_REDIS ? "redis" : "beanstalkd",
	    o_mode == M_PING ? "ping" : o_mode == M_ENQ ? "enq" :
	    o_mode == M_DEQ ? "deq" : "lat",
	    o_conns, o_depth, o_batch, o_threads, el, tot.reqs, tot.msgs,
	    (double)tot.msgs / el, (double)tot.reqs / el, tot.errors,
	    tot.firsterr, tot.empties, hpct(&tot.lat, 50), hpct(&tot.lat, 99),
	    tot.lat.max);
	if (o_mode == M_LAT) {
		uint64_t missing = 0;
		for (uint64_t i = 0; i < lat_total; i++)
			if (!(lat_seen[i >> 3] & (1u << (i & 7))))
				missing++;
		printf(",\"lat\":{\"total\":%" PRIu64 ",\"produced\":%" PRIu64
		    ",\"delivered\":%" PRIu64 ",\"missing\":%" PRIu64
		    ",\"duplicates\":%" PRIu64 ",\"early\":%" PRIu64
		    ",\"worst_early_us\":%lld,\"p50_us\":%" PRIu64
		    ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64
		    ",\"mean_us\":%.1f}",
		    lat_total, tot.produced, tot.consumed, missing, tot.dup,
		    tot.early, tot.worst_early_us, hpct(&tot.late, 50),
		    hpct(&tot.late, 99), tot.late.max,
		    tot.late.n ? tot.late.sum / (double)tot.late.n : 0.0);
	}
	printf("}\n");
	return 0;
}
