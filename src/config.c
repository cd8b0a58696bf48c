#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libconfig.h>

#include "alloc.h"
#include "config.h"
#include "glob.h"

#define MAX_WORKERS	256

enum kind {
	K_INT,		/* int field */
	K_LL,		/* long long field */
	K_STR,		/* char *, must not be empty */
	K_STR_OPT,	/* char *, "" means NULL (none) */
	K_BOOL,		/* int field, 0 or 1 */
	K_DURABILITY,
	K_LOG_LEVEL
};

struct key {
	const char	*name;
	enum kind	 kind;
	size_t		 off;
	long long	 min, max;
	const char	*note;		/* what a special value means */
};

#define OFF(f)		offsetof(struct config, f)
#define INT(n, f, lo, hi, note)	{ n, K_INT, OFF(f), lo, hi, note }

static const struct key top_keys[] = {
	{ "bind", K_STR, OFF(bind), 0, 0, NULL },
	INT("port", port, 1, 65535, NULL),
	INT("workers", workers, 0, MAX_WORKERS, "0: one per CPU"),
	{ "data_dir", K_STR, OFF(data_dir), 0, 0, NULL },
	INT("cache_size_mb", cache_size_mb, 1, 65536, NULL),
	{ "durability", K_DURABILITY, OFF(durability), 0, 0, NULL },
	INT("flush_interval_ms", flush_interval_ms, 1, 60000, NULL),
	{ "requirepass", K_STR_OPT, OFF(requirepass), 0, 0, NULL },
	INT("maxclients", maxclients, 1, 1000000, NULL),
	INT("timeout", timeout, 0, 31536000, "0: never"),
	{ "max_message_bytes", K_LL, OFF(max_message_bytes), 1, 536870912,
	    NULL },
	INT("max_deliveries", max_deliveries, 0, 1000000, "0: no limit"),
	{ "pidfile", K_STR_OPT, OFF(pidfile), 0, 0, NULL },
	{ "log_file", K_STR_OPT, OFF(log_file), 0, 0, NULL },
	{ "log_level", K_LOG_LEVEL, OFF(log_level), 0, 0, NULL },
	{ "protected_mode", K_BOOL, OFF(protected_mode), 0, 0, NULL },
	{ "daemonize", K_BOOL, OFF(daemonize), 0, 0, NULL },
	{ "enable_debug_command", K_BOOL, OFF(enable_debug_command), 0, 0,
	    NULL },
	INT("checkpoint_interval_s", checkpoint_interval_s, 1, 86400, NULL),
	INT("min_free_disk_mb", min_free_disk_mb, 0, 1048576, "0: no check"),
	INT("wheel_bucket_ms", wheel_bucket_ms, 100, 86400000, NULL),
	INT("empty_queue_ttl_s", empty_queue_ttl_s, 0, 31536000,
	    "0: never"),
	{ NULL, K_INT, 0, 0, 0, NULL }
};

static const struct key metrics_keys[] = {
	{ "bind", K_STR, OFF(metrics_bind), 0, 0, NULL },
	INT("port", metrics_port, 0, 65535, "0: off"),
	{ NULL, K_INT, 0, 0, 0, NULL }
};

/* Every string member, so that copy and free cannot forget one. */
static const size_t str_fields[] = {
	OFF(path), OFF(bind), OFF(data_dir), OFF(requirepass), OFF(pidfile),
	OFF(log_file), OFF(metrics_bind), OFF(bind_origin),
	OFF(metrics_bind_origin), OFF(metrics_port_origin),
	OFF(data_dir_origin), OFF(pidfile_origin), OFF(log_file_origin)
};
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define NSTR		NELEM(str_fields)

static const char *const durability_names[] = { "fsync", "write", "none" };
static const char *const level_names[] = {
	"debug", "info", "notice", "warning"
};

/* Where the file being loaded reports its errors. */
struct ctx {
	const char	*path;
	const char	*dir;		/* of path; NULL: the working directory */
	char		*err;
	size_t		 errlen;
};

static void	errf(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	bad(struct ctx *, const config_setting_t *, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));

static char **
str_at(struct config *cfg, size_t off)
{
	return (char **)(void *)((char *)cfg + off);
}

static int *
int_at(struct config *cfg, size_t off)
{
	return (int *)(void *)((char *)cfg + off);
}

static const void *
field_at(const struct config *cfg, size_t off)
{
	return (const char *)cfg + off;
}

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * A file name as libconfig recorded it (relative to the directory of the
 * main file, see read_file()) as a path from the working directory: the
 * main file as it was given, an included file under that directory.
 */
static void
source_file(const struct ctx *c, const char *name, char *buf, size_t len)
{
	if (name == NULL)
		snprintf(buf, len, "%s", c->path);
	else if (c->dir == NULL || name[0] == '/')
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%s%s%s", c->dir,
		    strcmp(c->dir, "/") == 0 ? "" : "/", name);
}

