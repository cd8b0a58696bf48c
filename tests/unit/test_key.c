/*
 * Key layout: big-endian so that byte order is numeric order, and the
 * encoders and decoders agree on every field.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "key.h"

Test(key, be_roundtrip)
{
	unsigned char	b[8];

	be32_put(b, 0x01020304);
	cr_assert_eq(b[0], 1);
	cr_assert_eq(b[3], 4);
	cr_assert_eq(be32_get(b), 0x01020304u);
	be64_put(b, 0x0102030405060708ULL);
	cr_assert_eq(b[0], 1);
	cr_assert_eq(b[7], 8);
	cr_assert_eq(be64_get(b), 0x0102030405060708ULL);
	be64_put(b, UINT64_MAX);
	cr_assert_eq(be64_get(b), UINT64_MAX);
}

Test(key, msg_key_roundtrip)
{
	struct msg_key	in = { 7, 1732480000123ULL, 42, 0 }, out;
	unsigned char	b[MSG_KEY_MAX];

	cr_assert_eq(msg_key_encode(b, &in), MSG_KEY_LEN);
	cr_assert_eq(msg_key_decode(b, MSG_KEY_LEN, &out), 0);
	cr_assert_eq(out.qid, 7u);
	cr_assert_eq(out.due, 1732480000123ULL);
	cr_assert_eq(out.seq, 42u);
	cr_assert_eq(out.bucket, 0u);
	cr_assert_eq(msg_key_decode(b, MSG_KEY_LEN - 1, &out), -1);
}

Test(key, far_key_roundtrip)
{
	struct msg_key	in = { 7, 1732480000123ULL, 42, 0 }, out;
	unsigned char	b[MSG_KEY_MAX];

	in.bucket = msg_bucket(in.due, 65536);
	cr_assert_eq(in.bucket, 1732480000123ULL - 1732480000123ULL % 65536);
	cr_assert_eq(msg_key_encode(b, &in), MSG_FAR_KEY_LEN);
	cr_assert_eq(msg_key_decode(b, MSG_FAR_KEY_LEN, &out), 0);
	cr_assert_eq(out.qid, 7u);
	cr_assert_eq(out.due, in.due);
	cr_assert_eq(out.seq, 42u);
	cr_assert_eq(out.bucket, in.bucket);
	/* A far key cut to near length, or a near key's second field
	   with the far bit, is malformed. */
	cr_assert_eq(msg_key_decode(b, MSG_KEY_LEN, &out), -1);
	in.bucket = in.due + 1;		/* due before its bucket starts */
	msg_key_encode(b, &in);
	cr_assert_eq(msg_key_decode(b, MSG_FAR_KEY_LEN, &out), -1);
}

static int
cmp_keys(const struct msg_key *a, const struct msg_key *b)
{
	unsigned char	ka[MSG_KEY_MAX], kb[MSG_KEY_MAX];
	size_t		la, lb;
	int		c;

	/* Berkeley DB's default comparison: bytes, then the shorter. */
	la = msg_key_encode(ka, a);
	lb = msg_key_encode(kb, b);
	if ((c = memcmp(ka, kb, la < lb ? la : lb)) != 0)
		return c;
	return la < lb ? -1 : la > lb;
}

/* Berkeley DB compares bytes: the encoding must sort by (qid, due, seq). */
Test(key, byte_order_is_queue_due_seq_order)
{
	struct msg_key	a = { 1, 1000, 5, 0 }, b = { 1, 1001, 1, 0 };
	struct msg_key	c = { 2, 0, 0, 0 }, d = { 1, 1000, 6, 0 };
	struct msg_key	e = { 1, 255, 0, 0 }, f = { 1, 256, 0, 0 };

	cr_assert_lt(cmp_keys(&a, &b), 0, "earlier due first");
	cr_assert_lt(cmp_keys(&b, &c), 0, "queue before due");
	cr_assert_lt(cmp_keys(&a, &d), 0, "same due: sequence order");
	cr_assert_lt(cmp_keys(&e, &f), 0, "no little-endian surprise");
}

/* Far keys: after every near key of their queue, before the next queue;
   by bucket, then by second of arrival within a bucket. */
