/*
 * dqctl: the administration tool of dqd.  See dqctl(8).
 *
 * Server commands (status, queues, stat, peek, delete) talk RESP to a
 * running dqd through libhiredis.  Data directory commands (backup,
 * verify, checkpoint, recover) work on the Berkeley DB environment
 * through store_admin.c; whether dqd is running is told by the flock it
 * holds on DATA_DIR/dqd.lock from start to the exit of its last process.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "config.h"
#include "store_admin.h"
#include "util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* Exit statuses; dqctl(8) lists them. */
#define EX_OK		0	/* done */
#define EX_ERR		1	/* the command failed */
#define EX_USAGE	2	/* bad command line */
#define EX_UNREACH	3	/* no connection to the server */
#define EX_AUTH		4	/* the server refused the password */
#define EX_INUSE	5	/* the data directory is in use (recover) */
#define EX_DAMAGED	6	/* verify found damage */

#define PEEK_DEFAULT	10
#define BODY_WIDTH	60	/* characters of a body shown in tables */

struct name {
	char	*p;
	size_t	 len;
};

struct names {
	struct name	*v;
	size_t		 n, cap;
};

struct kv {
	char	*k;
	char	*v;
};

struct info {
	struct kv	*v;
	size_t		 n;
};

/* One column per field of QSTAT that the queues table shows. */
enum { Q_MESSAGES, Q_READY, Q_DELAYED, Q_RESERVED, Q_NEXT_DUE, Q_NFIELDS };
static const char *const qfields[Q_NFIELDS] = {
	"messages", "ready", "delayed", "reserved", "next_due_ms"
};

struct qstat {
	long long	val[Q_NFIELDS];
	int		have[Q_NFIELDS];
};

static const char	*host;
static int		 port;
static const char	*password;
static const char	*data_dir;
static const char	*tmp_dir;
static int		 json, yes, catastrophic;
static const char	*cmdname = "";
static redisContext	*rc;
static redisReply	*held;		/* the reply being looked at */
static int		 lock_fd = -1;

static void __attribute__((noreturn, format(printf, 2, 3)))
fail(int status, const char *fmt, ...)
{
	va_list	ap;

	fflush(stdout);
	fprintf(stderr, "dqctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (held != NULL)
		freeReplyObject(held);
	if (rc != NULL)
		redisFree(rc);
	exit(status);
}

static void __attribute__((format(printf, 1, 2)))
note(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "dqctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: dqctl [-jy] [-h host] [-p port] [-a password] [-c file] "
	    "command [args]\n"
	    "       dqctl [-jy] [-d dir | -c file] [-T tmpdir] command [args]\n"
	    "\n"
	    "server commands (talk to a running dqd):\n"
	    "  status              version, uptime, processes, clients, "
	    "load, sizes\n"
	    "  queues              every queue with its message counts\n"
	    "  stat QUEUE          all the figures of one queue\n"
	    "  peek QUEUE [N]      the N (default %d) earliest messages\n"
	    "  delete QUEUE        delete a queue and its messages "
	    "(asks unless -y)\n"
	    "data directory commands (also while dqd runs, except recover):\n"
	    "  backup DIR          consistent hot backup into the new "
	    "directory DIR\n"
	    "  verify              check every database file\n"
	    "  checkpoint          checkpoint and remove old log files\n"
	    "  recover [--catastrophic]  run recovery (dqd must be stopped)\n"
	    "\n"
	    "  -h, --host HOST     server address (default 127.0.0.1)\n"
	    "  -p, --port PORT     server port (default 6379)\n"
	    "  -a, --password PW   password (or DQCTL_AUTH in the "
	    "environment)\n"
	    "  -c, --config FILE   take port, password and data_dir from "
	    "dqd.conf\n"
	    "  -d, --data-dir DIR  the data directory\n"
	    "  -T, --tmpdir DIR    where verify copies a running server's "
	    "data\n"
	    "  -j, --json          JSON output for scripts\n"
	    "  -y, --yes           do not ask for confirmation\n"
	    "  -V, --version       print the version\n"
	    "      --help          this help\n"
	    "See dqctl(8).\n", PEEK_DEFAULT);
	exit(status);
}

/* ---- output helpers -------------------------------------------------- */

static void
human_bytes(char *out, size_t len, unsigned long long n)
{
	if (n >= 1024ULL * 1024 * 1024)
		snprintf(out, len, "%.1f GiB", n / (1024.0 * 1024 * 1024));
	else if (n >= 1024 * 1024)
		snprintf(out, len, "%.1f MiB", n / (1024.0 * 1024));
	else if (n >= 1024)
		snprintf(out, len, "%.1f KiB", n / 1024.0);
	else
		snprintf(out, len, "%llu B", n);
}

