#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

#define S(x)	(x), (sizeof(x) - 1)

static void
ll_ok(const char *s, long long want)
{
	long long	v = 12345;

	cr_assert_eq(parse_ll(s, strlen(s), &v), 0, "parse_ll(\"%s\") failed", s);
	cr_assert_eq(v, want, "parse_ll(\"%s\") = %lld, want %lld", s, v, want);
}

static void
ll_bad(const char *s, size_t len)
{
	long long	v = 12345;

	cr_assert_eq(parse_ll(s, len, &v), -1, "parse_ll(\"%.*s\") accepted",
	    (int)len, s);
	cr_assert_eq(v, 12345, "parse_ll(\"%.*s\") touched *out", (int)len, s);
}

Test(parse_ll, accepts_what_string2ll_accepts)
{
	ll_ok("0", 0);
	ll_ok("1", 1);
	ll_ok("-1", -1);
	ll_ok("10", 10);
	ll_ok("123456789", 123456789);
	ll_ok("-123456789", -123456789);
	ll_ok("9223372036854775807", LLONG_MAX);
	ll_ok("-9223372036854775808", LLONG_MIN);
	ll_ok("9223372036854775806", LLONG_MAX - 1);
	ll_ok("-9223372036854775807", LLONG_MIN + 1);
}

Test(parse_ll, rejects_everything_else)
{
	ll_bad(S(""));
	ll_bad(S("-"));
	ll_bad(S("+1"));
	ll_bad(S("+0"));
	ll_bad(S("01"));
	ll_bad(S("00"));
	ll_bad(S("-0"));
	ll_bad(S("-01"));
	ll_bad(S(" 1"));
	ll_bad(S("1 "));
	ll_bad(S("1\n"));
	ll_bad(S("1a"));
	ll_bad(S("a1"));
	ll_bad(S("0x10"));
	ll_bad(S("1.0"));
	ll_bad(S("1e3"));
	ll_bad(S("--1"));
	ll_bad(S("9223372036854775808"));
	ll_bad(S("-9223372036854775809"));
	ll_bad(S("18446744073709551615"));
	ll_bad(S("18446744073709551616"));
	ll_bad(S("99999999999999999999999"));
	ll_bad(S("1\0"));
	ll_bad("12", 0);
}

Test(parse_ll, respects_length)
{
	long long	v = 0;

	/* Only the first len bytes are looked at. */
	cr_assert_eq(parse_ll("1234", 2, &v), 0);
	cr_assert_eq(v, 12);
	cr_assert_eq(parse_ll("-5x", 2, &v), 0);
	cr_assert_eq(v, -5);
}

