#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "alloc.h"
#include "config.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

#define MAXFILES	128

static char	tmpdir[64];
static char	files[MAXFILES][128];
static int	nfiles;

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dqd-test-config.XXXXXX");
	nfiles = 0;
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void
teardown(void)
{
	int	i;

	for (i = 0; i < nfiles; i++)
		unlink(files[i]);
	rmdir(tmpdir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes text to a new file in the temporary directory; returns its path. */
static const char *
conf(const char *text)
{
	FILE	*fp;
	char	*path;

	cr_assert_lt(nfiles, MAXFILES);
	path = files[nfiles];
	snprintf(path, sizeof(files[0]), "%s/%d.conf", tmpdir, nfiles);
	nfiles++;
	cr_assert_not_null(fp = fopen(path, "w"));
	cr_assert_eq(fputs(text, fp) >= 0, 1);
	cr_assert_eq(fclose(fp), 0);
	return path;
}

static long
cpus(void)
{
	long	n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : n;
}

/* Loading text over the defaults fails with "FILE:line: msg". */
static void
expect_error(const char *text, int line, const char *msg)
{
	struct config	 cfg;
	const char	*path = conf(text);
	char		 err[512], want[512];

	snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
	config_defaults(&cfg);
	cr_expect_eq(config_load(&cfg, path, err, sizeof(err)), -1,
	    "loaded: %s", text);
	cr_expect_str_eq(err, want, "for: %s\ngot:  %s\nwant: %s", text, err,
	    want);
	config_free(&cfg);
}

/* Loads text over the defaults, which must succeed. */
static void
load_ok(struct config *cfg, const char *text)
{
	char	err[512];

	config_defaults(cfg);
	err[0] = '\0';
	cr_assert_eq(config_load(cfg, conf(text), err, sizeof(err)), 0,
	    "%s", err);
}

static void
expect_defaults(const struct config *cfg)
{
	cr_expect_str_eq(cfg->bind, "127.0.0.1");
	cr_expect_eq(cfg->port, 6379);
	cr_expect_eq(cfg->workers, cpus());
	cr_expect_str_eq(cfg->data_dir, "dqd-data");
	cr_expect_eq(cfg->cache_size_mb, 64);
	cr_expect_eq(cfg->durability, DURABILITY_WRITE);
	cr_expect_eq(cfg->flush_interval_ms, 1000);
	cr_expect_null(cfg->requirepass);
	cr_expect_eq(cfg->maxclients, 10000);
	cr_expect_eq(cfg->timeout, 0);
	cr_expect_eq(cfg->max_message_bytes, 1048576);
	cr_expect_eq(cfg->max_deliveries, 0);
	cr_expect_null(cfg->pidfile);
	cr_expect_null(cfg->log_file);
	cr_expect_eq(cfg->log_level, LOG_LEVEL_NOTICE);
	cr_expect_eq(cfg->protected_mode, 1);
	cr_expect_eq(cfg->daemonize, 0);
	cr_expect_eq(cfg->checkpoint_interval_s, 60);
	cr_expect_eq(cfg->empty_queue_ttl_s, 600);
	cr_expect_str_eq(cfg->metrics_bind, "127.0.0.1");
	cr_expect_eq(cfg->metrics_port, 0);
}

Test(config, defaults)
{
	struct config	cfg;
	char		err[256];

	config_defaults(&cfg);
	cr_expect_null(cfg.path);
	expect_defaults(&cfg);
	cr_expect_eq(config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	config_free(&cfg);
	config_free(&cfg);		/* idempotent */
}

Test(config, names)
{
	cr_expect_str_eq(config_durability_name(DURABILITY_FSYNC), "fsync");
	cr_expect_str_eq(config_durability_name(DURABILITY_WRITE), "write");
	cr_expect_str_eq(config_durability_name(DURABILITY_NONE), "none");
	cr_expect_str_eq(config_log_level_name(LOG_LEVEL_DEBUG), "debug");
	cr_expect_str_eq(config_log_level_name(LOG_LEVEL_INFO), "info");
	cr_expect_str_eq(config_log_level_name(LOG_LEVEL_NOTICE), "notice");
	cr_expect_str_eq(config_log_level_name(LOG_LEVEL_WARNING), "warning");
}

Test(config, full_file)
{
	struct config	 cfg;
	const char	*path;
	char		 err[256];

	path = conf(
	    "# every key\n"
	    "bind = \"0.0.0.0\";\n"
	    "port = 7000;\n"
	    "workers = 3;\n"
	    "data_dir = \"/var/lib/dqd\";\n"
	    "cache_size_mb = 512;\n"
	    "durability = \"fsync\";\n"
	    "flush_interval_ms = 250;\n"
	    "requirepass = \"s3cret\";\n"
	    "maxclients = 1000000;\n"
	    "timeout = 300;\n"
	    "max_message_bytes = 536870912L;\n"
	    "max_deliveries = 5;\n"
	    "pidfile = \"/run/dqd.pid\";\n"
	    "log_file = \"syslog\";\n"
	    "log_level = \"debug\";\n"
	    "protected_mode = false;\n"
	    "daemonize = true;\n"
	    "checkpoint_interval_s = 86400;\n"
	    "metrics = {\n"
	    "  bind = \"::1\";\n"
	    "  port = 9121;\n"
	    "};\n");
	config_defaults(&cfg);
	cr_assert_eq(config_load(&cfg, path, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cfg.path, path);
	cr_expect_str_eq(cfg.bind, "0.0.0.0");
	cr_expect_eq(cfg.port, 7000);
	cr_expect_eq(cfg.workers, 3);
	cr_expect_str_eq(cfg.data_dir, "/var/lib/dqd");
	cr_expect_eq(cfg.cache_size_mb, 512);
	cr_expect_eq(cfg.durability, DURABILITY_FSYNC);
	cr_expect_eq(cfg.flush_interval_ms, 250);
	cr_expect_str_eq(cfg.requirepass, "s3cret");
	cr_expect_eq(cfg.maxclients, 1000000);
	cr_expect_eq(cfg.timeout, 300);
	cr_expect_eq(cfg.max_message_bytes, 536870912LL);
	cr_expect_eq(cfg.max_deliveries, 5);
	cr_expect_str_eq(cfg.pidfile, "/run/dqd.pid");
	cr_expect_str_eq(cfg.log_file, "syslog");
	cr_expect_eq(cfg.log_level, LOG_LEVEL_DEBUG);
	cr_expect_eq(cfg.protected_mode, 0);
	cr_expect_eq(cfg.daemonize, 1);
	cr_expect_eq(cfg.checkpoint_interval_s, 86400);
	cr_expect_str_eq(cfg.metrics_bind, "::1");
	cr_expect_eq(cfg.metrics_port, 9121);
	cr_expect_eq(config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	config_free(&cfg);
}

Test(config, empty_file_is_defaults)
{
	struct config	cfg;

	load_ok(&cfg, "# nothing\n");
	expect_defaults(&cfg);
	config_free(&cfg);
}

Test(config, sample_file)
{
	struct config	cfg;
	char		err[256];

	config_defaults(&cfg);
	cr_assert_eq(config_load(&cfg, SRCDIR "/etc/dqd.conf", err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cfg.path, SRCDIR "/etc/dqd.conf");
	expect_defaults(&cfg);
	cr_expect_eq(config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	config_free(&cfg);
}

Test(config, special_values)
{
	struct config	cfg;

	/* 0 workers: one per CPU; "" strings: none. */
	load_ok(&cfg, "workers = 0; requirepass = \"\"; pidfile = \"\";\n"
	    "log_file = \"\";\n");
	cr_expect_eq(cfg.workers, cpus());
	cr_expect_null(cfg.requirepass);
	cr_expect_null(cfg.pidfile);
	cr_expect_null(cfg.log_file);
	config_free(&cfg);

	/* Bounds are inclusive; int64 literals, hex and any case enums. */
	load_ok(&cfg, "port = 1; workers = 256; cache_size_mb = 1;\n"
	    "flush_interval_ms = 60000; maxclients = 1; timeout = 31536000;\n"
	    "max_message_bytes = 1; max_deliveries = 1000000;\n"
	    "checkpoint_interval_s = 1; metrics = { port = 65535; };\n"
	    "durability = \"NONE\"; log_level = \"Warning\";\n");
	cr_expect_eq(cfg.port, 1);
	cr_expect_eq(cfg.workers, 256);
	cr_expect_eq(cfg.cache_size_mb, 1);
	cr_expect_eq(cfg.flush_interval_ms, 60000);
	cr_expect_eq(cfg.maxclients, 1);
	cr_expect_eq(cfg.timeout, 31536000);
	cr_expect_eq(cfg.max_message_bytes, 1);
	cr_expect_eq(cfg.max_deliveries, 1000000);
	cr_expect_eq(cfg.checkpoint_interval_s, 1);
	cr_expect_eq(cfg.metrics_port, 65535);
	cr_expect_eq(cfg.durability, DURABILITY_NONE);
	cr_expect_eq(cfg.log_level, LOG_LEVEL_WARNING);
	config_free(&cfg);

	load_ok(&cfg, "max_message_bytes = 1048576L; port = 0x1F90;\n"
	    "cache_size_mb = 65536; durability = \"write\";\n"
	    "log_level = \"info\"; metrics = { port = 0; };\n");
	cr_expect_eq(cfg.max_message_bytes, 1048576);
	cr_expect_eq(cfg.port, 8080);
	cr_expect_eq(cfg.cache_size_mb, 65536);
	cr_expect_eq(cfg.durability, DURABILITY_WRITE);
	cr_expect_eq(cfg.log_level, LOG_LEVEL_INFO);
	config_free(&cfg);
}

Test(config, loads_over_previous)
{
	struct config	cfg;
	char		err[256];

	load_ok(&cfg, "port = 7000; requirepass = \"a\";\n");
	cr_assert_eq(config_load(&cfg, conf("workers = 2;\n"), err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.port, 7000);
	cr_expect_eq(cfg.workers, 2);
	cr_expect_str_eq(cfg.requirepass, "a");
	cr_expect_str_eq(cfg.path, files[1]);
	config_free(&cfg);
}

Test(config, failed_load_keeps_config)
{
	struct config	cfg;
	char		err[256];

	load_ok(&cfg, "port = 7000;\nbind = \"::1\";\n");
	cr_assert_eq(config_load(&cfg, conf("port = 7001;\nbind = \"\";\n"),
	    err, sizeof(err)), -1);
	cr_expect_eq(cfg.port, 7000);
	cr_expect_str_eq(cfg.bind, "::1");
	cr_expect_str_eq(cfg.path, files[0]);
	config_free(&cfg);
}

struct bad {
	const char	*text;
	int		 line;
	const char	*msg;
};

#define INTMSG(k, lo, hi)	k ": must be an integer from " #lo " to " #hi

static const struct bad bad_values[] = {
	{ "port = 0;", 1, INTMSG("port", 1, 65535) ", not 0" },
	{ "port = 65536;", 1, INTMSG("port", 1, 65535) ", not 65536" },
	{ "port = -1;", 1, INTMSG("port", 1, 65535) ", not -1" },
	{ "port = \"6379\";", 1,
	    INTMSG("port", 1, 65535) ", not the string \"6379\"" },
	{ "port = 6379.0;", 1, INTMSG("port", 1, 65535) ", not a float" },
	{ "port = true;", 1, INTMSG("port", 1, 65535) ", not true" },
	/* libconfig 1.5 would wrap these to 1 and 6379. */
	{ "port = 4294967297;", 1,
	    INTMSG("port", 1, 65535) ", not 4294967297" },
	{ "port = 4294973675 ;", 1,
	    INTMSG("port", 1, 65535) ", not 4294973675" },
	{ "port = 99999999999999999999;", 1,
	    INTMSG("port", 1, 65535) ", not 99999999999999999999" },
	{ "port = 0xFFFFFFFF;", 1,
	    INTMSG("port", 1, 65535) ", not 0xFFFFFFFF" },
	{ "workers = 257;", 1, INTMSG("workers", 0, 256)
	    " (0: one per CPU), not 257" },
	{ "workers = -1;", 1, INTMSG("workers", 0, 256)
	    " (0: one per CPU), not -1" },
	{ "workers = \"auto\";", 1, INTMSG("workers", 0, 256)
	    " (0: one per CPU), not the string \"auto\"" },
	{ "cache_size_mb = 0;", 1,
	    INTMSG("cache_size_mb", 1, 65536) ", not 0" },
	{ "cache_size_mb = 65537;", 1,
	    INTMSG("cache_size_mb", 1, 65536) ", not 65537" },
	{ "flush_interval_ms = 0;", 1,
	    INTMSG("flush_interval_ms", 1, 60000) ", not 0" },
	{ "flush_interval_ms = 60001;", 1,
	    INTMSG("flush_interval_ms", 1, 60000) ", not 60001" },
	{ "maxclients = 0;", 1, INTMSG("maxclients", 1, 1000000) ", not 0" },
	{ "maxclients = 1000001;", 1,
	    INTMSG("maxclients", 1, 1000000) ", not 1000001" },
	{ "timeout = -1;", 1,
	    INTMSG("timeout", 0, 31536000) " (0: never), not -1" },
	{ "timeout = 31536001;", 1,
	    INTMSG("timeout", 0, 31536000) " (0: never), not 31536001" },
	{ "max_message_bytes = 0;", 1,
	    INTMSG("max_message_bytes", 1, 536870912) ", not 0" },
	{ "max_message_bytes = 536870913;", 1,
	    INTMSG("max_message_bytes", 1, 536870912) ", not 536870913" },
	{ "max_message_bytes = 536870913L;", 1,
	    INTMSG("max_message_bytes", 1, 536870912) ", not 536870913" },
	{ "max_message_bytes = 4294967297;", 1,
	    INTMSG("max_message_bytes", 1, 536870912) ", not 4294967297" },
	{ "max_message_bytes = 99999999999999999999L;", 1,
	    INTMSG("max_message_bytes", 1, 536870912)
	    ", not 99999999999999999999L" },
	{ "max_message_bytes = \"1M\";", 1,
	    INTMSG("max_message_bytes", 1, 536870912)
	    ", not the string \"1M\"" },
	{ "max_deliveries = -1;", 1,
	    INTMSG("max_deliveries", 0, 1000000) " (0: no limit), not -1" },
	{ "max_deliveries = 1000001;", 1, INTMSG("max_deliveries", 0, 1000000)
	    " (0: no limit), not 1000001" },
	{ "checkpoint_interval_s = 0;", 1,
	    INTMSG("checkpoint_interval_s", 1, 86400) ", not 0" },
	{ "checkpoint_interval_s = 86401;", 1,
	    INTMSG("checkpoint_interval_s", 1, 86400) ", not 86401" },
	{ "empty_queue_ttl_s = -1;", 1, INTMSG("empty_queue_ttl_s", 0,
	    31536000) " (0: never), not -1" },
	{ "empty_queue_ttl_s = 31536001;", 1, INTMSG("empty_queue_ttl_s", 0,
	    31536000) " (0: never), not 31536001" },
	{ "bind = \"\";", 1, "bind: must be a non-empty string, not an empty "
	    "string" },
	{ "bind = 1;", 1, "bind: must be a non-empty string, not 1" },
	{ "data_dir = true;", 1, "data_dir: must be a non-empty string, "
	    "not true" },
	{ "data_dir = \"\";", 1, "data_dir: must be a non-empty string, "
	    "not an empty string" },
	{ "requirepass = 5;", 1, "requirepass: must be a string, not 5" },
	{ "pidfile = [1];", 1, "pidfile: must be a string, not an array" },
	{ "log_file = (1);", 1, "log_file: must be a string, not a list" },
	{ "log_file = { a = 1; };", 1, "log_file: must be a string, "
	    "not a group" },
	{ "durability = \"sync\";", 1, "durability: must be \"fsync\", "
	    "\"write\" or \"none\", not the string \"sync\"" },
	{ "durability = 1;", 1, "durability: must be \"fsync\", "
	    "\"write\" or \"none\", not 1" },
	{ "durability = \"\";", 1, "durability: must be \"fsync\", "
	    "\"write\" or \"none\", not an empty string" },
	{ "durability = \"a\\\"b\\n\";", 1, "durability: must be \"fsync\", "
	    "\"write\" or \"none\", not the string \"a\\\"b\\x0a\"" },
	{ "durability = \"0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789\";", 1,
	    "durability: must be \"fsync\", \"write\" or \"none\", not the "
	    "string \"0123456789012345678901234567890123456789...\"" },
	{ "log_level = \"verbose\";", 1, "log_level: must be \"debug\", "
	    "\"info\", \"notice\" or \"warning\", not the string \"verbose\"" },
	{ "protected_mode = \"no\";", 1, "protected_mode: must be true or "
	    "false, not the string \"no\"" },
	{ "daemonize = 1;", 1, "daemonize: must be true or false, not 1" },
	{ "metrics = 5;", 1, "metrics: must be a group such as { bind = "
	    "\"127.0.0.1\"; port = 9121; }, not 5" },
	{ "metrics = ( 1 );", 1, "metrics: must be a group such as { bind = "
	    "\"127.0.0.1\"; port = 9121; }, not a list" },
	{ "metrics = { port = 65536; };", 1,
	    INTMSG("metrics.port", 0, 65535) " (0: off), not 65536" },
	{ "metrics = { port = -1; };", 1,
	    INTMSG("metrics.port", 0, 65535) " (0: off), not -1" },
	{ "metrics = { port = \"9121\"; };", 1, INTMSG("metrics.port", 0, 65535)
	    " (0: off), not the string \"9121\"" },
	{ "metrics = { bind = \"\"; };", 1, "metrics.bind: must be a "
	    "non-empty string, not an empty string" },
	/* The line is the key's own, wherever it is. */
	{ "port = 7000;\nworkers = 2;\n\ncache_size_mb = 0;\nport2 = 1;", 4,
	    INTMSG("cache_size_mb", 1, 65536) ", not 0" },
	{ "# comment\nmetrics = {\n  bind = \"::1\";\n  port = 70000;\n};", 4,
	    INTMSG("metrics.port", 0, 65535) " (0: off), not 70000" },
	{ "metrics = { port = 1; };\nport = 4294967297;", 2,
	    INTMSG("port", 1, 65535) ", not 4294967297" },
	/* Unknown keys. */
	{ "port = 7000;\ncolour = 1;", 2, "colour: unknown key; see "
	    "dqd.conf(5) for the keys allowed" },
	{ "Port = 1;", 1, "Port: unknown key (did you mean port?)" },
	{ "max_message_size = 1;", 1, "max_message_size: unknown key; see "
	    "dqd.conf(5) for the keys allowed" },
	{ "requirepas = \"x\";", 1, "requirepas: unknown key (did you mean "
	    "requirepass?)" },
	{ "metric = { port = 1; };", 1, "metric: unknown key (did you mean "
	    "metrics?)" },
	{ "metrics = {\n  host = \"x\";\n};", 2, "metrics.host: unknown key; "
	    "the metrics group holds bind and port" },
	{ "metrics = { prot = 1; };", 1, "metrics.prot: unknown key (did you "
	    "mean port?)" },
	{ "metrics = { metrics = { port = 1; }; };", 1, "metrics.metrics: "
	    "unknown key; the metrics group holds bind and port" },
};

Test(config, bad_values)
{
	size_t	i;

	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
		expect_error(bad_values[i].text, bad_values[i].line,
		    bad_values[i].msg);
}

/* The wrapped literals again, on a line of their own. */
static const struct bad wrapped_next_line[] = {
	{ "port =\n  4294983897;", 1,
	    INTMSG("port", 1, 65535) ", not 4294983897" },
	{ "port = // the port\n  4294967297;", 1,
	    INTMSG("port", 1, 65535) ", not 4294967297" },
	{ "\nport\n=\n4294967297\n;", 2,
	    INTMSG("port", 1, 65535) ", not 4294967297" },
	{ "max_deliveries =\n 4294967299;", 1, INTMSG("max_deliveries", 0,
	    1000000) " (0: no limit), not 4294967299" },
	{ "metrics = {\n  port = /* c */\n 4294967297; };", 2,
	    INTMSG("metrics.port", 0, 65535) " (0: off), not 4294967297" },
};

Test(config, wrapped_value_on_its_own_line)
{
	size_t	i;

	for (i = 0; i < sizeof(wrapped_next_line) /
	    sizeof(wrapped_next_line[0]); i++)
		expect_error(wrapped_next_line[i].text,
		    wrapped_next_line[i].line, wrapped_next_line[i].msg);
}

Test(config, syntax_error)
{
	expect_error("port = 1;\nbind = ;\n", 2, "syntax error");
	expect_error("port = 1;\n\nworkers = = 2;\n", 3, "syntax error");
	/* libconfig does not name it; dqd does. */
	expect_error("port = 1;\nport = 2;\n", 2, "port: given twice");
}

Test(config, include_names_the_included_file)
{
	struct config	 cfg;
	const char	*inc, *path;
	char		 text[256], err[512], want[512];

	inc = conf("port = 1;\n\nworkers = 1000;\n");
	snprintf(text, sizeof(text), "bind = \"::1\";\n@include \"%s\"\n", inc);
	path = conf(text);
	config_defaults(&cfg);
	cr_assert_eq(config_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: workers: must be an integer from "
	    "0 to 256 (0: one per CPU), not 1000", inc);
	cr_expect_str_eq(err, want);
	config_free(&cfg);
}

Test(config, missing_file)
{
	struct config	cfg;
	char		path[256], err[512], want[512];

	snprintf(path, sizeof(path), "%s/nonexistent.conf", tmpdir);
	config_defaults(&cfg);
	cr_expect_eq(config_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	cr_expect_str_eq(err, want);
	expect_defaults(&cfg);

	cr_expect_eq(config_load(&cfg, tmpdir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", tmpdir, strerror(EISDIR));
	cr_expect_str_eq(err, want);
	config_free(&cfg);
}

Test(config, short_error_buffer)
{
	struct config	cfg;
	char		err[8];

	config_defaults(&cfg);
	cr_expect_eq(config_load(&cfg, conf("port = 0;\n"), err, sizeof(err)),
	    -1);
	cr_expect_eq(strlen(err), sizeof(err) - 1);
	cr_expect_eq(config_load(&cfg, conf("port = 0;\n"), err, 0), -1);
	config_free(&cfg);
}

static int
check(const char *text, char *err, size_t errlen)
{
	struct config	cfg;
	int		rc;

	load_ok(&cfg, text);
	rc = config_check(&cfg, err, errlen);
	config_free(&cfg);
	return rc;
}

Test(config, protected_mode)
{
	static const char *const loopback[] = {
		"127.0.0.1", "127.1.2.3", "::1", "localhost", "LocalHost",
		"::ffff:127.0.0.1"
	};
	static const char *const remote[] = {
		"0.0.0.0", "::", "10.0.0.1", "192.168.1.1", "192.0.2.10",
		"::ffff:10.0.0.1", "128.0.0.1", "*"
	};
	char	text[256], err[512], want[512];
	size_t	i;

	for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		snprintf(text, sizeof(text), "bind = \"%s\";\n", loopback[i]);
		cr_expect_eq(check(text, err, sizeof(err)), 0, "%s: %s",
		    loopback[i], err);
	}
	for (i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		snprintf(text, sizeof(text), "bind = \"%s\";\n", remote[i]);
		cr_expect_eq(check(text, err, sizeof(err)), -1, "%s",
		    remote[i]);
		snprintf(want, sizeof(want), "%s:1: bind: protected mode refuses "
		    "to listen on %s, which is not a loopback address, without "
		    "a password; set requirepass, or set "
		    "protected_mode = false to let any host in without one",
		    files[nfiles - 1], remote[i]);
		cr_expect_str_eq(err, want);

		snprintf(text, sizeof(text), "bind = \"%s\";\n"
		    "requirepass = \"pw\";\n", remote[i]);
		cr_expect_eq(check(text, err, sizeof(err)), 0, "%s", err);
		snprintf(text, sizeof(text), "bind = \"%s\";\n"
		    "protected_mode = false;\n", remote[i]);
		cr_expect_eq(check(text, err, sizeof(err)), 0, "%s", err);
	}
	/* An empty requirepass is no password. */
	cr_expect_eq(check("bind = \"0.0.0.0\"; requirepass = \"\";\n", err,
	    sizeof(err)), -1);
	/* No address at all: said so, before protected mode (looks like
	   an address, so no DNS query is made). */
	cr_expect_eq(check("bind = \"256.1.1.1\";\n", err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: bind: cannot listen on 256.1.1.1: ",
	    files[nfiles - 1]);
	cr_expect(strncmp(err, want, strlen(want)) == 0, "%s", err);
}

Test(config, protected_mode_without_file)
{
	struct config	cfg;
	char		err[512];

	config_defaults(&cfg);
	dq_free(cfg.bind);
	cfg.bind = dq_strdup("0.0.0.0");
	cr_assert_not_null(cfg.bind);
	cr_expect_eq(config_check(&cfg, err, sizeof(err)), -1);
	cr_expect_eq(strncmp(err, "bind: protected mode", 20), 0, "%s", err);
	config_free(&cfg);
}

Test(config, metrics_port_clash)
{
	char	err[512], want[512];

	cr_expect_eq(check("metrics = { port = 6379; };\n", err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want), "%s:1: metrics.port: 6379 is the server's "
	    "own port on 127.0.0.1; choose another port for metrics",
	    files[nfiles - 1]);
	cr_expect_str_eq(err, want);
	cr_expect_eq(check("port = 7000; metrics = { port = 7000; "
	    "bind = \"0.0.0.0\"; };\n", err, sizeof(err)), -1);
	cr_expect_eq(check("bind = \"localhost\"; metrics = { port = 6379; "
	    "bind = \"127.0.0.1\"; };\n", err, sizeof(err)), -1);
	cr_expect_eq(check("bind = \"::\"; requirepass = \"x\";\n"
	    "metrics = { port = 6379; };\n", err, sizeof(err)), -1);
	cr_expect_eq(check("bind = \"::1\"; metrics = { port = 6379; "
	    "bind = \"0:0:0:0:0:0:0:1\"; };\n", err, sizeof(err)), -1);

	cr_expect_eq(check("metrics = { port = 6380; };\n", err, sizeof(err)),
	    0, "%s", err);
	cr_expect_eq(check("metrics = { port = 6379; "
	    "bind = \"127.0.0.2\"; };\n", err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(check("bind = \"::1\"; metrics = { port = 6379; };\n",
	    err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(check("metrics = { port = 0; };\n", err, sizeof(err)),
	    0, "%s", err);
}

/* config_each output as "name=value\n" lines. */
struct out {
	char	buf[4096];
	size_t	len;
};

static void
collect(const char *name, const char *value, void *arg)
{
	struct out	*o = arg;
	int		 n;

	n = snprintf(o->buf + o->len, sizeof(o->buf) - o->len, "%s=%s\n",
	    name, value);
	cr_assert_lt((size_t)n, sizeof(o->buf) - o->len);
	o->len += (size_t)n;
}

static const char *
each(const struct config *cfg, const char *pattern)
{
	static struct out	o;

	o.len = 0;
	o.buf[0] = '\0';
	config_each(cfg, pattern, strlen(pattern), 1, collect, &o);
	return o.buf;
}

Test(config, each)
{
	struct config	cfg;
	char		want[1024];

	config_defaults(&cfg);
	snprintf(want, sizeof(want),
	    "bind=127.0.0.1\n"
	    "port=6379\n"
	    "workers=%ld\n"
	    "data_dir=dqd-data\n"
	    "cache_size_mb=64\n"
	    "durability=write\n"
	    "flush_interval_ms=1000\n"
	    "requirepass=\n"
	    "maxclients=10000\n"
	    "timeout=0\n"
	    "max_message_bytes=1048576\n"
	    "max_deliveries=0\n"
	    "pidfile=\n"
	    "log_file=\n"
	    "log_level=notice\n"
	    "protected_mode=yes\n"
	    "daemonize=no\n"
	    "enable_debug_command=no\n"
	    "checkpoint_interval_s=60\n"
	    "min_free_disk_mb=64\n"
	    "wheel_bucket_ms=65536\n"
	    "empty_queue_ttl_s=600\n"
	    "metrics.bind=127.0.0.1\n"
	    "metrics.port=0\n"
	    "save=\n"
	    "appendonly=no\n"
	    "databases=1\n", cpus());
	cr_expect_str_eq(each(&cfg, "*"), want);
	cr_expect_str_eq(each(&cfg, "port"), "port=6379\n");
	cr_expect_str_eq(each(&cfg, "PORT"), "port=6379\n");
	cr_expect_str_eq(each(&cfg, "*port"), "port=6379\nmetrics.port=0\n");
	cr_expect_str_eq(each(&cfg, "metrics.*"),
	    "metrics.bind=127.0.0.1\nmetrics.port=0\n");
	cr_expect_str_eq(each(&cfg, "max*"), "maxclients=10000\n"
	    "max_message_bytes=1048576\nmax_deliveries=0\n");
	cr_expect_str_eq(each(&cfg, "databases"), "databases=1\n");
	cr_expect_str_eq(each(&cfg, "save"), "save=\n");
	cr_expect_str_eq(each(&cfg, "appendonly"), "appendonly=no\n");
	cr_expect_str_eq(each(&cfg, "da?a_dir"), "data_dir=dqd-data\n");
	cr_expect_str_eq(each(&cfg, "nosuchkey"), "");
	cr_expect_str_eq(each(&cfg, ""), "");
	config_free(&cfg);

	load_ok(&cfg, "requirepass = \"s3cret\"; protected_mode = false;\n"
	    "daemonize = true; durability = \"fsync\"; log_level = \"debug\";\n"
	    "pidfile = \"/run/dqd.pid\"; log_file = \"syslog\";\n"
	    "max_message_bytes = 536870912L; metrics = { port = 9121; };\n");
	cr_expect_str_eq(each(&cfg, "requirepass"), "requirepass=s3cret\n");
	cr_expect_str_eq(each(&cfg, "*mode"), "protected_mode=no\n");
	cr_expect_str_eq(each(&cfg, "daemonize"), "daemonize=yes\n");
	cr_expect_str_eq(each(&cfg, "durability"), "durability=fsync\n");
	cr_expect_str_eq(each(&cfg, "log*"),
	    "log_file=syslog\nlog_level=debug\n");
	cr_expect_str_eq(each(&cfg, "pidfile"), "pidfile=/run/dqd.pid\n");
	cr_expect_str_eq(each(&cfg, "max_message_bytes"),
	    "max_message_bytes=536870912\n");
	cr_expect_str_eq(each(&cfg, "metrics.port"), "metrics.port=9121\n");
	config_free(&cfg);
}

/* Fault injection: the allocation numbered fail_at fails. */
static int	alloc_calls, fail_at;

static void *
failing_malloc(size_t n)
{
	if (alloc_calls++ == fail_at)
		return NULL;
	return malloc(n);
}

Test(config, out_of_memory)
{
	struct config	 cfg;
	const char	*path;
	char		 err[512];
	int		 rc;

	path = conf("bind = \"::1\"; data_dir = \"/d\"; requirepass = \"p\";\n"
	    "pidfile = \"/p\"; log_file = \"/l\";\n"
	    "metrics = { bind = \"::1\"; port = 9000; };\n");
	for (fail_at = 0;; fail_at++) {
		alloc_calls = 0;
		dq_malloc_fn = failing_malloc;
		config_defaults(&cfg);
		rc = config_check(&cfg, err, sizeof(err));
		if (rc == 0)
			rc = config_load(&cfg, path, err, sizeof(err));
		dq_malloc_fn = malloc;
		if (rc == -1)
			cr_expect_not_null(strstr(err, "out of memory"),
			    "%d: %s", fail_at, err);
		config_free(&cfg);
		if (rc == 0 && alloc_calls <= fail_at)
			break;
		cr_assert_lt(fail_at, 100);
	}
}
