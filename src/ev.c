#include <sys/epoll.h>

#include <errno.h>
#include <unistd.h>

#include "alloc.h"
#include "ev.h"

struct ev_fd {
	int		 mask;
	ev_handler	*fn;
	void		*arg;
};

struct ev_loop {
	int			 epfd;
	int			 maxfds;
	struct ev_fd		*fds;
	struct epoll_event	*ready;
};

#define EV_BATCH	256	/* events taken per epoll_wait */

struct ev_loop *
ev_create(int maxfds)
{
	struct ev_loop	*l;

	if ((l = dq_calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->maxfds = maxfds;
	l->fds = dq_calloc(maxfds, sizeof(*l->fds));
	l->ready = dq_calloc(EV_BATCH, sizeof(*l->ready));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->fds == NULL || l->ready == NULL || l->epfd == -1) {
		ev_free(l);
		return NULL;
	}
	return l;
}

void
ev_free(struct ev_loop *l)
{
	if (l == NULL)
		return;
	if (l->epfd > 0)
		close(l->epfd);
	dq_free(l->fds);
	dq_free(l->ready);
	dq_free(l);
}

int
ev_set(struct ev_loop *l, int fd, int mask, ev_handler *fn, void *arg)
{
	struct epoll_event	 ee = { 0 };
	struct ev_fd		*f;
	int			 op;

	if (fd < 0 || fd >= l->maxfds) {
		errno = ERANGE;
		return -1;
	}
	f = &l->fds[fd];
	if (mask == f->mask) {
		f->fn = fn;
		f->arg = arg;
		return 0;
	}
	if (mask == 0)
		op = EPOLL_CTL_DEL;
	else
		op = f->mask == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	if (mask & EV_READ)
		ee.events |= EPOLLIN;
	if (mask & EV_WRITE)
		ee.events |= EPOLLOUT;
	if (mask & EV_EXCLUSIVE)
		ee.events |= EPOLLEXCLUSIVE;
	ee.data.fd = fd;
	if (epoll_ctl(l->epfd, op, fd, &ee) == -1)
		return -1;
	f->mask = mask;
	f->fn = mask ? fn : NULL;
	f->arg = mask ? arg : NULL;
	return 0;
}

int
ev_mask(const struct ev_loop *l, int fd)
{
	return fd >= 0 && fd < l->maxfds ? l->fds[fd].mask : 0;
}

int
ev_poll(struct ev_loop *l, int timeout_ms)
{
	struct ev_fd	*f;
	int		 n, i, fd, ev, called = 0;

	n = epoll_wait(l->epfd, l->ready, EV_BATCH, timeout_ms);
	if (n == -1)
		return errno == EINTR ? 0 : -1;
	for (i = 0; i < n; i++) {
		fd = l->ready[i].data.fd;
		f = &l->fds[fd];
		ev = 0;
		if (l->ready[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			ev |= EV_READ;
		if (l->ready[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			ev |= EV_WRITE;
		ev &= f->mask;
		if (ev == 0 || f->fn == NULL)
			continue;
		f->fn(l, fd, ev, f->arg);
		called++;
	}
	return called;
}
