/*
 * dqd: the delayed queue daemon.  Command line, configuration, logging,
 * daemonizing; then the master takes over (master.c).
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: dqd [-t | -T] [-c file] [-d]\n"
	    "       dqd -v | -h\n"
	    "  -c, --config FILE   read the configuration from FILE "
	    "(default: built-in defaults)\n"
	    "  -t, --test-config   check the configuration and exit\n"
	    "  -T, --dump-config   check it, print every key and its value, "
	    "and exit\n"
	    "  -d, --debug         log at the debug level to stderr\n"
	    "  -v, --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n"
	    "See dqd(8) and dqd.conf(5).\n");
	exit(status);
}

/* -T: one "name value" line per key, as CONFIG GET names them. */
static void
print_setting(const char *name, const char *value, void *arg)
{
	(void)arg;
	printf("%s %s\n", name, value);
}

/* As many descriptors as the hard limit allows: maxclients needs them. */
static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The parent of a daemon: exits as the daemon's start went. */
static void __attribute__((noreturn))
wait_ready(pid_t pid, int fd)
{
	ssize_t	n;
	char	c;
	int	status = 0;

	while ((n = read(fd, &c, 1)) == -1 && errno == EINTR)
		;
	if (n == 1)
		_exit(0);
	/* Gone before it was ready: it has told stderr why. */
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	_exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ?
	    WEXITSTATUS(status) : 1);
}

/*
 * The parent waits until the daemon is ready, so that a start that fails
 * (port in use, recovery failed) fails the command that ran dqd, with the
 * reason on its stderr.  The daemon keeps that stderr and writes one byte
 * to the returned pipe when it is ready (master.c).
 */
static int
daemonize(void)
{
	pid_t	pid;
	int	fd, p[2];

	if (pipe2(p, O_CLOEXEC) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid != 0) {
		close(p[1]);
		wait_ready(pid, p[0]);
	}
	close(p[0]);
	if (setsid() == -1)
		fatal("setsid");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return p[1];
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test-config", no_argument, NULL, 't' },
		{ "dump-config", no_argument, NULL, 'T' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config	*cfg;
	const char	*path = NULL;
	char		 err[1024];
	int		 ch, test = 0, debug = 0, ready_fd = -1;

	while ((ch = getopt_long(argc, argv, "c:tTdvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
		case 'T':
			if (test != 0 && test != (ch == 't' ? 1 : 2)) {
				fprintf(stderr, "dqd: -t and -T exclude each "
				    "other\n");
				usage(1);
			}
			test = ch == 't' ? 1 : 2;
			break;
		case 'd':
			debug = 1;
			break;
		case 'v':
			printf("dqd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(0);
		default:
			usage(1);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "dqd: unexpected argument '%s' (the "
		    "configuration file goes after -c)\n", argv[optind]);
		usage(1);
	}
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		fprintf(stderr, "dqd: out of memory\n");
		return 1;
	}
	config_defaults(cfg);
	if ((path != NULL && config_load(cfg, path, err, sizeof(err)) == -1) ||
	    config_check(cfg, err, sizeof(err)) == -1 ||
	    (test && config_check_files(cfg, err, sizeof(err)) == -1)) {
		fprintf(stderr, "dqd: %s\n", err);
		config_free(cfg);
		free(cfg);
		return 1;
	}
	if (test == 2)
		config_each(cfg, "*", 1, 0, print_setting, NULL);
	else if (test)
		printf("dqd: the configuration %s is valid\n",
		    path ? path : "(built-in defaults)");
	if (test) {
		config_free(cfg);
		free(cfg);
		return 0;
	}
	if (debug) {
		free(cfg->log_file);
		cfg->log_file = NULL;
		cfg->log_level = LOG_LEVEL_DEBUG;
		cfg->daemonize = 0;
	}
	if (log_init(cfg->log_file, cfg->log_level, "dqd") == -1) {
		fprintf(stderr, "dqd: log file %s: %s\n", cfg->log_file,
		    strerror(errno));
		config_free(cfg);
		free(cfg);
		return 1;
	}
	/* Until it is ready, whatever stops the start is said on stderr
	   too, whose reader (a terminal, systemd) waits for the outcome. */
	log_stderr_too(1);
	raise_nofile();
	/*
	 * A service manager waiting for READY=1 (systemd Type=notify,
	 * start-stop-daemon --notify-await) tracks the process it started:
	 * detaching would leave it a dead main process.
	 */
	if (cfg->daemonize && getenv("NOTIFY_SOCKET") != NULL) {
		log_notice("NOTIFY_SOCKET is set: staying in the foreground "
		    "for the service manager (daemonize ignored)");
		cfg->daemonize = 0;
	}
	if (cfg->daemonize)
		ready_fd = daemonize();
	return master_main(cfg, debug, ready_fd);
}