/* "FILE:LINE: KEY: message"; always returns -1 for the caller to pass on. */
static int
bad(struct ctx *c, const config_setting_t *s, const char *name,
    const char *fmt, ...)
{
	va_list		 ap;
	char		 file[PATH_MAX];
	int		 n;

	if (c->errlen == 0)
		return -1;
	source_file(c, config_setting_source_file(s), file, sizeof(file));
	n = snprintf(c->err, c->errlen, "%s:%u: %s: ", file,
	    config_setting_source_line(s), name);
	if (n < 0 || (size_t)n >= c->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

static long
online_cpus(void)
{
	cpu_set_t	set;
	long		n;

	/* The CPUs this process may run on (taskset, cpusets), as nproc. */
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	/* The pool is capped like an explicit setting is. */
	return n > MAX_WORKERS ? MAX_WORKERS : n;
}

/*
 * config_defaults() cannot fail by its contract, so a string it could not
 * allocate stays NULL and config_check() reports it.
 */
void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->bind = dq_strdup("127.0.0.1");
	cfg->port = 6379;
	cfg->workers = (int)online_cpus();
	cfg->data_dir = dq_strdup("dqd-data");
	cfg->cache_size_mb = 64;
	cfg->durability = DURABILITY_WRITE;
	cfg->flush_interval_ms = 1000;
	cfg->maxclients = 10000;
	cfg->timeout = 0;
	cfg->max_message_bytes = 1048576;
	cfg->max_deliveries = 0;
	cfg->min_free_disk_mb = 64;
	cfg->log_level = LOG_LEVEL_NOTICE;
	cfg->protected_mode = 1;
	cfg->daemonize = 0;
	cfg->checkpoint_interval_s = 60;
	cfg->wheel_bucket_ms = 65536;
	cfg->empty_queue_ttl_s = 600;
	cfg->metrics_bind = dq_strdup("127.0.0.1");
	cfg->metrics_port = 0;
}

void
config_free(struct config *cfg)
{
	size_t	i;

	for (i = 0; i < NSTR; i++) {
		dq_free(*str_at(cfg, str_fields[i]));
		*str_at(cfg, str_fields[i]) = NULL;
	}
}

static int
config_copy(struct config *dst, const struct config *src)
{
	const char	*s;
	size_t		 i;

	*dst = *src;
	for (i = 0; i < NSTR; i++)
		*str_at(dst, str_fields[i]) = NULL;
	for (i = 0; i < NSTR; i++) {
		s = *(char *const *)field_at(src, str_fields[i]);
		if (s != NULL &&
		    (*str_at(dst, str_fields[i]) = dq_strdup(s)) == NULL) {
			config_free(dst);
			return -1;
		}
	}
	return 0;
}

const char *
config_durability_name(enum durability d)
{
	if ((unsigned)d >= NELEM(durability_names))
		return "unknown";
	return durability_names[d];
}

const char *
config_log_level_name(enum log_level l)
{
	if ((unsigned)l >= NELEM(level_names))
		return "unknown";
	return level_names[l];
}

/* A string value for an error message: quoted, escaped, the start only. */
static void
quote(char *buf, size_t len, const char *s)
{
	const char	*end = s + 40;
	size_t		 n = 0;

	buf[n++] = '"';
	for (; *s != '\0' && s < end && n + 8 < len; s++) {
		if (*s == '"' || *s == '\\')
			n += snprintf(buf + n, len - n, "\\%c", *s);
		else if (isprint((unsigned char)*s))
			buf[n++] = *s;
		else
			n += snprintf(buf + n, len - n, "\\x%02x",
			    (unsigned char)*s);
	}
	if (*s != '\0')
		n += snprintf(buf + n, len - n, "...");
	snprintf(buf + n, len - n, "\"");
}

/* What the file holds, for "must be X, not <this>". */
static const char *
describe(const config_setting_t *s, char *buf, size_t len)
{
	const char	*v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(buf, len, "%lld", config_setting_get_int64(s));
		return buf;
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		if (*(v = config_setting_get_string(s)) == '\0')
			return "an empty string";
		snprintf(buf, len, "the string ");
		quote(buf + strlen(buf), len - strlen(buf), v);
		return buf;
	case CONFIG_TYPE_BOOL:
		return config_setting_get_bool(s) ? "true" : "false";
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "a value of unknown type";
	}
}

/* Past blanks, newlines and comments (#, //, C style). */
static const char *
skip_blank(const char *p)
{
	for (;;) {
		p += strspn(p, " \t\r\n\f\v");
		if (*p == '#' || (p[0] == '/' && p[1] == '/'))
			p += strcspn(p, "\n");
		else if (p[0] == '/' && p[1] == '*') {
			if ((p = strstr(p + 2, "*/")) == NULL)
				return "";	/* unterminated: no value */
			p += 2;
		} else
			return p;
	}
}

/*
 * The text of the file from the setting's line on (the line of its name:
 * the value may be lines further down); NULL if it cannot be read.
 */
static char *
text_from_line(const struct ctx *c, const config_setting_t *s, char *buf,
    size_t len)
{
	FILE		*fp;
	char		 file[PATH_MAX];
	unsigned int	 n;
	size_t		 got;
	int		 ch;

	if (config_setting_source_file(s) == NULL)
		return NULL;
	source_file(c, config_setting_source_file(s), file, sizeof(file));
	if ((fp = fopen(file, "re")) == NULL)
		return NULL;
	for (n = config_setting_source_line(s); n > 1; n--)
		while ((ch = getc(fp)) != '\n' && ch != EOF)
			;
	got = fread(buf, 1, len - 1, fp);
	fclose(fp);
	buf[got] = '\0';
	return got > 0 ? buf : NULL;
}

