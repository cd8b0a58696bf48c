#include <sys/mman.h>

#include <stddef.h>
#include <string.h>

#include "stats.h"

struct stats_shared	*stats;
static struct stats_slot dummy_slot;	/* before stats_attach */
struct stats_slot	*my_stats = &dummy_slot;

int
stats_create(void)
{
	void	*p;

	p = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	stats = p;
	memset(stats, 0, sizeof(*stats));
	return 0;
}

void
stats_attach(int slot)
{
	if (stats == NULL || slot < 0 || slot >= STATS_SLOTS)
		return;
	my_stats = &stats->slot[slot];
}

void
stats_sum(struct stats_slot *sum)
{
	const uint64_t	*src;
	uint64_t	*dst;
	size_t		 i, j, n;

	memset(sum, 0, sizeof(*sum));
	if (stats == NULL)
		return;
	/* Every field after pid and started_ms is a counter. */
	n = (sizeof(*sum) - offsetof(struct stats_slot, connections)) /
	    sizeof(uint64_t);
	for (i = 0; i < STATS_SLOTS; i++) {
		src = &stats->slot[i].connections;
		dst = &sum->connections;
		for (j = 0; j < n; j++)
			dst[j] += __atomic_load_n(&src[j], __ATOMIC_RELAXED);
	}
}

void
stats_reset_gauges(struct stats_slot *s)
{
	s->pid = 0;
	s->is_worker = 0;
	s->wake_watch = 0;
	s->wake_pending = 0;
	s->clients = 0;
	s->blocked = 0;
}