/* "3d 4h", "4h 5m", "5m 6s", "6s", "120ms". */
static void
human_duration(char *out, size_t len, long long ms)
{
	long long	s = ms / 1000;

	if (ms < 1000)
		snprintf(out, len, "%lldms", ms);
	else if (s < 60)
		snprintf(out, len, "%llds", s);
	else if (s < 3600)
		snprintf(out, len, "%lldm %llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

/* A due time relative to now: "now", "in 5m 6s", "3s ago". */
static void
human_due(char *out, size_t len, long long due_ms)
{
	long long	now = (long long)now_ms(), d = due_ms - now;
	char		t[32];

	if (d > -1000 && d < 1000) {
		snprintf(out, len, "now");
		return;
	}
	human_duration(t, sizeof(t), d < 0 ? -d : d);
	snprintf(out, len, d < 0 ? "%s ago" : "in %s", t);
}

/* Length of the UTF-8 sequence at p (0: not one) and its code point. */
static size_t
utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t		need, i;
	uint32_t	c;

	*cp = p[0];
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		need = 2;
		c = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		need = 3;
		c = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		need = 4;
		c = p[0] & 0x07;
	} else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((need == 2 && c < 0x80) || (need == 3 && c < 0x800) ||
	    (need == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return need;
}

static size_t
utf8_len(const unsigned char *p, size_t n)
{
	uint32_t	c;

	return utf8_decode(p, n, &c);
}

static int
valid_utf8(const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, l;

	while (i < n) {
		if ((l = utf8_len(p + i, n - i)) == 0)
			return 0;
		i += l;
	}
	return 1;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD. */
static void
json_str(const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, l;

	putchar('"');
	while (i < n) {
		if (p[i] == '"' || p[i] == '\\') {
			printf("\\%c", p[i]);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			if (p[i] == '\n')
				fputs("\\n", stdout);
			else if (p[i] == '\t')
				fputs("\\t", stdout);
			else if (p[i] == '\r')
				fputs("\\r", stdout);
			else
				printf("\\u%04x", p[i]);
			i++;
		} else if ((l = utf8_len(p + i, n - i)) == 0) {
			fputs("\\ufffd", stdout);
			i++;
		} else {
			fwrite(p + i, 1, l, stdout);
			i += l;
		}
	}
	putchar('"');
}

static void
json_cstr(const char *s)
{
	if (s == NULL)
		fputs("null", stdout);
	else
		json_str(s, strlen(s));
}

static void
base64(const char *s, size_t n)
{
	static const char	 tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 v;
	size_t			 i;

	putchar('"');
	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		printf("%c%c%c%c", tab[v >> 18], tab[(v >> 12) & 63],
		    tab[(v >> 6) & 63], tab[v & 63]);
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		printf("%c%c==", tab[v >> 18], tab[(v >> 12) & 63]);
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		printf("%c%c%c=", tab[v >> 18], tab[(v >> 12) & 63],
		    tab[(v >> 6) & 63]);
	}
	putchar('"');
}

/* "key": "text" and, if the bytes are not UTF-8, "key_base64": "...". */
static void
json_bytes_field(const char *key, const char *s, size_t n)
{
	printf("\"%s\": ", key);
	json_str(s, n);
	if (!valid_utf8(s, n)) {
		printf(", \"%s_base64\": ", key);
		base64(s, n);
	}
}

/*
 * Columns a printable character takes on a terminal of this locale, or 0
 * if it is to be written as \xHH: printable ASCII; under a UTF-8 locale
 * also the printable characters beyond it (a Chinese name stays
 * readable: two columns a character).
 */
static int	utf8_term;	/* LC_CTYPE's codeset is UTF-8 */

static size_t
char_cols(const unsigned char *p, size_t n, size_t *len)
{
	uint32_t	c;
	size_t		l;
	int		w;

	*len = 1;
	if (p[0] < 0x80)
		return isprint(p[0]) ? 1 : 0;
	if (!utf8_term || (l = utf8_decode(p, n, &c)) == 0 ||
	    !iswprint((wint_t)c) || (w = wcwidth((wchar_t)c)) <= 0)
		return 0;
	*len = l;
	return (size_t)w;
}

/* Columns a string made by printable() takes. */
static size_t
text_cols(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = strlen(s), i = 0, cols = 0, l, w;

	while (i < n) {
		w = char_cols(p + i, n - i, &l);
		cols += w ? w : 1;
		i += l;
	}
	return cols;
}

/*
 * Bytes made printable for a terminal, redis-cli style: printable
 * characters as they are (see char_cols) but a backslash doubled, other
 * bytes as \xHH, cut at max columns with "...".
 */
static char *
printable(const char *s, size_t n, size_t max)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			*out;
	size_t			 i, o = 0, cols = 0, cap, l, w;

	cap = (n > max ? max : n) * 4 + 8;
	if ((out = dq_malloc(cap)) == NULL)
		fail(EX_ERR, "out of memory");
	for (i = 0; i < n; i += l) {
		if (cols >= max) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		w = char_cols(p + i, n - i, &l);
		if (p[i] == '\\') {
			/* Else "\x01" and byte 1 would look the same. */
			out[o++] = '\\';
			out[o++] = '\\';
			cols += 2;
		} else if (w > 0) {
			memcpy(out + o, p + i, l);
			o += l;
			cols += w;
		} else {
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
			cols += 4;
		}
	}
	out[o] = '\0';
	return out;
}

/* A table for people: columns padded, numbers right-aligned. */
struct table {
	size_t	 ncols;
	char	**cells;	/* row-major, owned */
	size_t	 nrows, cap;
	int	 right[8];
};

static void
table_add(struct table *t, ...)
{
	va_list		 ap;
	char		**nc;
	const char	*s;
	size_t		 i;

	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		if ((nc = dq_reallocarray(t->cells, t->cap * t->ncols,
		    sizeof(*nc))) == NULL)
			fail(EX_ERR, "out of memory");
		t->cells = nc;
	}
	va_start(ap, t);
	for (i = 0; i < t->ncols; i++) {
		s = va_arg(ap, const char *);
		if ((t->cells[t->nrows * t->ncols + i] = dq_strdup(s)) == NULL)
			fail(EX_ERR, "out of memory");
	}
	va_end(ap);
	t->nrows++;
}

static void
table_print(struct table *t)
{
	size_t	w[8] = { 0 }, r, c, l, last, pad;
	char	*s;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if ((l = text_cols(t->cells[r * t->ncols + c])) > w[c])
				w[c] = l;
	for (r = 0; r < t->nrows; r++) {
		/* No padding after the last cell that has something. */
		for (last = t->ncols; last > 1 &&
		    *t->cells[r * t->ncols + last - 1] == '\0'; last--)
			;
		for (c = 0; c < last; c++) {
			s = t->cells[r * t->ncols + c];
			/* Padded by columns: a character may take 1 or 2. */
			pad = w[c] - text_cols(s);
			if (t->right[c])
				printf("%*s", (int)pad, "");
			fputs(s, stdout);
			if (!t->right[c] && c < last - 1)
				printf("%*s", (int)pad, "");
			if (c < last - 1)
				fputs("  ", stdout);
		}
		putchar('\n');
	}
	for (r = 0; r < t->nrows * t->ncols; r++)
		dq_free(t->cells[r]);
	dq_free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* ---- the server ------------------------------------------------------ */

static int
is_error(const redisReply *r, const char *prefix)
{
	return r->type == REDIS_REPLY_ERROR && r->str != NULL &&
	    strncasecmp(r->str, prefix, strlen(prefix)) == 0;
}

static int
is_unknown_command(const redisReply *r)
{
	return is_error(r, "ERR unknown command");
}

static void
check_reply(redisReply *r)
{
	if (r == NULL)
		fail(EX_UNREACH, "lost the connection to %s:%d: %s", host, port,
		    rc->errstr[0] ? rc->errstr : "no reply");
	held = r;
	/* Sent at once to a connection over the limit, which is closed. */
	if (is_error(r, "ERR max number of clients"))
		fail(EX_UNREACH, "%s:%d refused the connection: it has "
		    "maxclients clients already (see maxclients in dqd.conf)",
		    host, port);
	if (is_error(r, "NOAUTH"))
		fail(EX_AUTH, "%s:%d needs a password: give it with -a or in "
		    "DQCTL_AUTH (or -c with the server's dqd.conf)", host, port);
}

static redisReply *
call(int argc, const char **argv, const size_t *lens)
{
	redisReply	*r;

	r = redisCommandArgv(rc, argc, argv, lens);
	check_reply(r);
	return held = r;
}

static redisReply *
call1(const char *a, const char *b, size_t blen)
{
	const char	*argv[2] = { a, b };
	size_t		 lens[2] = { strlen(a), blen };

	return call(b != NULL ? 2 : 1, argv, lens);
}

/* Done with the reply from call() or get_reply(). */
static void
drop(redisReply *r)
{
	if (r == held)
		held = NULL;
	freeReplyObject(r);
}

static void
append(int argc, const char **argv, const size_t *lens)
{
	if (redisAppendCommandArgv(rc, argc, argv, lens) != REDIS_OK)
		fail(EX_ERR, "out of memory");
}

static redisReply *
get_reply(void)
{
	void	*r = NULL;

	if (redisGetReply(rc, &r) != REDIS_OK)
		r = NULL;
	check_reply(r);
	return held = r;
}

static void
server_connect(void)
{
	struct timeval	 tv = { 2, 0 };
	redisReply	*r;

	rc = redisConnectWithTimeout(host, port, tv);
	if (rc == NULL)
		fail(EX_ERR, "out of memory");
	if (rc->err)
		fail(EX_UNREACH, "cannot connect to %s:%d: %s (is dqd running "
		    "there? give its address with -h and -p)", host, port,
		    rc->errstr);
	tv.tv_sec = 30;
	if (redisSetTimeout(rc, tv) != REDIS_OK)
		fail(EX_UNREACH, "%s:%d: %s", host, port, rc->errstr);
	if (password != NULL && *password != '\0') {
		r = call1("AUTH", password, strlen(password));
		if (r->type == REDIS_REPLY_ERROR)
			fail(EX_AUTH, "%s:%d refused the password: %s (check "
			    "-a, DQCTL_AUTH or requirepass)", host, port,
			    r->str);
		drop(r);
	}
}

static void
info_free(struct info *in)
{
	size_t	i;

	for (i = 0; i < in->n; i++)
		dq_free(in->v[i].k);	/* v points into the same block */
	dq_free(in->v);
	memset(in, 0, sizeof(*in));
}

static void
info_fetch(struct info *in)
{
	redisReply	*r;
	char		*line, *next, *colon, *copy;
	size_t		 cap = 0, len;
	struct kv	*nv;

	memset(in, 0, sizeof(*in));
	r = call1("INFO", "all", 3);
	if (r->type != REDIS_REPLY_STRING)
		fail(EX_ERR, "INFO: unexpected reply%s%s", r->str ? ": " : "",
		    r->str ? r->str : "");
	for (line = r->str; line != NULL && *line != '\0'; line = next) {
		len = strcspn(line, "\r\n");
		next = line + len;
		next += strspn(next, "\r\n");
		if (len == 0 || line[0] == '#')
			continue;
		if ((colon = memchr(line, ':', len)) == NULL)
			continue;
		if (in->n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = dq_reallocarray(in->v, cap,
			    sizeof(*nv))) == NULL)
				fail(EX_ERR, "out of memory");
			in->v = nv;
		}
		if ((copy = dq_memdup(line, len)) == NULL)
			fail(EX_ERR, "out of memory");
		copy[colon - line] = '\0';
		in->v[in->n].k = copy;
		in->v[in->n].v = copy + (colon - line) + 1;
		in->n++;
	}
	drop(r);
}