/*
 * The integer literal after "key =" or "key:" at p, across newlines and
 * comments; 0 if there is none.  Its value (with the sign) goes to *v, or
 * *fits = 0 if it does not fit a long long; the literal is copied to lit.
 */
static int
literal_after(const char *p, size_t klen, long long *v, int *fits,
    char *lit, size_t litlen)
{
	const char		*start, *q;
	char			*end;
	unsigned long long	 u;
	int			 neg;

	q = skip_blank(p + klen);
	if (*q != '=' && *q != ':')
		return 0;
	start = q = skip_blank(q + 1);
	if ((neg = *q == '-') || *q == '+')
		q++;
	if (!isdigit((unsigned char)*q))
		return 0;
	errno = 0;
	u = strtoull(q, &end, q[0] == '0' && (q[1] == 'x' || q[1] == 'X') ?
	    16 : 10);
	*fits = errno == 0 && u <= LLONG_MAX;
	*v = neg ? -(long long)u : (long long)u;
	end += strspn(end, "Ll");
	snprintf(lit, litlen, "%.*s", (int)(end - start), start);
	return 1;
}

/*
 * libconfig 1.5 wraps an integer literal that does not fit 32 bits (and
 * has no L suffix) without a word: "port = 4294967297;" reads as 1, which
 * would pass the range check.  So read the literals that follow this key's
 * name on the setting's line, wherever they end (the value may be on a
 * line of its own): if there are some and none has the value libconfig
 * gave, the value wrapped; the literal is copied to lit.  The name must be
 * on the setting's line; a file we cannot read is trusted.
 */
static int
int_wrapped(const struct ctx *c, const config_setting_t *s, const char *key,
    long long v, char *lit, size_t litlen)
{
	char		 text[4096];
	const char	*p, *eol;
	size_t		 klen = strlen(key);
	long long	 got;
	int		 found = 0, fits;

	if ((p = text_from_line(c, s, text, sizeof(text))) == NULL)
		return 0;
	if ((eol = strchr(text, '\n')) == NULL)
		eol = text + strlen(text);
	for (; (p = strstr(p, key)) != NULL && p < eol; p += klen) {
		if (p > text && (isalnum((unsigned char)p[-1]) ||
		    strchr("_-*", p[-1]) != NULL))
			continue;
		if (!literal_after(p, klen, &got, &fits, lit, litlen))
			continue;
		if (fits && got == v)
			return 0;
		found = 1;
	}
	return found;
}

static int
set_int(struct ctx *c, struct config *cfg, const struct key *k,
    const config_setting_t *s, const char *name)
{
	char		 allowed[96], buf[128];
	long long	 v;
	int		 t = config_setting_type(s);

	snprintf(allowed, sizeof(allowed), "an integer from %lld to %lld%s%s%s",
	    k->min, k->max, k->note ? " (" : "", k->note ? k->note : "",
	    k->note ? ")" : "");
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
		return bad(c, s, name, "must be %s, not %s", allowed,
		    describe(s, buf, sizeof(buf)));
	v = config_setting_get_int64(s);
	if (int_wrapped(c, s, k->name, v, buf, sizeof(buf)))
		return bad(c, s, name, "must be %s, not %s", allowed, buf);
	if (v < k->min || v > k->max)
		return bad(c, s, name, "must be %s, not %lld", allowed, v);
	if (k->kind == K_LL)
		*(long long *)(void *)((char *)cfg + k->off) = v;
	else
		*int_at(cfg, k->off) = (int)v;
	return 0;
}

static int
set_str(struct ctx *c, struct config *cfg, const struct key *k,
    const config_setting_t *s, const char *name)
{
	char		 buf[128], *dup = NULL;
	const char	*v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING ||
	    (k->kind == K_STR && *config_setting_get_string(s) == '\0'))
		return bad(c, s, name, "must be a %sstring, not %s",
		    k->kind == K_STR ? "non-empty " : "",
		    describe(s, buf, sizeof(buf)));
	v = config_setting_get_string(s);
	if (*v != '\0' && (dup = dq_strdup(v)) == NULL)
		return bad(c, s, name, "out of memory");
	dq_free(*str_at(cfg, k->off));
	*str_at(cfg, k->off) = dup;
	return 0;
}

static int
set_bool(struct ctx *c, struct config *cfg, const struct key *k,
    const config_setting_t *s, const char *name)
{
	char	buf[128];

	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return bad(c, s, name, "must be true or false, not %s",
		    describe(s, buf, sizeof(buf)));
	*int_at(cfg, k->off) = config_setting_get_bool(s) != 0;
	return 0;
}

/* A string out of a fixed list; its index lands in an enum field. */
static int
set_enum(struct ctx *c, struct config *cfg, const struct key *k,
    const config_setting_t *s, const char *name)
{
	const char *const	*names;
	const char		*allowed, *v;
	char			 buf[128];
	int			 i, n;

	if (k->kind == K_DURABILITY) {
		names = durability_names;
		n = 3;
		allowed = "\"fsync\", \"write\" or \"none\"";
	} else {
		names = level_names;
		n = 4;
		allowed = "\"debug\", \"info\", \"notice\" or \"warning\"";
	}
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(s);
		for (i = 0; i < n; i++)
			if (strcasecmp(v, names[i]) == 0) {
				*int_at(cfg, k->off) = i;
				return 0;
			}
	}
	return bad(c, s, name, "must be %s, not %s", allowed,
	    describe(s, buf, sizeof(buf)));
}

