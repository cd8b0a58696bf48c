/*
 * config: dqd.conf (libconfig syntax), built-in defaults and validation.
 *
 * config_defaults() fills in the built-in defaults, so dqd runs with no file
 * at all.  config_load() reads a file over them.  Every key is checked:
 * an unknown key, a value of the wrong type or out of range fails the load
 * with a message naming the file, the line and the key, e.g.
 *   "/etc/dqd.conf:12: port: must be an integer from 1 to 65535"
 * A failed load leaves *cfg as it was (the file is applied to a copy), so a
 * reload with a broken file keeps the running configuration.
 *
 * config_defaults() cannot report failure: a string it could not allocate
 * is left NULL and config_check() then fails with "out of memory".
 */
#ifndef DQ_CONFIG_H
#define DQ_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define LOG_FILE_MB	8	/* each Berkeley DB log file (store.c) */
#define LOG_FILE_FMT	"log.%010u"	/* Berkeley DB's name for file N */

enum durability {
	DURABILITY_FSYNC,	/* on disk before the reply; group commit */
	DURABILITY_WRITE,	/* written to the OS before the reply */
	DURABILITY_NONE		/* neither; the master flushes periodically */
};

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_WARNING
};

struct config {
	char		*path;		/* file it came from, NULL for defaults */
	char		*bind;		/* "127.0.0.1" */
	int		 port;		/* 6379 */
	int		 workers;	/* 0 in the file means one per CPU; after
					   load always >= 1 */
	char		*data_dir;	/* "dqd-data" (relative to the cwd) */
	int		 cache_size_mb;	/* 64 */
	enum durability	 durability;	/* write */
	int		 flush_interval_ms; /* 1000 */
	char		*requirepass;	/* NULL: no AUTH needed */
	int		 maxclients;	/* 10000, per server (all workers) */
	int		 timeout;	/* idle seconds before a client is closed;
					   0 never */
	long long	 max_message_bytes; /* 1048576 */
	int		 max_deliveries; /* 0: no limit */
	char		*pidfile;	/* NULL: none */
	char		*log_file;	/* NULL: stderr; "syslog": syslog(3) */
	enum log_level	 log_level;	/* notice */
	int		 protected_mode; /* 1 */
	int		 daemonize;	/* 0 */
	int		 enable_debug_command; /* 0: DEBUG refused */
	int		 checkpoint_interval_s;	/* 60 */
	int		 wheel_bucket_ms;	/* 65536; fixed at creation */
	int		 empty_queue_ttl_s;	/* 600; 0: names kept for ever */
	int		 min_free_disk_mb;	/* 64: enqueues refused below */
	char		*metrics_bind;	/* "127.0.0.1" */
	int		 metrics_port;	/* 0: no metrics endpoint */
	/*
	 * "FILE:LINE" that config_check() names (the main file or an
	 * included one); NULL: not from the file.
	 */
	char		*bind_origin;
	char		*metrics_bind_origin;
	char		*metrics_port_origin;
	char		*data_dir_origin;
	char		*pidfile_origin;
	char		*log_file_origin;
};

void	config_defaults(struct config *);
/* 0 on success; -1 with a message in err (always NUL-terminated). */
int	config_load(struct config *, const char *path, char *err, size_t errlen);
/* Protected mode and other cross-key rules; same error convention. */
int	config_check(const struct config *, char *err, size_t errlen);
/*
 * dqd -t: what only a start finds otherwise: pidfile and log_file can be
 * written (their directory exists, they are no directory), data_dir can
 * be made or used, bind and metrics.bind are addresses of this host.
 * Same convention.
 */
int	config_check_files(const struct config *, char *err, size_t errlen);
void	config_free(struct config *);
/*
 * Free MiB below which enqueues are refused: min_free_disk_mb, plus what a
 * checkpoint may still write (the whole cache, as Berkeley DB sizes it)
 * and a new log file; 0 when min_free_disk_mb is 0 (no check).
 */
uint64_t config_disk_floor_mb(const struct config *);
const char *config_durability_name(enum durability);
const char *config_log_level_name(enum log_level);
/*
 * CONFIG GET: calls fn(name, value, arg) for every key whose name matches
 * the glob pattern (case-insensitive), in a stable order, values as text
 * (requirepass is reported as it is, like Redis does); with_compat adds
 * the read-only Redis settings clients ask for (save, databases, ...).
 */
void	config_each(const struct config *, const char *pattern, size_t patlen,
	    int with_compat, void (*fn)(const char *, const char *, void *),
	    void *arg);

#endif