static const char *
info_get(const struct info *in, const char *key)
{
	size_t	i;

	for (i = 0; i < in->n; i++)
		if (strcmp(in->v[i].k, key) == 0)
			return in->v[i].v;
	return NULL;
}

static long long
info_ll(const struct info *in, const char *key, int *have)
{
	const char	*v = info_get(in, key);
	long long	 n;

	if (v == NULL || parse_ll(v, strlen(v), &n) == -1) {
		if (have != NULL)
			*have = 0;
		return 0;
	}
	if (have != NULL)
		*have = 1;
	return n;
}

static int
cmp_name(const void *a, const void *b)
{
	const struct name	*x = a, *y = b;
	size_t			 l = x->len < y->len ? x->len : y->len;
	int			 c = memcmp(x->p, y->p, l);

	if (c != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static void
names_add(struct names *ns, const char *p, size_t len)
{
	struct name	*nv;

	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 64;
		if ((nv = dq_reallocarray(ns->v, ns->cap,
		    sizeof(*nv))) == NULL)
			fail(EX_ERR, "out of memory");
		ns->v = nv;
	}
	if ((ns->v[ns->n].p = dq_memdup(p, len)) == NULL)
		fail(EX_ERR, "out of memory");
	ns->v[ns->n].len = len;
	ns->n++;
}

static void
names_free(struct names *ns)
{
	size_t	i;

	for (i = 0; i < ns->n; i++)
		dq_free(ns->v[i].p);
	dq_free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

/* Every queue, by SCAN, in byte order. */
static void
collect_queues(struct names *ns)
{
	const char	*argv[4];
	size_t		 lens[4], i;
	char		 cursor[32] = "0";
	redisReply	*r, *keys;

	memset(ns, 0, sizeof(*ns));
	do {
		argv[0] = "SCAN";
		argv[1] = cursor;
		argv[2] = "COUNT";
		argv[3] = "1000";
		for (i = 0; i < 4; i++)
			lens[i] = strlen(argv[i]);
		r = call(4, argv, lens);
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY ||
		    r->element[0]->len >= sizeof(cursor))
			fail(EX_ERR, "SCAN: unexpected reply%s%s",
			    r->type == REDIS_REPLY_ERROR ? ": " : "",
			    r->type == REDIS_REPLY_ERROR ? r->str : "");
		memcpy(cursor, r->element[0]->str, r->element[0]->len);
		cursor[r->element[0]->len] = '\0';
		keys = r->element[1];
		for (i = 0; i < keys->elements; i++)
			if (keys->element[i]->type == REDIS_REPLY_STRING)
				names_add(ns, keys->element[i]->str,
				    keys->element[i]->len);
		drop(r);
	} while (strcmp(cursor, "0") != 0);
	if (ns->n > 0)
		qsort(ns->v, ns->n, sizeof(*ns->v), cmp_name);
}

/* An integer out of a reply element (integer or decimal string). */
static int
reply_ll(const redisReply *r, long long *out)
{
	if (r->type == REDIS_REPLY_INTEGER) {
		*out = r->integer;
		return 0;
	}
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		return parse_ll(r->str, r->len, out);
	return -1;
}

static void
qstat_parse(const redisReply *r, struct qstat *q, const struct name *nm)
{
	const redisReply	*f;
	size_t			 i, k;

	memset(q, 0, sizeof(*q));
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
		fail(EX_ERR, "QSTAT %.*s: unexpected reply%s%s",
		    (int)nm->len, nm->p,
		    r->type == REDIS_REPLY_ERROR ? ": " : "",
		    r->type == REDIS_REPLY_ERROR ? r->str : "");
	for (i = 0; i < r->elements; i += 2) {
		f = r->element[i];
		if (f->type != REDIS_REPLY_STRING &&
		    f->type != REDIS_REPLY_STATUS)
			continue;
		for (k = 0; k < Q_NFIELDS; k++)
			if (f->len == strlen(qfields[k]) &&
			    memcmp(f->str, qfields[k], f->len) == 0 &&
			    reply_ll(r->element[i + 1], &q->val[k]) == 0)
				q->have[k] = 1;
	}
	/* No due time: nothing waiting. */
	if (q->have[Q_NEXT_DUE] && q->val[Q_NEXT_DUE] <= 0)
		q->have[Q_NEXT_DUE] = 0;
}

static long long
scard(const struct name *nm)
{
	redisReply	*r;
	long long	 n;

	r = call1("SCARD", nm->p, nm->len);
	if (r->type != REDIS_REPLY_INTEGER)
		fail(EX_ERR, "SCARD: %s", r->type == REDIS_REPLY_ERROR ?
		    r->str : "unexpected reply");
	n = r->integer;
	drop(r);
	return n;
}

/*
 * QSTAT for every queue, pipelined; 0 if the server does not know QSTAT
 * (then only SCARD's count is filled in).
 */
/* Pipelines "cmd NAME" for every name (cmd is 5 letters long). */
static void
append_each(const struct names *ns, const char *cmd)
{
	const char	*argv[2];
	size_t		 lens[2], i;

	for (i = 0; i < ns->n; i++) {
		argv[0] = cmd;
		lens[0] = 5;
		argv[1] = ns->v[i].p;
		lens[1] = ns->v[i].len;
		append(2, argv, lens);
	}
}

static int
qstat_all(const struct names *ns, struct qstat *qs)
{
	size_t		 i;
	redisReply	*r;
	int		 known = 1;

	append_each(ns, "QSTAT");
	for (i = 0; i < ns->n; i++) {
		r = get_reply();
		if (i == 0 && is_unknown_command(r))
			known = 0;
		if (known)
			qstat_parse(r, &qs[i], &ns->v[i]);
		drop(r);
	}
	if (known)
		return 1;
	append_each(ns, "SCARD");
	for (i = 0; i < ns->n; i++) {
		r = get_reply();
		memset(&qs[i], 0, sizeof(qs[i]));
		if (r->type == REDIS_REPLY_INTEGER) {
			qs[i].val[Q_MESSAGES] = r->integer;
			qs[i].have[Q_MESSAGES] = 1;
		}
		drop(r);
	}
	return 0;
}

/* ---- server commands ------------------------------------------------- */

static void
print_pids_json(const char *list)
{
	const char	*p = list;
	size_t		 len;
	int		 first = 1;

	if (list == NULL) {
		fputs("null", stdout);
		return;
	}
	putchar('[');
	while (*p != '\0') {
		len = strcspn(p, ", ");
		if (len > 0) {
			printf("%s%.*s", first ? "" : ", ", (int)len, p);
			first = 0;
		}
		p += len;
		p += strspn(p, ", ");
	}
	putchar(']');
}

static int
cmd_status(int argc, char **argv)
{
	struct info	 a, b;
	struct names	 ns;
	struct qstat	*qs;
	struct timespec	 ts = { 1, 0 };
	uint64_t	 t0, t1;
	double		 secs, cps, eps, dps;
	long long	 messages = 0, uptime, queues;
	const char	*pids, *role, *ver;
	char		 h1[32], h2[32], h3[32];
	int		 have_msgs, have_q;
	size_t		 i;

	if (argc != 1)
		fail(EX_USAGE, "usage: dqctl status");
	server_connect();
	info_fetch(&a);
	t0 = mono_ms();
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	info_fetch(&b);
	t1 = mono_ms();
	secs = (t1 - t0) / 1000.0;
	/* Our own INFO is one of the commands counted in between. */
	cps = (info_ll(&b, "total_commands_processed", NULL) -
	    info_ll(&a, "total_commands_processed", NULL) - 1) / secs;
	if (cps < 0)
		cps = 0;
	eps = (info_ll(&b, "messages_enqueued", NULL) -
	    info_ll(&a, "messages_enqueued", NULL)) / secs;
	dps = (info_ll(&b, "messages_delivered", NULL) -
	    info_ll(&a, "messages_delivered", NULL)) / secs;

	/* Totals the server may not report yet: add them up here. */
	messages = info_ll(&b, "total_messages", &have_msgs);
	queues = info_ll(&b, "total_queues", &have_q);
	if (!have_msgs || !have_q) {
		collect_queues(&ns);
		if ((qs = dq_calloc(ns.n ? ns.n : 1, sizeof(*qs))) == NULL)
			fail(EX_ERR, "out of memory");
		if (!have_msgs) {
			(void)qstat_all(&ns, qs);
			for (i = 0; i < ns.n; i++)
				messages += qs[i].val[Q_MESSAGES];
		}
		if (!have_q)
			queues = (long long)ns.n;
		dq_free(qs);
		names_free(&ns);
	}
	pids = info_get(&b, "worker_pids");
	role = info_get(&b, "role");
	ver = info_get(&b, "dqd_version");
	uptime = info_ll(&b, "uptime_in_seconds", NULL);

	if (json) {
		printf("{\"server\": ");
		json_cstr(host);
		printf(", \"port\": %d, \"version\": ", port);
		json_cstr(ver);
		printf(", \"role\": ");
		json_cstr(role);
		printf(", \"uptime_s\": %lld, \"master_pid\": %lld, "
		    "\"workers\": %lld, \"worker_pids\": ", uptime,
		    info_ll(&b, "process_id", NULL),
		    info_ll(&b, "workers", NULL));
		print_pids_json(pids);
		printf(", \"clients\": %lld, \"maxclients\": %lld, "
		    "\"commands_per_s\": %.1f, \"commands_total\": %lld, "
		    "\"enqueued_per_s\": %.1f, \"delivered_per_s\": %.1f, "
		    "\"queues\": %lld, \"messages\": %lld, "
		    "\"data_bytes\": %lld, \"log_bytes\": %lld, "
		    "\"durability\": ",
		    info_ll(&b, "connected_clients", NULL),
		    info_ll(&b, "maxclients", NULL), cps,
		    info_ll(&b, "total_commands_processed", NULL), eps, dps,
		    queues, messages, info_ll(&b, "data_bytes", NULL),
		    info_ll(&b, "log_bytes", NULL));
		json_cstr(info_get(&b, "durability"));
		printf(", \"last_checkpoint\": %lld, \"cache_hit_ratio\": %s, "
		    "\"worker_restarts\": %lld, \"pool_restarts\": %lld, "
		    "\"data_dir\": ",
		    info_ll(&b, "last_checkpoint_time", NULL),
		    info_get(&b, "cache_hit_ratio") ?
		    info_get(&b, "cache_hit_ratio") : "null",
		    info_ll(&b, "worker_restarts", NULL),
		    info_ll(&b, "pool_restarts", NULL));
		json_cstr(info_get(&b, "data_dir"));
		printf(", \"config_file\": ");
		json_cstr(info_get(&b, "config_file"));
		printf("}\n");
	} else {
		human_duration(h1, sizeof(h1), uptime * 1000);
		printf("server           %s:%d, dqd %s, role %s\n", host, port,
		    ver ? ver : "?", role ? role : "?");
		printf("uptime           %s\n", h1);
		printf("master pid       %lld\n",
		    info_ll(&b, "process_id", NULL));
		printf("workers          %lld%s%s\n",
		    info_ll(&b, "workers", NULL), pids ? ": " : "",
		    pids ? pids : "");
		printf("clients          %lld connected (max %lld)\n",
		    info_ll(&b, "connected_clients", NULL),
		    info_ll(&b, "maxclients", NULL));
		printf("commands/s       %.1f (%lld since start)\n", cps,
		    info_ll(&b, "total_commands_processed", NULL));
		printf("messages/s       %.1f enqueued, %.1f delivered\n", eps,
		    dps);
		printf("queues           %lld\n", queues);
		printf("messages         %lld\n", messages);
		human_bytes(h2, sizeof(h2), (unsigned long long)
		    info_ll(&b, "data_bytes", NULL));
		human_bytes(h3, sizeof(h3), (unsigned long long)
		    info_ll(&b, "log_bytes", NULL));
		printf("data             %s in %s\n", h2,
		    info_get(&b, "data_dir") ? info_get(&b, "data_dir") : "?");
		printf("log              %s\n", h3);
		printf("durability       %s\n", info_get(&b, "durability") ?
		    info_get(&b, "durability") : "?");
		if (info_ll(&b, "last_checkpoint_time", NULL) > 0) {
			human_duration(h1, sizeof(h1), ((long long)now_ms() /
			    1000 - info_ll(&b, "last_checkpoint_time",
			    NULL)) * 1000);
			printf("last checkpoint  %s ago\n", h1);
		} else
			printf("last checkpoint  none yet\n");
		printf("cache hit ratio  %s\n", info_get(&b,
		    "cache_hit_ratio") ? info_get(&b, "cache_hit_ratio") : "?");
		printf("restarts         %lld workers, %lld whole pool\n",
		    info_ll(&b, "worker_restarts", NULL),
		    info_ll(&b, "pool_restarts", NULL));
	}
	info_free(&a);
	info_free(&b);
	return EX_OK;
}

static void
cell_ll(char *out, size_t len, const struct qstat *q, int k)
{
	if (!q->have[k])
		snprintf(out, len, "-");
	else if (k == Q_NEXT_DUE)
		human_due(out, len, q->val[k]);
	else
		snprintf(out, len, "%lld", q->val[k]);
}

static void
json_qfield(const struct qstat *q, int k)
{
	printf("\"%s\": ", qfields[k]);
	if (q->have[k])
		printf("%lld", q->val[k]);
	else
		fputs("null", stdout);
}

static int
cmd_queues(int argc, char **argv)
{
	struct names	 ns;
	struct qstat	*qs;
	struct table	 t;
	char		 c[Q_NFIELDS][48], *name;
	size_t		 i;
	int		 k, known;

	if (argc != 1)
		fail(EX_USAGE, "usage: dqctl queues");
	server_connect();
	collect_queues(&ns);
	if ((qs = dq_calloc(ns.n ? ns.n : 1, sizeof(*qs))) == NULL)
		fail(EX_ERR, "out of memory");
	known = qstat_all(&ns, qs);
	if (!known)
		note("this dqd has no QSTAT: only message counts are shown");
	if (json) {
		printf("[");
		for (i = 0; i < ns.n; i++) {
			printf("%s\n  {", i ? "," : "");
			json_bytes_field("queue", ns.v[i].p, ns.v[i].len);
			for (k = 0; k < Q_NFIELDS; k++) {
				fputs(", ", stdout);
				json_qfield(&qs[i], k);
			}
			putchar('}');
		}
		printf("%s]\n", ns.n ? "\n" : "");
	} else if (ns.n == 0)
		printf("no queues\n");
	else {
		memset(&t, 0, sizeof(t));
		t.ncols = 6;
		for (k = 1; k < 5; k++)
			t.right[k] = 1;
		table_add(&t, "QUEUE", "MESSAGES", "READY", "DELAYED",
		    "RESERVED", "NEXT DUE");
		for (i = 0; i < ns.n; i++) {
			for (k = 0; k < Q_NFIELDS; k++)
				cell_ll(c[k], sizeof(c[k]), &qs[i], k);
			name = printable(ns.v[i].p, ns.v[i].len, 64);
			table_add(&t, name, c[0], c[1], c[2], c[3], c[4]);
			dq_free(name);
		}
		table_print(&t);
	}
	dq_free(qs);
	names_free(&ns);
	return EX_OK;
}

static void
json_value(const redisReply *v)
{
	long long	n;

	if (v->type == REDIS_REPLY_INTEGER)
		printf("%lld", v->integer);
	else if (v->type == REDIS_REPLY_NIL)
		fputs("null", stdout);
	else if ((v->type == REDIS_REPLY_STRING ||
	    v->type == REDIS_REPLY_STATUS) && v->len < 30 &&
	    parse_ll(v->str, v->len, &n) == 0)
		printf("%lld", n);
	else if (v->type == REDIS_REPLY_STRING ||
	    v->type == REDIS_REPLY_STATUS)
		json_str(v->str, v->len);
	else
		fputs("null", stdout);
}

static int
cmd_stat(int argc, char **argv)
{
	struct name	 nm;
	struct table	 t;
	redisReply	*r, *f, *v;
	char		 val[96], due[48], *fs, *vs;
	long long	 n;
	size_t		 i;
	int		 k;

	if (argc != 2)
		fail(EX_USAGE, "usage: dqctl stat QUEUE");
	nm.p = argv[1];
	nm.len = strlen(argv[1]);
	server_connect();
	r = call1("QSTAT", nm.p, nm.len);
	if (is_unknown_command(r)) {
		drop(r);
		note("this dqd has no QSTAT: only the message count is shown");
		n = scard(&nm);
		if (json) {
			printf("{");
			json_bytes_field("queue", nm.p, nm.len);
			printf(", \"messages\": %lld", n);
			for (k = 1; k < Q_NFIELDS; k++)
				printf(", \"%s\": null", qfields[k]);
			printf("}\n");
		} else {
			printf("queue        %s\nmessages     %lld\n", nm.p, n);
			for (k = 1; k < Q_NFIELDS; k++)
				printf("%-12s -\n", qfields[k]);
		}
		return EX_OK;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
		fail(EX_ERR, "QSTAT %s: %s", nm.p, r->type ==
		    REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	if (json) {
		printf("{");
		json_bytes_field("queue", nm.p, nm.len);
		for (i = 0; i < r->elements; i += 2) {
			f = r->element[i];
			fputs(", ", stdout);
			if (f->type == REDIS_REPLY_STRING ||
			    f->type == REDIS_REPLY_STATUS)
				json_str(f->str, f->len);
			else
				printf("\"field%zu\"", i / 2);
			fputs(": ", stdout);
			json_value(r->element[i + 1]);
		}
		printf("}\n");
	} else {
		memset(&t, 0, sizeof(t));
		t.ncols = 2;
		fs = printable(nm.p, nm.len, 256);
		table_add(&t, "queue", fs);
		dq_free(fs);
		for (i = 0; i < r->elements; i += 2) {
			f = r->element[i];
			v = r->element[i + 1];
			fs = f->type == REDIS_REPLY_STRING ||
			    f->type == REDIS_REPLY_STATUS ?
			    printable(f->str, f->len, 64) : dq_strdup("?");
			if (fs == NULL)
				fail(EX_ERR, "out of memory");
			if (v->type == REDIS_REPLY_INTEGER)
				snprintf(val, sizeof(val), "%lld", v->integer);
			else if (v->type == REDIS_REPLY_STRING ||
			    v->type == REDIS_REPLY_STATUS) {
				vs = printable(v->str, v->len, 64);
				snprintf(val, sizeof(val), "%s", vs);
				dq_free(vs);
			} else
				snprintf(val, sizeof(val), "-");
			if (strcmp(fs, "next_due_ms") == 0 &&
			    reply_ll(v, &n) == 0 && n > 0) {
				human_due(due, sizeof(due), n);
				snprintf(val + strlen(val), sizeof(val) -
				    strlen(val), " (%s)", due);
			}
			table_add(&t, fs, val);
			dq_free(fs);
		}
		table_print(&t);
	}
	drop(r);
	return EX_OK;
}

static int
cmd_peek(int argc, char **argv)
{
	struct table	 t;
	redisReply	*r, *m;
	const char	*av[3];
	size_t		 lens[3], i;
	long long	 n = PEEK_DEFAULT, due, dl;
	char		 count[32], dues[48], dls[32], *id, *body;

	if (argc < 2 || argc > 3)
		fail(EX_USAGE, "usage: dqctl peek QUEUE [N]");
	if (argc == 3 && (parse_ll(argv[2], strlen(argv[2]), &n) == -1 ||
	    n < 1 || n > 100000))
		fail(EX_USAGE, "peek: N must be an integer from 1 to 100000, "
		    "not \"%s\"", argv[2]);
	snprintf(count, sizeof(count), "%lld", n);
	server_connect();
	av[0] = "QPEEK";
	av[1] = argv[1];
	av[2] = count;
	for (i = 0; i < 3; i++)
		lens[i] = strlen(av[i]);
	r = call(3, av, lens);
	if (is_unknown_command(r))
		fail(EX_ERR, "this dqd has no QPEEK: upgrade dqd to peek at "
		    "messages");
	if (r->type != REDIS_REPLY_ARRAY)
		fail(EX_ERR, "QPEEK %s: %s", argv[1], r->type ==
		    REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	for (i = 0; i < r->elements; i++) {
		m = r->element[i];
		if (m->type != REDIS_REPLY_ARRAY || m->elements < 4 ||
		    m->element[0]->type != REDIS_REPLY_STRING ||
		    m->element[1]->type != REDIS_REPLY_STRING ||
		    reply_ll(m->element[2], &due) == -1 ||
		    reply_ll(m->element[3], &dl) == -1)
			fail(EX_ERR, "QPEEK %s: unexpected reply", argv[1]);
	}
	if (json) {
		printf("[");
		for (i = 0; i < r->elements; i++) {
			m = r->element[i];
			(void)reply_ll(m->element[2], &due);
			(void)reply_ll(m->element[3], &dl);
			printf("%s\n  {", i ? "," : "");
			json_bytes_field("id", m->element[0]->str,
			    m->element[0]->len);
			fputs(", ", stdout);
			json_bytes_field("body", m->element[1]->str,
			    m->element[1]->len);
			printf(", \"due_unix_ms\": %lld, \"deliveries\": %lld}",
			    due, dl);
		}
		printf("%s]\n", r->elements ? "\n" : "");
	} else if (r->elements == 0)
		printf("queue %s is empty\n", argv[1]);
	else {
		memset(&t, 0, sizeof(t));
		t.ncols = 4;
		t.right[2] = 1;
		table_add(&t, "ID", "DUE", "DELIVERIES", "BODY");
		for (i = 0; i < r->elements; i++) {
			m = r->element[i];
			(void)reply_ll(m->element[2], &due);
			(void)reply_ll(m->element[3], &dl);
			human_due(dues, sizeof(dues), due);
			snprintf(dls, sizeof(dls), "%lld", dl);
			id = printable(m->element[0]->str, m->element[0]->len,
			    40);
			body = printable(m->element[1]->str,
			    m->element[1]->len, BODY_WIDTH);
			table_add(&t, id, dues, dls, body);
			dq_free(id);
			dq_free(body);
		}
		table_print(&t);
	}
	drop(r);
	return EX_OK;
}

/* 1 if the user typed y or yes. */
static int
confirm(const char *queue, long long n)
{
	char	line[64];
	size_t	l;

	fprintf(stderr, "Delete queue \"%s\" and its %lld message%s? This "
	    "cannot be undone. [y/N] ", queue, n, n == 1 ? "" : "s");
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 0;
	l = strcspn(line, "\r\n");
	line[l] = '\0';
	return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static int
cmd_delete(int argc, char **argv)
{
	struct name	 nm;
	redisReply	*r;
	long long	 n;

	if (argc != 2)
		fail(EX_USAGE, "usage: dqctl delete QUEUE");
	nm.p = argv[1];
	nm.len = strlen(argv[1]);
	if (!yes && !isatty(STDIN_FILENO))
		fail(EX_USAGE, "refusing to delete queue \"%s\" without "
		    "confirmation: the input is not a terminal; add -y",
		    argv[1]);
	server_connect();
	n = scard(&nm);
	if (n == 0)
		fail(EX_ERR, "no queue \"%s\": nothing deleted (dqctl queues "
		    "lists them)", argv[1]);
	if (!yes && !confirm(argv[1], n)) {
		note("nothing deleted");
		return EX_ERR;
	}
	r = call1("DEL", nm.p, nm.len);
	if (r->type != REDIS_REPLY_INTEGER)
		fail(EX_ERR, "DEL %s: %s", argv[1], r->type ==
		    REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	if (r->integer == 0)
		fail(EX_ERR, "no queue \"%s\": nothing deleted", argv[1]);
	drop(r);
	if (json) {
		printf("{");
		json_bytes_field("queue", nm.p, nm.len);
		printf(", \"deleted\": true, \"messages\": %lld}\n", n);
	} else
		printf("deleted queue %s (%lld message%s)\n", argv[1], n,
		    n == 1 ? "" : "s");
	return EX_OK;
}

/* ---- data directory commands ----------------------------------------- */

static void
on_signal(int sig)
{
	admin_stop = 1;
}

static void
catch_signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	if (sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1)
		fail(EX_ERR, "sigaction: %s", strerror(errno));
}

/*
 * Run as the owner of the data directory when started as root, so that
 * no file dqd must write (logs, regions, dqd.lock) ends up owned by root.
 */
static void
become_owner(const struct stat *st)
{
	if (geteuid() != 0 || st->st_uid == 0)
		return;
	if (setgroups(0, NULL) == -1 || setgid(st->st_gid) == -1 ||
	    setuid(st->st_uid) == -1)
		fail(EX_ERR, "cannot become the owner (uid %d) of %s: %s",
		    (int)st->st_uid, data_dir, strerror(errno));
}

static void
check_data_dir(struct stat *st)
{
	if (data_dir == NULL)
		fail(EX_USAGE, "%s works on the data directory: give it with "
		    "-d DIR, or give dqd's configuration with -c FILE",
		    cmdname);
	if (stat(data_dir, st) == -1)
		fail(EX_ERR, "data directory %s: %s", data_dir,
		    strerror(errno));
	if (!S_ISDIR(st->st_mode))
		fail(EX_ERR, "%s is not a directory", data_dir);
	if (!admin_is_data_dir(data_dir))
		fail(EX_ERR, "%s is not a dqd data directory (it has no "
		    "queues.db): check -d, or data_dir in the configuration",
		    data_dir);
}

/* 1: we hold dqd.lock (no dqd runs); 0: someone else holds it. */
static int
take_lock(void)
{
	char	path[PATH_MAX];
	int	fd;

	if (snprintf(path, sizeof(path), "%s/dqd.lock", data_dir) >=
	    (int)sizeof(path))
		fail(EX_ERR, "%s: path too long", data_dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 &&
	    (errno != ENOENT || (fd = open(path, O_RDWR | O_CREAT |
	    O_CLOEXEC, 0600)) == -1))
		fail(EX_ERR, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		lock_fd = fd;
		return 1;
	}
	if (errno != EWOULDBLOCK)
		fail(EX_ERR, "flock %s: %s", path, strerror(errno));
	close(fd);
	return 0;
}

/* Joins a running dqd's environment, or recovers a stopped one. */
static struct admin *
open_env(int running)
{
	struct admin	*a;
	char		 err[1024];

	if (admin_open(data_dir, running ? ADMIN_JOIN : ADMIN_RECOVER, &a,
	    err, sizeof(err)) == -1)
		fail(EX_ERR, "%s", err);
	return a;
}

static void
close_env(struct admin *a)
{
	char	err[1024];

	if (admin_close(a, err, sizeof(err)) == -1)
		fail(EX_ERR, "%s", err);
}

static int
cmd_backup(int argc, char **argv)
{
	struct admin			*a;
	struct admin_backup_result	 res;
	struct stat			 st;
	char				 err[1024], h[32];
	uint64_t			 t0;
	unsigned			 logs;
	int				 running;

	if (argc != 2)
		fail(EX_USAGE, "usage: dqctl backup DIR");
	check_data_dir(&st);
	if (admin_backup_check(data_dir, argv[1], err, sizeof(err)) == -1)
		fail(EX_ERR, "backup refused: %s", err);
	if (geteuid() == 0 && st.st_uid != 0 &&
	    mkdir(argv[1], 0700) == 0 &&
	    chown(argv[1], st.st_uid, st.st_gid) == -1)
		fail(EX_ERR, "chown %s: %s", argv[1], strerror(errno));
	become_owner(&st);
	catch_signals();
	running = !take_lock();
	t0 = mono_ms();
	a = open_env(running);
	if (admin_backup(a, argv[1], &res, err, sizeof(err)) == -1) {
		close_env(a);
		fail(EX_ERR, "backup failed, nothing kept in %s: %s", argv[1],
		    err);
	}
	close_env(a);
	logs = res.first_log ? res.last_log - res.first_log + 1 : 0;
	if (json) {
		printf("{\"data_dir\": ");
		json_cstr(data_dir);
		printf(", \"target\": ");
		json_cstr(argv[1]);
		printf(", \"dqd_running\": %s, \"database_files\": %u, "
		    "\"log_files\": %u, \"bytes\": %llu, \"seconds\": %.3f}\n",
		    running ? "true" : "false", res.files - logs, logs,
		    (unsigned long long)res.bytes, (mono_ms() - t0) / 1000.0);
	} else {
		human_bytes(h, sizeof(h), res.bytes);
		printf("backup of %s written to %s%s: %u database files, %u "
		    "log files, %s in %.1f s\n", data_dir, argv[1],
		    running ? " while dqd runs" : "", res.files - logs, logs,
		    h, (mono_ms() - t0) / 1000.0);
		printf("it is consistent and recovered: start dqd with "
		    "data_dir = \"%s\" to use it\n", argv[1]);
	}
	return EX_OK;
}

struct verify_out {
	struct table	t;
	int		first;
};

static void
verify_one(void *arg, const char *file, const char *problem)
{
	struct verify_out	*v = arg;

	if (json) {
		printf("%s\n    {\"file\": ", v->first ? "" : ",");
		json_cstr(file);
		printf(", \"ok\": %s, \"problem\": ",
		    problem ? "false" : "true");
		json_cstr(problem);
		putchar('}');
		v->first = 0;
	} else
		table_add(&v->t, file, problem ? "DAMAGED" : "ok",
		    problem ? problem : "");
}

static void
remove_tree(const char *dir)
{
	char		 path[PATH_MAX];
	DIR		*d;
	struct dirent	*de;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) <
		    (int)sizeof(path) && unlink(path) == -1)
			note("cannot remove %s: %s", path, strerror(errno));
	}
	closedir(d);
	if (rmdir(dir) == -1)
		note("cannot remove %s: %s", dir, strerror(errno));
}

static int
cmd_verify(int argc, char **argv)
{
	struct admin			*a;
	struct admin_backup_result	 res;
	struct verify_out		 v;
	struct stat			 st;
	const char			*base;
	char				 err[1024], copy[PATH_MAX];
	const char			*where;
	int				 running, bad;

	if (argc != 1)
		fail(EX_USAGE, "usage: dqctl verify");
	check_data_dir(&st);
	become_owner(&st);
	catch_signals();
	running = !take_lock();
	if (running) {
		/*
		 * DB->verify takes no locks: it must not read files dqd is
		 * writing.  Verify a hot backup instead, which is what the
		 * files hold, made consistent.
		 */
		base = tmp_dir ? tmp_dir : getenv("TMPDIR");
		if (base == NULL || *base == '\0')
			base = "/var/tmp";
		if (snprintf(copy, sizeof(copy), "%s/dqctl-verify-XXXXXX",
		    base) >= (int)sizeof(copy))
			fail(EX_ERR, "%s: path too long", base);
		if (mkdtemp(copy) == NULL)
			fail(EX_ERR, "cannot create a directory in %s for a "
			    "copy to verify: %s (give another with -T)", base,
			    strerror(errno));
		a = open_env(1);
		if (admin_backup(a, copy, &res, err, sizeof(err)) == -1) {
			close_env(a);
			fail(EX_ERR, "cannot copy %s to verify it: %s",
			    data_dir, err);
		}
		close_env(a);
		where = copy;
	} else {
		/* Alone: recover first, as files after a crash need it. */
		a = open_env(0);
		close_env(a);
		where = data_dir;
	}
	memset(&v, 0, sizeof(v));
	v.first = 1;
	v.t.ncols = 3;
	if (json) {
		printf("{\"data_dir\": ");
		json_cstr(data_dir);
		printf(", \"checked\": \"%s\", \"files\": [",
		    running ? "hot copy" : "in place");
	} else
		table_add(&v.t, "FILE", "STATUS", "PROBLEM");
	bad = admin_verify(where, verify_one, &v, err, sizeof(err));
	if (running)
		remove_tree(copy);
	if (bad == -1)
		fail(EX_ERR, "%s", err);
	if (json)
		printf("\n  ], \"damaged\": %d}\n", bad);
	else {
		table_print(&v.t);
		if (bad == 0)
			printf("every database file is sound%s\n", running ?
			    " (checked on a hot copy, dqd is running)" : "");
		else
			printf("%d damaged file%s: stop dqd, restore the last "
			    "backup (or try dqctl recover --catastrophic)\n",
			    bad, bad == 1 ? "" : "s");
	}
	return bad > 0 ? EX_DAMAGED : EX_OK;
}

static int
cmd_checkpoint(int argc, char **argv)
{
	struct admin		*a;
	struct admin_log_usage	 before, after;
	struct stat		 st;
	char			 err[1024], h1[32], h2[32];
	int			 running;

	if (argc != 1)
		fail(EX_USAGE, "usage: dqctl checkpoint");
	check_data_dir(&st);
	become_owner(&st);
	catch_signals();
	running = !take_lock();
	a = open_env(running);
	admin_log_usage(data_dir, &before);
	if (admin_checkpoint(a, err, sizeof(err)) == -1) {
		close_env(a);
		fail(EX_ERR, "%s", err);
	}
	admin_log_usage(data_dir, &after);
	close_env(a);
	if (json) {
		printf("{\"data_dir\": ");
		json_cstr(data_dir);
		printf(", \"dqd_running\": %s, "
		    "\"log_files_before\": %u, \"log_bytes_before\": %llu, "
		    "\"log_files_after\": %u, \"log_bytes_after\": %llu}\n",
		    running ? "true" : "false", before.files,
		    (unsigned long long)before.bytes, after.files,
		    (unsigned long long)after.bytes);
	} else {
		human_bytes(h1, sizeof(h1), before.bytes);
		human_bytes(h2, sizeof(h2), after.bytes);
		printf("checkpoint done in %s; log files: %u (%s) before, "
		    "%u (%s) after\n", data_dir, before.files, h1,
		    after.files, h2);
	}
	return EX_OK;
}

static int
cmd_recover(int argc, char **argv)
{
	struct admin	*a;
	struct stat	 st;
	char		 err[1024];
	uint64_t	 t0;
	int		 i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--catastrophic") == 0)
			catastrophic = 1;
		else
			fail(EX_USAGE, "usage: dqctl recover [--catastrophic]");
	check_data_dir(&st);
	become_owner(&st);
	catch_signals();
	if (!take_lock())
		fail(EX_INUSE, "%s is in use: dqd (or another dqctl) holds "
		    "%s/dqd.lock. Stop dqd first; it runs recovery itself at "
		    "every start", data_dir, data_dir);
	t0 = mono_ms();
	if (admin_open(data_dir, catastrophic ? ADMIN_CATASTROPHIC :
	    ADMIN_RECOVER, &a, err, sizeof(err)) == -1)
		fail(EX_ERR, "recovery failed: %s (restore the last backup)",
		    err);
	close_env(a);
	if (json) {
		printf("{\"data_dir\": ");
		json_cstr(data_dir);
		printf(", \"catastrophic\": %s, \"seconds\": %.3f}\n",
		    catastrophic ? "true" : "false",
		    (mono_ms() - t0) / 1000.0);
	} else
		printf("%srecovery of %s done in %.1f s: dqd can start\n",
		    catastrophic ? "catastrophic " : "", data_dir,
		    (mono_ms() - t0) / 1000.0);
	return EX_OK;
}

/* ---- main ------------------------------------------------------------ */

static const struct {
	const char	*name;
	int		(*fn)(int, char **);
} commands[] = {
	{ "status", cmd_status },
	{ "queues", cmd_queues },
	{ "stat", cmd_stat },
	{ "peek", cmd_peek },
	{ "delete", cmd_delete },
	{ "backup", cmd_backup },
	{ "verify", cmd_verify },
	{ "checkpoint", cmd_checkpoint },
	{ "recover", cmd_recover },
};

/* The address to reach a server that listens on bind. */
static const char *
connect_addr(const char *bind)
{
	if (bind == NULL || strcmp(bind, "0.0.0.0") == 0 ||
	    strcmp(bind, "*") == 0 || strcmp(bind, "") == 0)
		return "127.0.0.1";
	if (strcmp(bind, "::") == 0)
		return "::1";
	return bind;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "password", required_argument, NULL, 'a' },
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "tmpdir", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "yes", no_argument, NULL, 'y' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'H' },
		{ "catastrophic", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 }
	};
	static struct config	 cfg;
	const char		*conf = NULL, *e;
	char			 err[1024];
	long long		 n;
	size_t			 i;
	int			 ch, status;

	static char		 progname[] = "dqctl";

	argv[0] = progname;	/* getopt's messages */
	/* Only the character type: numbers and times stay as in "C". */
	if (setlocale(LC_CTYPE, "") != NULL)
		utf8_term = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	while ((ch = getopt_long(argc, argv, "h:p:a:c:d:T:jyV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			if (parse_ll(optarg, strlen(optarg), &n) == -1 ||
			    n < 1 || n > 65535)
				fail(EX_USAGE, "-p: a port is an integer from 1 "
				    "to 65535, not \"%s\"", optarg);
			port = (int)n;
			break;
		case 'a':
			password = optarg;
			break;
		case 'c':
			conf = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		case 'T':
			tmp_dir = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'y':
			yes = 1;
			break;
		case 'C':
			catastrophic = 1;
			break;
		case 'V':
			printf("dqctl %s\n", PACKAGE_VERSION);
			return EX_OK;
		case 'H':
			usage(EX_OK);
		default:
			usage(EX_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage(EX_USAGE);
	if (conf != NULL) {
		config_defaults(&cfg);
		if (config_load(&cfg, conf, err, sizeof(err)) == -1)
			fail(EX_ERR, "%s", err);
		if (host == NULL)
			host = connect_addr(cfg.bind);
		if (port == 0)
			port = cfg.port;
		if (password == NULL && cfg.requirepass != NULL)
			password = cfg.requirepass;
		if (data_dir == NULL)
			data_dir = cfg.data_dir;
	}
	if (password == NULL && (e = getenv("DQCTL_AUTH")) != NULL)
		password = e;
	if (host == NULL)
		host = "127.0.0.1";
	if (port == 0)
		port = 6379;
	cmdname = argv[0];
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0]))
		fail(EX_USAGE, "unknown command \"%s\" (dqctl --help lists "
		    "them)", argv[0]);
	status = commands[i].fn(argc, argv);
	if (rc != NULL)
		redisFree(rc);
	if (lock_fd != -1)
		close(lock_fd);
	if (conf != NULL)
		config_free(&cfg);
	if (fflush(stdout) == EOF || ferror(stdout))
		fail(EX_ERR, "standard output: %s", strerror(errno));
	return status;
}