static int
set_value(struct ctx *c, struct config *cfg, const struct key *k,
    const config_setting_t *s, const char *name)
{
	switch (k->kind) {
	case K_INT:
	case K_LL:
		return set_int(c, cfg, k, s, name);
	case K_STR:
	case K_STR_OPT:
		return set_str(c, cfg, k, s, name);
	case K_BOOL:
		return set_bool(c, cfg, k, s, name);
	default:
		return set_enum(c, cfg, k, s, name);
	}
}

static const struct key *
find_key(const struct key *keys, const char *name)
{
	for (; keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

/*
 * Edit distance counting a swap of two neighbours as one edit (optimal
 * string alignment), ASCII case-insensitive; names are short.
 */
static size_t
distance(const char *a, const char *b)
{
	char	x[64], y[64];
	size_t	rows[3][64], *prev2, *prev, *row, i, j, best;
	size_t	la = strlen(a), lb = strlen(b);

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (i = 0; i < la; i++)
		x[i] = tolower((unsigned char)a[i]);
	for (j = 0; j < lb; j++)
		y[j] = tolower((unsigned char)b[j]);
	for (j = 0; j <= lb; j++)
		rows[0][j] = j;
	for (i = 1; i <= la; i++) {
		prev2 = rows[(i + 1) % 3];
		prev = rows[(i - 1) % 3];
		row = rows[i % 3];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			best = prev[j - 1] + (x[i - 1] != y[j - 1]);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (i > 1 && j > 1 && x[i - 1] == y[j - 2] &&
			    x[i - 2] == y[j - 1] && prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			row[j] = best;
		}
	}
	return rows[la % 3][lb];
}

/* An unknown key, with the nearest known one (or also) as a hint. */
static int
unknown(struct ctx *c, const struct key *keys, const char *also,
    const config_setting_t *s, const char *name, const char *allowed)
{
	const char	*key = config_setting_name(s), *near = NULL;
	size_t		 d, bestd;

	/* Two edits turn most four-letter words into "port". */
	bestd = strlen(key) <= 4 ? 2 : 3;

	for (; keys->name != NULL; keys++)
		if ((d = distance(key, keys->name)) < bestd) {
			bestd = d;
			near = keys->name;
		}
	if (also != NULL && distance(key, also) < bestd)
		near = also;
	if (near != NULL)
		return bad(c, s, name, "unknown key (did you mean %s?)", near);
	return bad(c, s, name, "unknown key; %s", allowed);
}

static int
apply_metrics(struct ctx *c, struct config *cfg, const config_setting_t *g)
{
	const config_setting_t	*s;
	const struct key	*k;
	char			 name[96], buf[128];
	int			 i;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return bad(c, g, "metrics", "must be a group such as "
		    "{ bind = \"127.0.0.1\"; port = 9121; }, not %s",
		    describe(g, buf, sizeof(buf)));
	for (i = 0; (s = config_setting_get_elem(g, i)) != NULL; i++) {
		snprintf(name, sizeof(name), "metrics.%s",
		    config_setting_name(s));
		if ((k = find_key(metrics_keys, config_setting_name(s))) ==
		    NULL)
			return unknown(c, metrics_keys, NULL, s, name,
			    "the metrics group holds bind and port");
		if (set_value(c, cfg, k, s, name) == -1)
			return -1;
	}
	return 0;
}

static int
apply(struct ctx *c, struct config *cfg, const config_setting_t *root)
{
	const config_setting_t	*s;
	const struct key	*k;
	const char		*name;
	int			 i;

	for (i = 0; (s = config_setting_get_elem(root, i)) != NULL; i++) {
		name = config_setting_name(s);
		if (strcmp(name, "metrics") == 0) {
			if (apply_metrics(c, cfg, s) == -1)
				return -1;
			continue;
		}
		if ((k = find_key(top_keys, name)) == NULL)
			return unknown(c, top_keys, "metrics", s, name,
			    "see dqd.conf(5) for the keys allowed");
		if (set_value(c, cfg, k, s, name) == -1)
			return -1;
	}
	return 0;
}

/*
 * libconfig says only "file I/O error" and may lose errno, so open the file
 * first for a real reason ("No such file or directory", "Is a directory").
 */
static int
readable(const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	FILE		*fp;
	int		 rc = 0;

	if ((fp = fopen(path, "re")) == NULL) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) == -1) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	} else if (S_ISDIR(st.st_mode)) {
		errf(err, errlen, "%s: %s", path, strerror(EISDIR));
		rc = -1;
	}
	fclose(fp);
	return rc;
}

/*
 * libconfig does not say which include it could not open: the name in the
 * directive on that line, as a path from the working directory, and why.
 */
