#include <sys/mman.h>

#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"
#include "util.h"

const double	stats_lat_bounds[STATS_LAT - 1] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1
};
const double	stats_late_bounds[STATS_LATE - 1] = {
	0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 10, 60
};

struct stats_shared	*stats;
static struct stats_slot dummy_slot;	/* before stats_attach */
struct stats_slot	*my_stats = &dummy_slot;
static struct stats_slot *shared_slot = &dummy_slot;	/* ours in stats */
static struct stats_slot batch_slot;		/* a batch's, until commit */
static int		 my_index = -1;		/* our slot in stats */

/* A batch's command durations, as cells of cmd_lat, until commit. */
#define LAT_STAGE	8192
static uint16_t		 lat_stage[LAT_STAGE];
static size_t		 nlat_stage;
static int		 staging;

int
stats_create(void)
{
	void	*p;

	p = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	/* Zeroed by mmap; left untouched, the slots never used cost no
	   memory. */
	stats = p;
	return 0;
}

void
stats_slot_used(int slot)
{
	if (stats != NULL && slot + 1 > stats->slots_used)
		__atomic_store_n(&stats->slots_used, slot + 1,
		    __ATOMIC_SEQ_CST);
}

int
stats_slots(void)
{
	if (stats == NULL)
		return 0;
	return __atomic_load_n(&stats->slots_used, __ATOMIC_SEQ_CST);
}

void
stats_attach(int slot)
{
	if (stats == NULL || slot < 0 || slot >= STATS_SLOTS)
		return;
	my_stats = shared_slot = &stats->slot[slot];
	my_index = slot;
}

struct stats_slot *
stats_own(void)
{
	return shared_slot;
}

static void
lat_add(unsigned cell)
{
	if (my_index >= 0)
		__atomic_add_fetch(&stats->cmd_lat[my_index][0][0] + cell, 1,
		    __ATOMIC_RELAXED);
}


/* The counters of a slot: every uint64_t from `connections` on. */
#define COUNTERS_OFF	offsetof(struct stats_slot, connections)
#define NCOUNTERS	((sizeof(struct stats_slot) - COUNTERS_OFF) / \
			    sizeof(uint64_t))

static void
add_counters(struct stats_slot *dst, const struct stats_slot *src)
{
	const uint64_t	*s = (const uint64_t *)((const char *)src +
			    COUNTERS_OFF);
	uint64_t	*d = (uint64_t *)((char *)dst + COUNTERS_OFF);
	size_t		 j;

	for (j = 0; j < NCOUNTERS; j++)
		if (s[j] != 0)
			__atomic_add_fetch(&d[j], s[j], __ATOMIC_RELAXED);
}

void
stats_batch_begin(void)
{
	memset(&batch_slot, 0, sizeof(batch_slot));
	my_stats = &batch_slot;
	nlat_stage = 0;
	staging = 1;
}

void
stats_batch_commit(void)
{
	/* Gauges (clients, blocked) are never staged: see worker.c. */
	batch_slot.clients = batch_slot.blocked = 0;
	add_counters(shared_slot, &batch_slot);
	my_stats = shared_slot;
	while (nlat_stage > 0)
		lat_add(lat_stage[--nlat_stage]);
	staging = 0;
}

void
stats_batch_abort(void)
{
	my_stats = shared_slot;
	nlat_stage = 0;
	staging = 0;
}

void
stats_sum(struct stats_slot *sum)
{
	int	i, n = stats_slots();

	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < n; i++)
		add_counters(sum, &stats->slot[i]);
	/* INFO in a batch counts the commands before it, as in Redis. */
	if (staging)
		add_counters(sum, &batch_slot);
}

void
stats_reset_gauges(struct stats_slot *s)
{
	s->pid = 0;
	s->is_worker = 0;
	s->wake_watch = 0;
	s->wake_pending = 0;
	s->flush_wanted = 0;
	s->committing = 0;
	s->clients = 0;
	s->blocked = 0;
}

static size_t
bucket(const double *bounds, size_t n, double v)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (v <= bounds[i])
			return i;
	return n;
}

void
stats_command(size_t idx, uint64_t usec)
{
	unsigned	cell;

	if (idx >= STATS_CMDS)
		return;
	STAT_ADD(cmd_calls[idx], 1);
	STAT_ADD(cmd_usec[idx], usec);
	cell = (unsigned)(idx * STATS_LAT +
	    bucket(stats_lat_bounds, STATS_LAT - 1, usec / 1e6));
	/* A batch larger than the stage (EXECs of thousands of commands)
	   counts the rest at once, even if it is then run again. */
	if (staging && nlat_stage < LAT_STAGE)
		lat_stage[nlat_stage++] = (uint16_t)cell;
	else
		lat_add(cell);
}

void
stats_command_lat(size_t idx, uint64_t lat[STATS_LAT])
{
	int	i, n = stats_slots();
	size_t	j;

	memset(lat, 0, sizeof(uint64_t) * STATS_LAT);
	if (idx >= STATS_CMDS)
		return;
	for (i = 0; i < n; i++) {
		if (stats->slot[i].cmd_calls[idx] == 0)
			continue;	/* not touched: leave the page alone */
		for (j = 0; j < STATS_LAT; j++)
			lat[j] += __atomic_load_n(&stats->cmd_lat[i][idx][j],
			    __ATOMIC_RELAXED);
	}
}

void
stats_delivery(uint64_t now, uint64_t due_ms, uint32_t deliveries)
{
	uint64_t	late = now > due_ms ? now - due_ms : 0;

	STAT_ADD(late[bucket(stats_late_bounds, STATS_LATE - 1, late / 1e3)],
	    1);
	STAT_ADD(late_ms, late);
	if (deliveries > 1)
		STAT_ADD(redelivered, 1);
}

void
stats_wheel_moves(size_t n)
{
	STAT_ADD(wheel_moves, n);
}

/* A seqlock: the housekeeper's figures, never half of two versions. */
void
stats_env_read(struct stats_env *e)
{
	uint64_t	v1, v2;
	int		tries;

	memset(e, 0, sizeof(*e));
	if (stats == NULL)
		return;
	for (tries = 0; tries < 100; tries++) {
		v1 = __atomic_load_n(&stats->env.version, __ATOMIC_SEQ_CST);
		memcpy(e, &stats->env, sizeof(*e));
		v2 = __atomic_load_n(&stats->env.version, __ATOMIC_SEQ_CST);
		if (v1 == v2 && (v1 & 1) == 0)
			return;
		usleep(100);
	}
}
