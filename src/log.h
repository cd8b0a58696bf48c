/*
 * log: one logging module for every process (OpenSMTPD's log.c).
 *
 * Messages go to stderr (the default), to a file, or to syslog(3).  Each
 * line names the process ("master", "worker 2", ...) and the level.
 * log_warn() and fatal() append strerror(errno); the x variants do not.
 * fatal()/fatalx() log at the warning level and exit(1).
 */
#ifndef DQ_LOG_H
#define DQ_LOG_H

#include <stdarg.h>

#include "config.h"

/* target: NULL or "" for stderr, "syslog", or a file path. */
int	log_init(const char *target, enum log_level, const char *ident);
int	log_reopen(void);		/* SIGUSR1 / after logrotate */
void	log_setproc(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
/* While on, warnings also go to stderr when the log goes elsewhere: a
   daemon starting up shows its errors to whoever started it. */
void	log_stderr_too(int);
void	log_setlevel(enum log_level);
int	log_enabled(enum log_level);

void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2)));

#endif