/* Line number line (from 1) of file, or -1. */
static int
read_line(const char *file, int line, char *text, size_t len)
{
	FILE	*fp;

	if ((fp = fopen(file, "re")) == NULL)
		return -1;
	while (line-- > 0 && fgets(text, (int)len, fp) != NULL)
		;
	fclose(fp);
	return line >= 0 ? -1 : 0;
}

static int
include_name(const struct ctx *c, const char *file, int line, char *buf,
    size_t len)
{
	char	 text[1024], path[PATH_MAX];
	char	*p, *q;
	FILE	*fp;
	int	 e;

	if (read_line(file, line, text, sizeof(text)) == -1 ||
	    (p = strstr(text, "@include")) == NULL ||
	    (p = strchr(p, '"')) == NULL || (q = strchr(++p, '"')) == NULL)
		return -1;
	*q = '\0';
	source_file(c, p, path, sizeof(path));
	if ((fp = fopen(path, "re")) != NULL) {
		fclose(fp);
		e = EIO;
	} else
		e = errno;
	snprintf(buf, len, " %s: %s", path, strerror(e));
	return 0;
}

/*
 * libconfig does not name the setting given twice either: the last name
 * set on that line (libconfig reports the line of the second one), or -1.
 */
static int
duplicate_name(const char *file, int line, char *buf, size_t len)
{
	char		 text[1024];
	const char	*p, *start, *found = NULL;
	size_t		 n, foundlen = 0;

	if (read_line(file, line, text, sizeof(text)) == -1)
		return -1;
	for (p = text; *p != '\0';) {
		if (!isalpha((unsigned char)*p) && *p != '*') {
			if (*p == '"')	/* a string: skip it */
				while (*++p != '\0' && *p != '"')
					if (*p == '\\' && p[1] != '\0')
						p++;
			if (*p != '\0')
				p++;
			continue;
		}
		start = p;
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' ||
		    *p == '*')
			p++;
		n = (size_t)(p - start);
		p += strspn(p, " \t");
		if (*p == '=' || *p == ':') {
			found = start;
			foundlen = n;
		}
	}
	if (found == NULL)
		return -1;
	snprintf(buf, len, "%.*s", (int)foundlen, found);
	return 0;
}

/* A UTF-8 byte order mark, which some Windows editors write, at the start. */
static int
starts_with_bom(const char *path)
{
	unsigned char	 b[3];
	FILE		*fp;
	int		 bom;

	if ((fp = fopen(path, "re")) == NULL)
		return 0;
	bom = fread(b, 1, 3, fp) == 3 && b[0] == 0xef && b[1] == 0xbb &&
	    b[2] == 0xbf;
	fclose(fp);
	return bom;
}

static int
parse_error(const struct ctx *c, const config_t *lc, int read_errno)
{
	const char	*text;
	char		 file[PATH_MAX], inc[PATH_MAX + 64];

	if (config_error_type(lc) != CONFIG_ERR_PARSE) {
		errf(c->err, c->errlen, "%s: %s", c->path, read_errno != 0 ?
		    strerror(read_errno) : "cannot read the file");
		return -1;
	}
	source_file(c, config_error_file(lc), file, sizeof(file));
	if ((text = config_error_text(lc)) == NULL)
		text = "";
	inc[0] = '\0';
	if (strcmp(text, "cannot open include file") == 0 &&
	    include_name(c, file, config_error_line(lc), inc,
	    sizeof(inc)) == 0)
		errf(c->err, c->errlen, "%s:%d: cannot open include file%s",
		    file, config_error_line(lc), inc);
	else if (strcmp(text, "duplicate setting name") == 0 &&
	    duplicate_name(file, config_error_line(lc), inc,
	    sizeof(inc)) == 0)
		errf(c->err, c->errlen, "%s:%d: %s: given twice", file,
		    config_error_line(lc), inc);
	else if (config_error_line(lc) == 1 && starts_with_bom(file))
		errf(c->err, c->errlen, "%s:1: syntax error: the file starts "
		    "with a byte order mark (U+FEFF); save it as UTF-8 without "
		    "one", file);
	/* libconfig's text is often just "syntax error": say it once. */
	else if (strcmp(text, "syntax error") == 0)
		errf(c->err, c->errlen, "%s:%d: syntax error", file,
		    config_error_line(lc));
	else
		errf(c->err, c->errlen, "%s:%d: syntax error: %s", file,
		    config_error_line(lc), text);
	return -1;
}

/*
 * libconfig 1.5's scanner exits the process ("input in flex scanner
 * failed") when an @include names a directory: a SIGHUP would end dqd.
 * So the directives are followed here first (file is a path from the
 * working directory), as deep as libconfig goes; -1 with the message.
 */
static int
includes_ok(const struct ctx *c, const char *file, int depth)
{
	struct stat	 st;
	char		 line[1024], path[PATH_MAX];
	char		*p, *q;
	FILE		*fp;
	int		 n = 0, rc = 0;

	if (depth > 10 || (fp = fopen(file, "re")) == NULL)
		return 0;	/* libconfig says what is wrong */
	while (rc == 0 && fgets(line, sizeof(line), fp) != NULL) {
		n++;
		p = line + strspn(line, " \t");
		if (strncmp(p, "@include", 8) != 0 ||
		    (p = strchr(p, '"')) == NULL ||
		    (q = strchr(++p, '"')) == NULL)
			continue;
		*q = '\0';
		source_file(c, p, path, sizeof(path));
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			errf(c->err, c->errlen, "%s:%d: cannot include %s: %s",
			    file, n, path, strerror(EISDIR));
			rc = -1;
		} else if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			rc = includes_ok(c, path, depth + 1);
	}
	fclose(fp);
	return rc;
}

