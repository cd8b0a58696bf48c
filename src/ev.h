/*
 * ev: a small epoll event loop (after Redis' ae.c), one per process.
 *
 * A handler is registered per file descriptor for readability, writability
 * or both.  ev_poll() waits at most timeout_ms (-1: forever) and calls the
 * handlers of the ready descriptors; a handler may remove or add any
 * descriptor, including its own.  No timers here: the owner computes its
 * poll timeout from its own deadlines.
 */
#ifndef DQ_EV_H
#define DQ_EV_H

#define EV_READ		0x1
#define EV_WRITE	0x2
#define EV_EXCLUSIVE	0x4	/* EPOLLEXCLUSIVE: one waiter woken (accept) */

struct ev_loop;
typedef void ev_handler(struct ev_loop *, int fd, int events, void *arg);

struct ev_loop *ev_create(int maxfds);
void	ev_free(struct ev_loop *);
/* Sets the events of fd to mask (0 removes it); 0 or -1 with errno. */
int	ev_set(struct ev_loop *, int fd, int mask, ev_handler *, void *arg);
int	ev_mask(const struct ev_loop *, int fd);
/* Returns the number of handlers called, or -1 with errno (not EINTR). */
int	ev_poll(struct ev_loop *, int timeout_ms);

#endif
