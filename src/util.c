#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* strtod needs a terminated copy; a longer number is not a sane argument. */
#define DOUBLE_MAX_CHARS	256

/*
 * Reads the magnitude of a decimal integer the way Redis' string2ll does:
 * "0" alone, or a digit 1-9 followed by digits, the whole of s[0..len).
 * Fails on overflow of uint64_t.
 */
static int
parse_digits(const char *s, size_t len, uint64_t *out)
{
	uint64_t	 v;
	size_t		 i;

	if (len == 0)
		return -1;
	if (len == 1 && s[0] == '0') {
		*out = 0;
		return 0;
	}
	if (s[0] < '1' || s[0] > '9')
		return -1;
	v = 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > UINT64_MAX / 10)
			return -1;
		v *= 10;
		if (v > UINT64_MAX - (uint64_t)(s[i] - '0'))
			return -1;
		v += (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int
parse_ll(const char *s, size_t len, long long *out)
{
	uint64_t	v;

	if (len > 0 && s[0] == '-') {
		/* "-0" fails here too: after '-' the first digit is 1-9. */
		if (len == 1 || s[1] == '0' ||
		    parse_digits(s + 1, len - 1, &v) == -1)
			return -1;
		if (v > (uint64_t)LLONG_MAX + 1)
			return -1;
		/* Negate in unsigned arithmetic: -LLONG_MIN overflows. */
		*out = v == (uint64_t)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
		return 0;
	}
	if (parse_digits(s, len, &v) == -1 || v > (uint64_t)LLONG_MAX)
		return -1;
	*out = (long long)v;
	return 0;
}

int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t	v;

	if (parse_digits(s, len, &v) == -1)
		return -1;
	*out = v;
	return 0;
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' ||
	    c == '\f' || c == '\r';
}

int
parse_double(const char *s, size_t len, double *out)
{
	char	 tmp[DOUBLE_MAX_CHARS];
	char	*end;
	double	 v;

	if (len == 0 || len >= sizeof(tmp) || is_space((unsigned char)s[0]))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	v = strtod(tmp, &end);
	/* An embedded NUL stops strtod early and fails this test too. */
	if (end != tmp + len)
		return -1;
	/* Like Redis: overflow and underflow to zero are errors. */
	if (errno == ERANGE && (isinf(v) || v == 0.0))
		return -1;
	if (!isfinite(v))
		return -1;
	*out = v;
	return 0;
}

size_t
fmt_ll(char *dst, size_t size, long long v)
{
	char		 tmp[24];
	uint64_t	 u;
	size_t		 n, len;

	/* Work on the magnitude in unsigned form so LLONG_MIN is safe. */
	u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	n = sizeof(tmp);
	do {
		tmp[--n] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		tmp[--n] = '-';
	len = sizeof(tmp) - n;
	if (len >= size)
		return 0;
	memcpy(dst, tmp + n, len);
	dst[len] = '\0';
	return len;
}

static uint64_t
clock_ms(clockid_t id)
{
	struct timespec	ts;

	if (clock_gettime(id, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int
path_join(char *out, size_t len, const char *dir, const char *name)
{
	int	n;

	n = snprintf(out, len, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

uint64_t
mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

uint64_t
mono_us(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int
eqcase(const char *s, size_t len, const char *word)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (word[i] == '\0' ||
		    lower((unsigned char)s[i]) != lower((unsigned char)word[i]))
			return 0;
	}
	return word[len] == '\0';
}

void
child_signals_setup(void (*fn)(int))
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = fn;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
}

uint64_t
fnv1a(const void *data, size_t len)
{
	const unsigned char	*p = data;
	uint64_t		 h = 1469598103934665603ULL;
	size_t			 i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

void
format_sockaddr(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char	host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%d", host, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%d", host, ntohs(s6->sin6_port));
	} else
		snprintf(out, len, "unix");
}