/*
 * libconfig 1.5 opens an @include path as it is written, from the working
 * directory (and its include_dir breaks absolute paths), so the file is
 * read from its own directory: a relative include is then relative to the
 * main file, whatever the working directory (/var/lib/dqd under systemd).
 * The names libconfig records are relative to that directory (c->dir).
 * 0; -1: libconfig's error (*read_errno if it is not a parse error);
 * -2: the message is in c->err.
 */
static int
read_file(struct ctx *c, config_t *lc, char *dir, size_t dirlen,
    int *read_errno)
{
	const char	*slash = strrchr(c->path, '/');
	int		 cwd, ok, e;

	*read_errno = 0;
	c->dir = NULL;
	if (slash != NULL) {
		snprintf(dir, dirlen, "%.*s", slash == c->path ? 1 :
		    (int)(slash - c->path), c->path);
		c->dir = dir;
	}
	if (includes_ok(c, c->path, 0) == -1)
		return -2;
	if (slash == NULL) {
		errno = 0;
		ok = config_read_file(lc, c->path) == CONFIG_TRUE;
		*read_errno = errno;
		return ok ? 0 : -1;
	}
	if ((cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    chdir(dir) == -1) {
		e = errno;
		if (cwd != -1)
			close(cwd);
		errf(c->err, c->errlen, "%s: %s", dir, strerror(e));
		return -2;
	}
	errno = 0;
	ok = config_read_file(lc, slash + 1) == CONFIG_TRUE;
	*read_errno = errno;
	if (fchdir(cwd) == -1) {
		e = errno;
		close(cwd);
		errf(c->err, c->errlen, "cannot return to the working "
		    "directory: %s", strerror(e));
		return -2;
	}
	close(cwd);
	return ok ? 0 : -1;
}

/* "FILE:LINE" of the setting at path, or NULL: absent or no memory. */
static char *
origin_of(const struct ctx *c, const config_t *lc, const char *path)
{
	const config_setting_t	*s;
	char			 file[PATH_MAX], at[PATH_MAX + 16];

	if ((s = config_lookup(lc, path)) == NULL)
		return NULL;
	source_file(c, config_setting_source_file(s), file, sizeof(file));
	snprintf(at, sizeof(at), "%s:%u", file, config_setting_source_line(s));
	return dq_strdup(at);
}

/* Where the keys config_check() names come from. */
static void
note_origins(const struct ctx *c, struct config *cfg, const config_t *lc)
{
	static const struct {
		size_t		 off;
		const char	*path;
	} keys[] = {
		{ OFF(bind_origin), "bind" },
		{ OFF(metrics_bind_origin), "metrics.bind" },
		{ OFF(metrics_port_origin), "metrics.port" },
		{ OFF(data_dir_origin), "data_dir" },
		{ OFF(pidfile_origin), "pidfile" },
		{ OFF(log_file_origin), "log_file" },
	};
	char	**at;
	size_t	  i;

	for (i = 0; i < NELEM(keys); i++) {
		at = (char **)field_at(cfg, keys[i].off);
		dq_free(*at);
		*at = origin_of(c, lc, keys[i].path);
	}
}

/*
 * The file is applied to a copy, so that a failed load (a SIGHUP with a
 * broken file) leaves *cfg as it was.
 */
int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config	 tmp;
	struct ctx	 c = { path, NULL, err, errlen };
	config_t	 lc;
	char		 dir[PATH_MAX];
	int		 rc, e;

	if (errlen > 0)
		err[0] = '\0';
	if (readable(path, err, errlen) == -1)
		return -1;
	if (config_copy(&tmp, cfg) == -1) {
		errf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	dq_free(tmp.path);
	if ((tmp.path = dq_strdup(path)) == NULL) {
		errf(err, errlen, "%s: out of memory", path);
		config_free(&tmp);
		return -1;
	}
	config_init(&lc);
	if ((rc = read_file(&c, &lc, dir, sizeof(dir), &e)) == -1)
		rc = parse_error(&c, &lc, e);
	else if (rc == -2)
		rc = -1;
	else if ((rc = apply(&c, &tmp, config_root_setting(&lc))) == 0)
		note_origins(&c, &tmp, &lc);
	config_destroy(&lc);
	if (rc == -1) {
		config_free(&tmp);
		return -1;
	}
	if (tmp.workers == 0)
		tmp.workers = (int)online_cpus();
	config_free(cfg);
	*cfg = tmp;
	return 0;
}

static int
is_loopback(const char *host)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

static int
is_wildcard(const char *host)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (strcmp(host, "*") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return a4.s_addr == htonl(INADDR_ANY);
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_UNSPECIFIED(&a6);
	return 0;
}

/* Would two sockets bound to a and b on one port collide? */
static int
same_bind(const char *a, const char *b)
{
	struct in6_addr	 x, y;	/* big enough for either family */

	if (strcasecmp(a, "localhost") == 0)
		a = "127.0.0.1";
	if (strcasecmp(b, "localhost") == 0)
		b = "127.0.0.1";
	if (strcasecmp(a, b) == 0 || is_wildcard(a) || is_wildcard(b))
		return 1;
	if (inet_pton(AF_INET, a, &x) == 1 && inet_pton(AF_INET, b, &y) == 1)
		return memcmp(&x, &y, sizeof(struct in_addr)) == 0;
	if (inet_pton(AF_INET6, a, &x) == 1 && inet_pton(AF_INET6, b, &y) == 1)
		return memcmp(&x, &y, sizeof(x)) == 0;
	return 0;
}

/* The addresses host names, looked up as the master does; 0 with why. */
static int
host_lookup(const char *host, struct addrinfo **res, char *why, size_t len)
{
	struct addrinfo	 hints;
	int		 e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	/* What looks like an address is one or nothing: no DNS query. */
	if (host[strspn(host, "0123456789.")] == '\0' ||
	    strchr(host, ':') != NULL)
		hints.ai_flags |= AI_NUMERICHOST;
	/* A port, as the master gives: glibc takes "*" for any address
	   only with one. */
	if ((e = getaddrinfo(host, "0", &hints, res)) != 0) {
		snprintf(why, len, "%s", e == EAI_SYSTEM ? strerror(errno) :
		    gai_strerror(e));
		return 0;
	}
	return 1;
}

/* Whether host names an address to listen on, as the master asks. */
static int
resolves(const char *host, char *why, size_t len)
{
	struct addrinfo	*res;

	if (!host_lookup(host, &res, why, len))
		return 0;
	freeaddrinfo(res);
	return 1;
}

/*
 * host is an address of this machine: a socket binds to it (port 0, any
 * free one), as the master's listening socket will.  An address of
 * another host resolves but cannot be listened on.
 */
static int
bindable(const char *host, char *why, size_t len)
{
	struct addrinfo	*res, *ai;
	int		 e = 0, fd, ok = 0;

	if (!host_lookup(host, &res, why, len))
		return 0;
	for (ai = res; ai != NULL && !ok; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol)) == -1) {
			e = errno;
			continue;
		}
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			ok = 1;
		else
			e = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (!ok)
		snprintf(why, len, "%s", strerror(e));
	return ok;
}

