/*
 * wake: tells the workers whose clients wait in BSPOP or QRESERVE BLOCK
 * that a queue they watch got messages, wherever the enqueue happened.
 *
 * The mechanism, chosen so that nothing is created before the workers fork
 * and nothing passes through the master: every worker binds a datagram
 * socket in the abstract namespace named after the master's pid and its
 * slot.  In the shared stats region each worker publishes a 64-bit mask of
 * the queues its blocked clients wait on (a bit per hash of the queue
 * name).  After a commit that added messages to a queue, the writer sets
 * that queue's bit in the pending mask of every worker watching it and, if
 * the mask was empty, sends it one byte.  The receiver wakes in epoll,
 * drains its socket, takes the pending mask and runs again the blocked
 * clients whose bits are set.  Idle blocked clients cost no CPU: there is
 * no polling, only these datagrams and each client's own deadline.
 *
 * The same sockets carry the flusher's word that a log sync a worker waits
 * for is done (flush.h): wake_poke, a datagram without bits.
 */
#ifndef DQ_WAKE_H
#define DQ_WAKE_H

#include <stddef.h>
#include <stdint.h>

int		wake_open(int slot);		/* the fd to poll, or -1 */
void		wake_close(void);
uint64_t	wake_bit(const void *name, size_t len);
void		wake_note(uint64_t bits);	/* during a transaction */
void		wake_note_name(const void *, size_t);	/* a queue's bit */
void		wake_discard(void);		/* the transaction aborted */
/* After the commit: wakes the watchers; returns the bits for ourselves. */
uint64_t	wake_send(void);
void		wake_poke(int slot);		/* one datagram, no bits */
uint64_t	wake_take(void);		/* on our fd: drain, take bits */
void		wake_watch(uint64_t bits);	/* what our clients wait on */

#endif