Test(parse_u64, range_and_form)
{
	uint64_t	v = 7;

	cr_assert_eq(parse_u64(S("0"), &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(parse_u64(S("18446744073709551615"), &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(parse_u64(S("9223372036854775808"), &v), 0);
	cr_assert_eq(v, (uint64_t)1 << 63);
	cr_assert_eq(parse_u64(S("3153600000000"), &v), 0);
	cr_assert_eq(v, 3153600000000ULL);
	v = 7;
	cr_assert_eq(parse_u64(S("18446744073709551616"), &v), -1);
	cr_assert_eq(parse_u64(S("-1"), &v), -1);
	cr_assert_eq(parse_u64(S("-0"), &v), -1);
	cr_assert_eq(parse_u64(S("+1"), &v), -1);
	cr_assert_eq(parse_u64(S("01"), &v), -1);
	cr_assert_eq(parse_u64(S(""), &v), -1);
	cr_assert_eq(parse_u64(S(" 1"), &v), -1);
	cr_assert_eq(parse_u64(S("1 "), &v), -1);
	cr_assert_eq(v, 7);
}

static void
dbl_ok(const char *s, double want)
{
	double	v = 99;

	cr_assert_eq(parse_double(s, strlen(s), &v), 0, "\"%s\" rejected", s);
	cr_assert_eq(v, want, "\"%s\" = %g, want %g", s, v, want);
}

static void
dbl_bad(const char *s, size_t len)
{
	double	v = 99;

	cr_assert_eq(parse_double(s, len, &v), -1, "\"%.*s\" accepted",
	    (int)len, s);
	cr_assert_eq(v, 99);
}

Test(parse_double, accepts)
{
	dbl_ok("1.5", 1.5);
	dbl_ok("0", 0.0);
	dbl_ok("-1", -1.0);
	dbl_ok("0.1", 0.1);
	dbl_ok("10", 10.0);
	dbl_ok("1e3", 1000.0);
	dbl_ok(".5", 0.5);
	dbl_ok("-0.25", -0.25);
	dbl_ok("1.7976931348623157e308", DBL_MAX);
}

Test(parse_double, rejects)
{
	char	long_num[300];

	dbl_bad(S(""));
	dbl_bad(S("inf"));
	dbl_bad(S("-inf"));
	dbl_bad(S("infinity"));
	dbl_bad(S("nan"));
	dbl_bad(S("NaN"));
	dbl_bad(S(" 1"));
	dbl_bad(S("\t1"));
	dbl_bad(S("1 "));
	dbl_bad(S("1.5x"));
	dbl_bad(S("abc"));
	dbl_bad(S("1e400"));
	dbl_bad(S("-1e400"));
	dbl_bad(S("1e-400"));
	dbl_bad(S("1\0" "5"));
	dbl_bad(S("-"));
	dbl_bad(S("."));
	memset(long_num, '1', sizeof(long_num));
	dbl_bad(long_num, sizeof(long_num));
}

Test(parse_double, respects_length)
{
	double	v = 0;

	cr_assert_eq(parse_double("2.5junk", 3, &v), 0);
	cr_assert_eq(v, 2.5);
}

Test(fmt_ll, formats)
{
	char	b[32];

	cr_assert_eq(fmt_ll(b, sizeof(b), 0), 1);
	cr_assert_str_eq(b, "0");
	cr_assert_eq(fmt_ll(b, sizeof(b), -42), 3);
	cr_assert_str_eq(b, "-42");
	cr_assert_eq(fmt_ll(b, sizeof(b), LLONG_MAX), 19);
	cr_assert_str_eq(b, "9223372036854775807");
	cr_assert_eq(fmt_ll(b, sizeof(b), LLONG_MIN), 20);
	cr_assert_str_eq(b, "-9223372036854775808");
	/* Too small (no room for the NUL): 0 and nothing written. */
	memcpy(b, "zzzz", 5);
	cr_assert_eq(fmt_ll(b, 3, 123), 0);
	cr_assert_str_eq(b, "zzzz");
	cr_assert_eq(fmt_ll(b, 4, 123), 3);
	cr_assert_str_eq(b, "123");
}

Test(eqcase, whole_word_ascii)
{
	cr_assert_eq(eqcase(S("PING"), "ping"), 1);
	cr_assert_eq(eqcase(S("PiNg"), "PING"), 1);
	cr_assert_eq(eqcase(S("ping"), "ping"), 1);
	cr_assert_eq(eqcase(S("pin"), "ping"), 0);
	cr_assert_eq(eqcase(S("pings"), "ping"), 0);
	cr_assert_eq(eqcase(S(""), ""), 1);
	cr_assert_eq(eqcase(S(""), "a"), 0);
	cr_assert_eq(eqcase(S("a"), ""), 0);
	cr_assert_eq(eqcase(S("pi\0g"), "ping"), 0);
	cr_assert_eq(eqcase(S("ping\0"), "ping"), 0);
	/* '@' and '`' are one bit away from letters but are not letters. */
	cr_assert_eq(eqcase(S("@"), "`"), 0);
	cr_assert_eq(eqcase(S("["), "{"), 0);
	/* Not locale-dependent: bytes above 0x7f compare exactly. */
	cr_assert_eq(eqcase(S("\xc9"), "\xe9"), 0);
	/* Length bounds the comparison, not a NUL in s. */
	cr_assert_eq(eqcase("SADDX", 4, "sadd"), 1);
}

Test(clock, sane)
{
	uint64_t	a, b, r;

	r = now_ms();
	/* After 2020-01-01 and before 2200. */
	cr_assert_gt(r, 1577836800000ULL);
	cr_assert_lt(r, 7258118400000ULL);
	a = mono_ms();
	b = mono_ms();
	cr_assert_geq(b, a);
}

/* format_sockaddr of ip:port in family (AF_UNIX: no address), cut to len. */
static const char *
addr_text(int family, const char *ip, int port, size_t len)
{
	static char		 out[64];
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		s4->sin_port = htons((uint16_t)port);
		cr_assert_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	} else if (family == AF_INET6) {
		s6->sin6_port = htons((uint16_t)port);
		cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	}
	format_sockaddr(&ss, out, len);
	return out;
}

Test(format_sockaddr, as_redis)
{
	cr_assert_str_eq(addr_text(AF_INET, "10.1.2.3", 6379, 64),
	    "10.1.2.3:6379");
	cr_assert_str_eq(addr_text(AF_INET6, "::1", 65535, 64), "[::1]:65535");
	cr_assert_str_eq(addr_text(AF_UNIX, NULL, 0, 64), "unix");
	cr_assert_str_eq(addr_text(AF_UNIX, NULL, 0, 3), "un");	/* cut */
}