/* "FILE:LINE: ", "FILE: " or "": where a key of cfg came from. */
static const char *
origin(const struct config *cfg, const char *at, char *buf, size_t len)
{
	if (at != NULL)
		snprintf(buf, len, "%s: ", at);
	else if (cfg->path != NULL)
		snprintf(buf, len, "%s: ", cfg->path);
	else
		return "";
	return buf;
}

/*
 * bind and metrics.bind (when metrics are on) against ok (resolves or
 * bindable); 1 with the error in err when one fails.
 */
static int
listen_addrs_fail(const struct config *cfg,
    int (*ok)(const char *, char *, size_t), char *err, size_t errlen)
{
	char	where[4200], why[256];

	if (!ok(cfg->bind, why, sizeof(why))) {
		errf(err, errlen, "%sbind: cannot listen on %s: %s",
		    origin(cfg, cfg->bind_origin, where, sizeof(where)),
		    cfg->bind, why);
		return 1;
	}
	if (cfg->metrics_port != 0 &&
	    !ok(cfg->metrics_bind, why, sizeof(why))) {
		errf(err, errlen, "%smetrics.bind: cannot listen on %s: %s",
		    origin(cfg, cfg->metrics_bind_origin, where, sizeof(where)),
		    cfg->metrics_bind, why);
		return 1;
	}
	return 0;
}

int
config_check(const struct config *cfg, char *err, size_t errlen)
{
	char	where[4200];

	if (errlen > 0)
		err[0] = '\0';
	if (cfg->bind == NULL || cfg->data_dir == NULL ||
	    cfg->metrics_bind == NULL) {
		errf(err, errlen, "%sout of memory",
		    origin(cfg, NULL, where, sizeof(where)));
		return -1;
	}
	if (listen_addrs_fail(cfg, resolves, err, errlen))
		return -1;
	if (cfg->requirepass == NULL && cfg->protected_mode &&
	    !is_loopback(cfg->bind)) {
		errf(err, errlen, "%sbind: protected mode refuses to listen "
		    "on %s, which is not a loopback address, without a "
		    "password; set requirepass, or set protected_mode = false "
		    "to let any host in without one",
		    origin(cfg, cfg->bind_origin, where, sizeof(where)),
		    cfg->bind);
		return -1;
	}
	if (cfg->metrics_port != 0 && cfg->metrics_port == cfg->port &&
	    same_bind(cfg->bind, cfg->metrics_bind)) {
		errf(err, errlen, "%smetrics.port: %d is the server's own "
		    "port on %s; choose another port for metrics",
		    origin(cfg, cfg->metrics_port_origin, where, sizeof(where)),
		    cfg->port, cfg->metrics_bind);
		return -1;
	}
	return 0;
}

