#include <string.h>

#include "key.h"

void
be32_put(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

void
be64_put(unsigned char *p, uint64_t v)
{
	be32_put(p, v >> 32);
	be32_put(p + 4, (uint32_t)v);
}

uint32_t
be32_get(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

uint64_t
be64_get(const unsigned char *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

/*
 * Within a bucket, far keys are ordered by the sequence number with its
 * low 18 bits of microseconds (bits 10-27, above the process bits)
 * reversed: by quarter second of arrival, and within one spread out.
 * Appended in plain arrival order, every page of a bucket would be split
 * in two halves, the left one never written again: pages half full.
 * Scrambled, the messages of the current quarter second land all over its
 * few pages, which fill up as under random inserts, and still only those
 * pages are written.  Reversing bits is its own inverse.  (20 bits, a
 * second: fuller pages, but more of them in the cache; doc/storage.md.)
 */
#define SCRAMBLE_SHIFT	10
#define SCRAMBLE_BITS	18

static uint64_t
far_seq(uint64_t seq)
{
	uint64_t	mask = ((1ULL << SCRAMBLE_BITS) - 1) << SCRAMBLE_SHIFT;
	uint64_t	x = (seq & mask) >> SCRAMBLE_SHIFT, r = 0;
	int		i;

	for (i = 0; i < SCRAMBLE_BITS; i++, x >>= 1)
		r = r << 1 | (x & 1);
	return (seq & ~mask) | r << SCRAMBLE_SHIFT;
}

size_t
msg_key_encode(unsigned char out[MSG_KEY_MAX], const struct msg_key *k)
{
	be32_put(out, k->qid);
	if (k->bucket == 0) {
		be64_put(out + 4, k->due);
		be64_put(out + 12, k->seq);
		return MSG_KEY_LEN;
	}
	be64_put(out + 4, MSG_FAR | k->bucket);
	be64_put(out + 12, far_seq(k->seq));
	be64_put(out + 20, k->due);
	return MSG_FAR_KEY_LEN;
}

int
msg_key_decode(const void *p, size_t len, struct msg_key *k)
{
	const unsigned char	*b = p;
	uint64_t		 second;

	if (len != MSG_KEY_LEN && len != MSG_FAR_KEY_LEN)
		return -1;
	k->qid = be32_get(b);
	second = be64_get(b + 4);
	k->seq = be64_get(b + 12);
	if (len == MSG_KEY_LEN) {
		if (second & MSG_FAR)
			return -1;
		k->due = second;
		k->bucket = 0;
		return 0;
	}
	k->bucket = second & ~MSG_FAR;
	k->seq = far_seq(k->seq);
	k->due = be64_get(b + 20);
	if (!(second & MSG_FAR) || k->bucket == 0 || k->due < k->bucket)
		return -1;
	return 0;
}

uint64_t
msg_bucket(uint64_t due, uint64_t w)
{
	return due - due % w;
}

void
msg_hdr_encode(unsigned char out[MSG_HDR_LEN], const struct msg_hdr *h)
{
	out[0] = h->flags;
	out[1] = 0;
	out[2] = h->idlen >> 8;
	out[3] = h->idlen & 0xff;
	be32_put(out + 4, h->deliveries);
}

int
msg_hdr_decode(const void *p, size_t len, struct msg_hdr *h)
{
	const unsigned char	*b = p;

	if (len < MSG_HDR_LEN)
		return -1;
	h->flags = b[0];
	h->idlen = (uint16_t)(b[2] << 8 | b[3]);
	h->deliveries = be32_get(b + 4);
	if (h->idlen > MAX_ID_LEN || (size_t)h->idlen > len - MSG_HDR_LEN)
		return -1;
	return 0;
}

/* Lower-case hex without leading zeros; returns the number of digits. */
static size_t
hex_put(char *out, uint64_t v)
{
	char	tmp[16];
	size_t	n = 0, i;

	do {
		tmp[n++] = "0123456789abcdef"[v & 0xf];
		v >>= 4;
	} while (v != 0);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/*
 * By hand, not snprintf: every message read spells its id (SPOP reads
 * hundreds of thousands a second).  0 if out is too small.
 */
size_t
msg_server_id(char *out, size_t outlen, uint64_t due, uint64_t seq)
{
	size_t	n;

	if (outlen < SERVER_ID_MAX)
		return 0;
	out[0] = '#';
	n = 1 + hex_put(out + 1, due);
	out[n++] = '-';
	n += hex_put(out + n, seq);
	out[n] = '\0';
	return n;
}

/* Lower-case hex, no leading zero, 1 to 16 digits; returns digits used. */
static size_t
hex_field(const char *p, size_t len, uint64_t *v)
{
	size_t	i;
	int	d;

	*v = 0;
	for (i = 0; i < len && i < 17; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else
			break;
		if (i == 16 || (i == 1 && p[0] == '0'))
			return 0;
		*v = *v << 4 | (uint64_t)d;
	}
	return i;
}

int
msg_server_id_parse(const void *id, size_t len, uint64_t *due, uint64_t *seq)
{
	const char	*p = id;
	size_t		 n, m;

	if (len < 4 || p[0] != '#')
		return -1;
	if ((n = hex_field(p + 1, len - 1, due)) == 0 || 1 + n >= len ||
	    p[1 + n] != '-')
		return -1;
	m = hex_field(p + 2 + n, len - 2 - n, seq);
	return m != 0 && 2 + n + m == len ? 0 : -1;
}