Test(key, far_keys_sort_after_near_by_bucket_then_second)
{
	uint64_t	sec = UINT64_C(1) << 30;	/* seq: us << 10 */
	struct msg_key	near = { 1, UINT64_C(1) << 62, 9, 0 };
	struct msg_key	f1 = { 1, 70000, 5 * sec + 999, 65536 };
	struct msg_key	f2 = { 1, 66000, 6 * sec, 65536 };
	struct msg_key	f3 = { 1, 131072, 1, 131072 };
	struct msg_key	next = { 2, 0, 0, 0 };

	cr_assert_lt(cmp_keys(&near, &f1), 0, "near before far");
	cr_assert_lt(cmp_keys(&f1, &f2), 0, "a bucket by second of arrival");
	cr_assert_lt(cmp_keys(&f2, &f3), 0, "buckets in order");
	cr_assert_lt(cmp_keys(&f3, &next), 0, "queue first");
}

/* Within one second, consecutive arrivals are spread over the range (so
   that pages fill as under random inserts), and every sequence number
   comes back from its key. */
Test(key, far_seq_spread_within_a_second_and_reversible)
{
	uint64_t	base = UINT64_C(1732480000123456) << 10 | 3;
	struct msg_key	a = { 1, 70000, 0, 65536 }, b = a, out;
	unsigned char	kb[MSG_KEY_MAX];
	uint64_t	i;
	int		before = 0;

	for (i = 0; i < 1000; i++) {
		a.seq = base + (i << 10);
		b.seq = base + ((i + 1) << 10);
		before += cmp_keys(&a, &b) < 0;
		msg_key_encode(kb, &a);
		cr_assert_eq(msg_key_decode(kb, MSG_FAR_KEY_LEN, &out), 0);
		cr_assert_eq(out.seq, a.seq);
	}
	cr_assert(before > 300 && before < 700, "%d of 1000 in order",
	    before);
}

Test(key, header_roundtrip)
{
	struct msg_hdr	in = { MSG_F_RESERVED, 5, 3 }, out;
	unsigned char	b[MSG_HDR_LEN + 5 + 10];

	msg_hdr_encode(b, &in);
	cr_assert_eq(msg_hdr_decode(b, sizeof(b), &out), 0);
	cr_assert_eq(out.flags, MSG_F_RESERVED);
	cr_assert_eq(out.idlen, 5);
	cr_assert_eq(out.deliveries, 3u);
}

Test(key, header_rejects_malformed)
{
	struct msg_hdr	in = { 0, 20, 0 }, out;
	unsigned char	b[MSG_HDR_LEN + 10];

	msg_hdr_encode(b, &in);
	cr_assert_eq(msg_hdr_decode(b, sizeof(b), &out), -1,
	    "id longer than the value");
	cr_assert_eq(msg_hdr_decode(b, MSG_HDR_LEN - 1, &out), -1,
	    "value shorter than a header");
}

Test(key, server_id)
{
	char		id[SERVER_ID_MAX];
	uint64_t	due, seq;
	size_t		n;

	n = msg_server_id(id, sizeof(id), 0x18a9c3f2b40ULL, 1042);
	cr_assert_str_eq(id, "#18a9c3f2b40-412");
	cr_assert_eq(n, strlen(id));
	cr_assert_eq(msg_server_id_parse(id, n, &due, &seq), 0);
	cr_assert_eq(due, 0x18a9c3f2b40ULL);
	cr_assert_eq(seq, 1042u);
	n = msg_server_id(id, sizeof(id), UINT64_MAX, UINT64_MAX);
	cr_assert_lt(n, SERVER_ID_MAX);
	cr_assert_eq(msg_server_id_parse(id, n, &due, &seq), 0);
	cr_assert_eq(due, UINT64_MAX);
	cr_assert_eq(seq, UINT64_MAX);
	n = msg_server_id(id, sizeof(id), 0, 0);
	cr_assert_str_eq(id, "#0-0");
	cr_assert_eq(msg_server_id_parse(id, n, &due, &seq), 0);
	n = msg_server_id(id, sizeof(id), 0xf0, 0x10);
	cr_assert_str_eq(id, "#f0-10");
	cr_assert_eq(n, 6u);
	/* too small for the longest id: nothing written */
	cr_assert_eq(msg_server_id(id, SERVER_ID_MAX - 1, 1, 1), 0u);
}

Test(key, server_id_parse_rejects_other_forms)
{
	static const char *bad[] = {
		"", "#", "#1", "#1-", "#-1", "1-1", "#01-1", "#1-01", "#1-1-",
		"#A-1", "#1-1 ", "#g-1", "#1_1", "#11111111111111111-1",
		"order-17", "#1-11111111111111111",
	};
	uint64_t	due, seq;
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(msg_server_id_parse(bad[i], strlen(bad[i]), &due,
		    &seq), -1, "accepted \"%s\"", bad[i]);
}
