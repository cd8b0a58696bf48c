/*
 * key: the byte layout of Berkeley DB keys and values.
 *
 * All integers are big-endian so that Berkeley DB's default byte-wise
 * comparison orders keys numerically: a queue's messages sort by due time,
 * then by sequence, and the earliest message of queue q is the first key
 * >= (q, 0, 0).  Pure functions, no Berkeley DB types: unit-tested alone.
 *
 *   msgs key   qid:4 due_ms:8 seq:8                      (20 bytes)
 *   far key    qid:4 FAR|bucket_ms:8 seq:8 due_ms:8      (28 bytes, far.db)
 *   msgs value flags:1 reserved:1 idlen:2 deliveries:4 id body
 *   ids key    qid:4 id                                  (4 + idlen)
 *   ids value  due_ms:8 seq:8                            (16 bytes)
 *   count key  qid:4                    (one sub-database per slot)
 *   count value count:8 (signed, two's complement)
 */
#ifndef DQ_KEY_H
#define DQ_KEY_H

#include <stddef.h>
#include <stdint.h>

#define MSG_KEY_LEN	20		/* a near key, and every lease key */
#define MSG_FAR_KEY_LEN	28
#define MSG_KEY_MAX	28
#define MSG_FAR		(1ULL << 63)	/* marks a far key's second field */
#define MSG_HDR_LEN	8
#define IDS_VAL_LEN	16
#define QID_LEN		4
#define MAX_ID_LEN	512		/* longest message id */

#define MSG_F_RESERVED	0x01		/* leased to a consumer (QRESERVE) */
#define MSG_F_INDEXED	0x02		/* has an entry in ids.db */

/*
 * A message waiting far in the future has a far key: its queue, the start
 * of its time bucket (wheel_ms wide), then its sequence (its bits within
 * a quarter second scrambled, key.c) and due time.  Far keys sort after
 * every near key of their queue, and within a bucket by arrival, so
 * that an enqueue writes to the newest pages of one of the few buckets of
 * the coming day instead of a random page of a tree of millions (see
 * doc/storage.md, "The wheel").
 */
struct msg_key {
	uint32_t	qid;
	uint64_t	due;		/* Unix ms */
	uint64_t	seq;		/* tie-breaker, unique per environment */
	uint64_t	bucket;		/* 0: a near key; else the far bucket's
					   start (Unix ms, > 0) */
};

struct msg_hdr {
	uint8_t		flags;
	uint16_t	idlen;
	uint32_t	deliveries;
};

void	 be32_put(unsigned char *, uint32_t);
void	 be64_put(unsigned char *, uint64_t);
uint32_t be32_get(const unsigned char *);
uint64_t be64_get(const unsigned char *);

/* Returns the length written: MSG_KEY_LEN or MSG_FAR_KEY_LEN. */
size_t	msg_key_encode(unsigned char out[MSG_KEY_MAX], const struct msg_key *);
int	msg_key_decode(const void *, size_t, struct msg_key *);	/* -1: bad */
/* The start of the bucket of width w (ms) that holds due. */
uint64_t msg_bucket(uint64_t due, uint64_t w);
void	msg_hdr_encode(unsigned char out[MSG_HDR_LEN], const struct msg_hdr *);
/* Checks that idlen fits in len; -1 on a malformed value. */
int	msg_hdr_decode(const void *, size_t, struct msg_hdr *);
/*
 * Server-assigned ids name the message's first key: "#" due "-" seq, both
 * in lower-case hex without leading zeros.  A message that never moved is
 * found from its id alone, with no entry in ids.db; one that moved (a lease,
 * QNACK, QRESCHEDULE) gets an entry then.  Producer ids may not start with
 * '#'.  msg_server_id() returns the length; msg_server_id_parse() returns
 * 0 for an id in exactly that form, -1 otherwise.
 */
#define SERVER_ID_MAX	40		/* = STORE_SID_MAX */
size_t	msg_server_id(char *, size_t, uint64_t due, uint64_t seq);
int	msg_server_id_parse(const void *, size_t, uint64_t *due,
	    uint64_t *seq);

#endif
