#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

#include "log.h"

static enum log_level	 log_level = LOG_LEVEL_NOTICE;
static int		 log_syslog;
static int		 log_fd = STDERR_FILENO;
static char		 log_path[4096];
static char		 log_proc[32] = "dqd";
static int		 log_tee;	/* warnings to stderr as well */

static const int	 syslog_prio[] = {
	LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING
};
static const char	 level_mark[] = { '.', '-', '*', '#' };	/* Redis' marks */

static int
log_open(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/*
 * The new file is opened before anything changes, so that a target that
 * cannot be opened (a reload with a bad log_file) leaves the log as it was.
 */
int
log_init(const char *target, enum log_level level, const char *ident)
{
	int	to_syslog = target != NULL && strcmp(target, "syslog") == 0;
	int	fd = STDERR_FILENO;

	if (target != NULL && *target != '\0' && !to_syslog) {
		if (strlen(target) >= sizeof(log_path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if ((fd = log_open(target)) == -1)
			return -1;
	}
	log_level = level;
	if (log_syslog) {
		closelog();
		log_syslog = 0;
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	log_path[0] = '\0';
	if (to_syslog) {
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog = 1;
	} else if (fd != STDERR_FILENO)
		strcpy(log_path, target);
	return 0;
}

int
log_reopen(void)
{
	int	fd;

	if (log_syslog || log_path[0] == '\0')
		return 0;
	if ((fd = log_open(log_path)) == -1)
		return -1;
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	return 0;
}

void
log_setproc(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(log_proc, sizeof(log_proc), fmt, ap);
	va_end(ap);
}

void
log_stderr_too(int on)
{
	log_tee = on;
}

/* The short form a terminal shows, as dqd's other messages there. */
static void
tee_stderr(const char *msg)
{
	char	line[2100];
	int	n;

	if (!log_syslog && log_fd == STDERR_FILENO)
		return;		/* already there */
	n = snprintf(line, sizeof(line), "dqd: %s\n", msg);
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	if (write(STDERR_FILENO, line, n) == -1) {
		/* Nowhere else to report it. */
	}
}

void
log_setlevel(enum log_level level)
{
	log_level = level;
}

int
log_enabled(enum log_level level)
{
	return level >= log_level;
}

static void	vlog(enum log_level, int, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));

static void
vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char		 msg[2048], line[2300], stamp[32];
	struct timeval	 tv;
	struct tm	 tm;
	int		 saved = errno, n;

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	if (log_tee && level == LOG_LEVEL_WARNING)
		tee_stderr(msg);
	if (log_syslog) {
		syslog(syslog_prio[level], "%s: %s", log_proc, msg);
		errno = saved;
		return;
	}
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%d %b %Y %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%d:%s %s.%03d %c %s\n", (int)getpid(),
	    log_proc, stamp, (int)(tv.tv_usec / 1000), level_mark[level], msg);
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	/* One write(2) per line keeps lines of several processes whole. */
	if (write(log_fd, line, n) == -1) {
		/* Nowhere else to report it. */
	}
	errno = saved;
}

#define LOGFN(name, level, with_errno)				\
void								\
name(const char *fmt, ...)					\
{								\
	va_list	ap;						\
								\
	va_start(ap, fmt);					\
	vlog(level, with_errno, fmt, ap);			\
	va_end(ap);						\
}

LOGFN(log_debug, LOG_LEVEL_DEBUG, 0)
LOGFN(log_info, LOG_LEVEL_INFO, 0)
LOGFN(log_notice, LOG_LEVEL_NOTICE, 0)
LOGFN(log_warn, LOG_LEVEL_WARNING, 1)
LOGFN(log_warnx, LOG_LEVEL_WARNING, 0)

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARNING, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARNING, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
