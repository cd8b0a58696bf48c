#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "stats.h"
#include "util.h"
#include "wake.h"

static int		wake_fd = -1;	/* bound: we are woken through it */
static int		send_fd = -1;	/* unbound, for a process that only
					   wakes others (the housekeeper) */
static int		wake_slot = -1;
static uint64_t		noted;

static socklen_t
wake_addr(struct sockaddr_un *sun, int slot)
{
	int	n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* Abstract: sun_path[0] is NUL, the name is the bytes after it. */
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    "dqd-wake-%d-%d", (int)stats->master_pid, slot);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int
wake_open(int slot)
{
	struct sockaddr_un	sun;
	socklen_t		len;

	wake_slot = slot;
	wake_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (wake_fd == -1)
		return -1;
	len = wake_addr(&sun, slot);
	if (bind(wake_fd, (struct sockaddr *)&sun, len) == -1) {
		close(wake_fd);
		wake_fd = -1;
		return -1;
	}
	return wake_fd;
}

void
wake_close(void)
{
	if (wake_fd != -1)
		close(wake_fd);
	if (send_fd != -1)
		close(send_fd);
	wake_fd = send_fd = -1;
	my_stats->wake_watch = 0;
}

void
wake_note_name(const void *name, size_t len)
{
	wake_note(wake_bit(name, len));
}

uint64_t
wake_bit(const void *name, size_t len)
{
	return 1ULL << (fnv1a(name, len) % 64);
}

void
wake_note(uint64_t bits)
{
	noted |= bits;
}

void
wake_discard(void)
{
	noted = 0;
}

/* One datagram to the worker in slot; it drains them all at once. */
void
wake_poke(int slot)
{
	struct sockaddr_un	sun;
	socklen_t		len;

	if (wake_fd == -1 && send_fd == -1 && (send_fd = socket(AF_UNIX,
	    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return;
	len = wake_addr(&sun, slot);
	if (sendto(wake_fd != -1 ? wake_fd : send_fd, "w", 1, 0,
	    (struct sockaddr *)&sun, len) == -1 && errno != EAGAIN &&
	    errno != ECONNREFUSED && errno != ENOENT)
		log_debug("wake worker %d: %s", slot, strerror(errno));
}

uint64_t
wake_send(void)
{
	struct stats_slot	*w;
	uint64_t		 bits = noted, old;
	int			 i, n;

	noted = 0;
	if (bits == 0)
		return 0;
	/* Read after the commit: a watcher started since is counted. */
	n = stats_slots();
	for (i = 0; i < n; i++) {
		w = &stats->slot[i];
		if (i == wake_slot || w->pid == 0 ||
		    !(__atomic_load_n(&w->wake_watch, __ATOMIC_RELAXED) & bits))
			continue;
		old = __atomic_fetch_or(&w->wake_pending, bits,
		    __ATOMIC_SEQ_CST);
		if (old == 0)	/* else a datagram is already on its way */
			wake_poke(i);
	}
	return bits;
}

uint64_t
wake_take(void)
{
	char	buf[64];

	while (wake_fd != -1 && recv(wake_fd, buf, sizeof(buf), 0) > 0)
		;
	return __atomic_exchange_n(&my_stats->wake_pending, 0,
	    __ATOMIC_SEQ_CST);
}

void
wake_watch(uint64_t bits)
{
	__atomic_store_n(&my_stats->wake_watch, bits, __ATOMIC_SEQ_CST);
}
