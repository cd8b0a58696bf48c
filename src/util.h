/*
 * util: strict conversions of protocol arguments and small helpers.
 *
 * The parsers accept exactly what Redis' string2ll accepts: an optional '-',
 * decimal digits, no leading zeros (except "0"), no spaces, no '+', and a
 * value that fits.  They return 0 on success and -1 otherwise, leaving *out
 * untouched.
 */
#ifndef DQ_UTIL_H
#define DQ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int	parse_ll(const char *, size_t, long long *);
int	parse_u64(const char *, size_t, uint64_t *);
int	parse_double(const char *, size_t, double *);	/* finite, no junk */
size_t	fmt_ll(char *, size_t, long long);		/* returns length */
uint64_t now_ms(void);		/* CLOCK_REALTIME in ms since the epoch */
uint64_t mono_ms(void);		/* CLOCK_MONOTONIC in ms */
uint64_t mono_us(void);		/* CLOCK_MONOTONIC in us */
int	eqcase(const char *, size_t, const char *);	/* ASCII, whole word */
uint64_t fnv1a(const void *, size_t);	/* FNV-1a, 64 bits */
/* "dir/name" into out; -1 with ENAMETOOLONG if it does not fit. */
int	path_join(char *out, size_t len, const char *dir, const char *name);
/*
 * A worker's or the housekeeper's signals: fn for TERM (stop), QUIT
 * (retire) and USR1 (reopen the log); INT, HUP and PIPE ignored, since ^C
 * and reloads are the master's to act on.
 */
void	child_signals_setup(void (*fn)(int));
struct sockaddr_storage;
/* "ip:port" as Redis writes it ("[ip6]:port"; "unix" for others). */
void	format_sockaddr(const struct sockaddr_storage *, char *, size_t);

#endif