/* The directory a file is made in exists and we may write there. */
static int
dir_usable(const char *dir, char *why, size_t len)
{
	struct stat	st;

	if (stat(dir, &st) == -1) {
		snprintf(why, len, "%s: %s", dir, strerror(errno));
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, len, "%s: %s", dir, strerror(ENOTDIR));
		return 0;
	}
	if (access(dir, W_OK | X_OK) == -1) {
		snprintf(why, len, "%s: %s", dir, strerror(errno));
		return 0;
	}
	return 1;
}

static int
parent_usable(const char *file, char *why, size_t len)
{
	char	dir[PATH_MAX];
	char	*slash;

	if (snprintf(dir, sizeof(dir), "%s", file) >= (int)sizeof(dir)) {
		snprintf(why, len, "%s", strerror(ENAMETOOLONG));
		return 0;
	}
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return dir_usable(dir, why, len);
}

/* A file dqd opens for writing (pidfile, log_file) can be. */
static int
file_usable(const char *file, char *why, size_t len)
{
	struct stat	st;

	if (stat(file, &st) == -1)
		return parent_usable(file, why, len);
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, len, "%s: %s", file, strerror(EISDIR));
		return 0;
	}
	if (access(file, W_OK) == -1) {
		snprintf(why, len, "%s: %s", file, strerror(errno));
		return 0;
	}
	return 1;
}

int
config_check_files(const struct config *cfg, char *err, size_t errlen)
{
	struct stat	st;
	char		where[4200], why[PATH_MAX + 256];

	if (errlen > 0)
		err[0] = '\0';
	if (listen_addrs_fail(cfg, bindable, err, errlen))
		return -1;
	/* data_dir is made (one level) when missing. */
	if (stat(cfg->data_dir, &st) == 0 ? !dir_usable(cfg->data_dir, why,
	    sizeof(why)) : !parent_usable(cfg->data_dir, why, sizeof(why))) {
		errf(err, errlen, "%sdata_dir: cannot be used: %s",
		    origin(cfg, cfg->data_dir_origin, where, sizeof(where)), why);
		return -1;
	}
	if (cfg->pidfile != NULL && !file_usable(cfg->pidfile, why,
	    sizeof(why))) {
		errf(err, errlen, "%spidfile: cannot be written: %s",
		    origin(cfg, cfg->pidfile_origin, where, sizeof(where)), why);
		return -1;
	}
	if (cfg->log_file != NULL && strcmp(cfg->log_file, "syslog") != 0 &&
	    !file_usable(cfg->log_file, why, sizeof(why))) {
		errf(err, errlen, "%slog_file: cannot be written: %s",
		    origin(cfg, cfg->log_file_origin, where, sizeof(where)), why);
		return -1;
	}
	return 0;
}

uint64_t
config_disk_floor_mb(const struct config *cfg)
{
	uint64_t	cache = (uint64_t)cfg->cache_size_mb;

	if (cfg->min_free_disk_mb == 0)
		return 0;
	/* Berkeley DB adds a quarter to a cache under 500 MiB. */
	if (cache < 500)
		cache += cache / 4;
	return (uint64_t)cfg->min_free_disk_mb + cache + LOG_FILE_MB;
}

/* A key's value as CONFIG GET shows it; buf holds numbers. */
static const char *
show(const struct config *cfg, const struct key *k, char *buf, size_t len)
{
	const void	*f = field_at(cfg, k->off);
	const char	*s;

	switch (k->kind) {
	case K_INT:
		snprintf(buf, len, "%d", *(const int *)f);
		return buf;
	case K_LL:
		snprintf(buf, len, "%lld", *(const long long *)f);
		return buf;
	case K_STR:
	case K_STR_OPT:
		s = *(char *const *)f;
		return s != NULL ? s : "";
	case K_BOOL:
		return *(const int *)f ? "yes" : "no";
	case K_DURABILITY:
		return config_durability_name(*(const enum durability *)f);
	default:
		return config_log_level_name(*(const enum log_level *)f);
	}
}

static void
each_key(const struct config *cfg, const struct key *keys, const char *prefix,
    const char *pat, size_t patlen,
    void (*fn)(const char *, const char *, void *), void *arg)
{
	char	name[64], buf[32];
	int	n;

	for (; keys->name != NULL; keys++) {
		n = snprintf(name, sizeof(name), "%s%s", prefix, keys->name);
		if (n < 0 || (size_t)n >= sizeof(name))
			continue;
		if (glob_match(pat, patlen, name, (size_t)n, 1))
			fn(name, show(cfg, keys, buf, sizeof(buf)), arg);
	}
}

void
config_each(const struct config *cfg, const char *pat, size_t patlen,
    int with_compat, void (*fn)(const char *, const char *, void *), void *arg)
{
	/* Read-only Redis settings that clients and tools ask for. */
	static const char *const compat[][2] = {
		{ "save", "" },
		{ "appendonly", "no" },
		{ "databases", "1" }
	};
	size_t	i;

	each_key(cfg, top_keys, "", pat, patlen, fn, arg);
	each_key(cfg, metrics_keys, "metrics.", pat, patlen, fn, arg);
	if (!with_compat)
		return;
	for (i = 0; i < NELEM(compat); i++)
		if (glob_match(pat, patlen, compat[i][0],
		    strlen(compat[i][0]), 1))
			fn(compat[i][0], compat[i][1], arg);
}
