/*
 * cmd_info: INFO [section ...] in Redis' format, so that redis-cli, client
 * libraries' ready checks (ioredis reads loading:0) and dashboards work.
 * Figures are added up over all processes from the shared stats region.
 */
#include <sys/utsname.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "cmd.h"
#include "config.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define INFO_EXACT_QUEUES	10000

struct info {
	struct buf		 b;
	struct stats_slot	 sum;
	struct store_info	 si;
	int			 have_si;
	uint64_t		 nqueues;	/* holding messages */
	uint64_t		 nmessages;
};

static void
human_bytes(char *out, size_t len, uint64_t n)
{
	if (n >= 1024ULL * 1024 * 1024)
		snprintf(out, len, "%.2fG", n / (1024.0 * 1024 * 1024));
	else if (n >= 1024 * 1024)
		snprintf(out, len, "%.2fM", n / (1024.0 * 1024));
	else if (n >= 1024)
		snprintf(out, len, "%.2fK", n / 1024.0);
	else
		snprintf(out, len, "%lluB", (unsigned long long)n);
}

static uint64_t
rss_bytes(void)
{
	unsigned long	size, resident;
	FILE		*f;
	int		 n;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 0;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 ? (uint64_t)resident * sysconf(_SC_PAGESIZE) : 0;
}

/* worker_pids:12,13 — the live workers, for dqctl status. */
static void
worker_pids(struct buf *b)
{
	const char	*sep = "";
	int		 i, n = stats_slots();

	buf_appendf(b, "worker_pids:");
	for (i = 0; i < n; i++)
		if (stats->slot[i].is_worker && stats->slot[i].pid != 0) {
			buf_appendf(b, "%s%d", sep, (int)stats->slot[i].pid);
			sep = ",";
		}
	buf_appendf(b, "\r\n\r\n");
}

static void
section_server(struct info *in)
{
	const struct config	*cfg = server.cfg;
	struct utsname		 u;
	uint64_t		 now = now_ms(), up;
	char			 path[PATH_MAX];

	up = stats->started_ms ? (now - stats->started_ms) / 1000 : 0;
	if (uname(&u) == -1)
		memset(&u, 0, sizeof(u));
	/* Absolute, as Redis shows it (dqd never changes directory). */
	if (cfg->path == NULL)
		path[0] = '\0';
	else if (realpath(cfg->path, path) == NULL)
		snprintf(path, sizeof(path), "%s", cfg->path);
	buf_appendf(&in->b, "# Server\r\nredis_version:7.2.0\r\n"
	    "dqd_version:%s\r\nredis_mode:standalone\r\nos:%s %s %s\r\n"
	    "arch_bits:%d\r\nmultiplexing_api:epoll\r\nprocess_id:%d\r\n"
	    "worker_pid:%d\r\nworker_id:%d\r\nworkers:%d\r\ntcp_port:%d\r\n"
	    "server_time_usec:%llu\r\nuptime_in_seconds:%llu\r\n"
	    "uptime_in_days:%llu\r\nconfig_file:%s\r\ndata_dir:%s\r\n",
	    PACKAGE_VERSION, u.sysname, u.release, u.machine,
	    (int)sizeof(long) * 8, (int)stats->master_pid, (int)getpid(),
	    server.slot, stats->nworkers, cfg->port,
	    (unsigned long long)now * 1000, (unsigned long long)up,
	    (unsigned long long)up / 86400, path, cfg->data_dir);
	worker_pids(&in->b);
}

static void
section_clients(struct info *in)
{
	buf_appendf(&in->b, "# Clients\r\nconnected_clients:%lld\r\n"
	    "maxclients:%d\r\nblocked_clients:%llu\r\nworker_clients:%d\r\n"
	    "\r\n", (long long)__atomic_load_n(&stats->clients,
	    __ATOMIC_RELAXED), server.cfg->maxclients,
	    (unsigned long long)in->sum.blocked, server.nclients);
}

static void
section_memory(struct info *in)
{
	char		h[32], hc[32];
	uint64_t	rss = rss_bytes();

	human_bytes(h, sizeof(h), rss);
	human_bytes(hc, sizeof(hc), in->si.cache_bytes);
	buf_appendf(&in->b, "# Memory\r\nused_memory:%llu\r\n"
	    "used_memory_human:%s\r\nused_memory_rss:%llu\r\n"
	    "maxmemory:0\r\nmaxmemory_policy:noeviction\r\n"
	    "cache_size:%llu\r\ncache_size_human:%s\r\n\r\n",
	    (unsigned long long)rss, h, (unsigned long long)rss,
	    (unsigned long long)in->si.cache_bytes, hc);
}

static void
section_persistence(struct info *in)
{
	buf_appendf(&in->b, "# Persistence\r\nloading:0\r\nasync_loading:0\r\n"
	    "rdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\n"
	    "rdb_last_save_time:%llu\r\nrdb_last_bgsave_status:ok\r\n"
	    "aof_enabled:0\r\naof_rewrite_in_progress:0\r\n"
	    "durability:%s\r\nlast_checkpoint_time:%llu\r\n"
	    "data_bytes:%llu\r\nlog_bytes:%llu\r\n\r\n",
	    (unsigned long long)in->si.last_checkpoint,
	    config_durability_name(server.cfg->durability),
	    (unsigned long long)in->si.last_checkpoint,
	    (unsigned long long)in->si.data_bytes,
	    (unsigned long long)in->si.log_bytes);
}

static void
section_stats(struct info *in)
{
	const struct stats_slot	*s = &in->sum;
	uint64_t		 lookups;

	lookups = in->si.cache_hit + in->si.cache_miss;
	buf_appendf(&in->b, "# Stats\r\ntotal_connections_received:%llu\r\n"
	    "total_commands_processed:%llu\r\ninstantaneous_ops_per_sec:0\r\n"
	    "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
	    "rejected_connections:%llu\r\ntotal_error_replies:%llu\r\n"
	    "protocol_errors:%llu\r\nexpired_keys:0\r\nevicted_keys:0\r\n"
	    "keyspace_hits:0\r\nkeyspace_misses:0\r\n"
	    "messages_enqueued:%llu\r\nmessages_delivered:%llu\r\n"
	    "commits:%llu\r\nlog_syncs:%llu\r\nlog_syncs_by_workers:%llu\r\n"
	    "wheel_moves:%llu\r\n"
	    "batch_retries:%llu\r\n"
	    "deadlocks:%llu\r\n"
	    "lock_waits:%llu\r\ncache_hit_ratio:%.4f\r\n"
	    "cache_hits:%llu\r\ncache_misses:%llu\r\n"
	    "worker_restarts:%llu\r\npool_restarts:%llu\r\n\r\n",
	    (unsigned long long)s->connections,
	    (unsigned long long)s->commands, (unsigned long long)s->net_in,
	    (unsigned long long)s->net_out, (unsigned long long)s->rejected,
	    (unsigned long long)s->errors,
	    (unsigned long long)s->protocol_errors,
	    (unsigned long long)s->enqueued, (unsigned long long)s->delivered,
	    (unsigned long long)s->commits, (unsigned long long)s->log_syncs,
	    (unsigned long long)s->worker_syncs,
	    (unsigned long long)s->wheel_moves,
	    (unsigned long long)s->retries,
	    (unsigned long long)in->si.deadlocks,
	    (unsigned long long)in->si.lock_waits,
	    lookups ? (double)in->si.cache_hit / lookups : 1.0,
	    (unsigned long long)in->si.cache_hit,
	    (unsigned long long)in->si.cache_miss,
	    (unsigned long long)stats->worker_restarts,
	    (unsigned long long)stats->pool_restarts);
}

static void
section_replication(struct info *in)
{
	buf_appendf(&in->b, "# Replication\r\nrole:master\r\n"
	    "connected_slaves:0\r\nmaster_failover_state:no-failover\r\n"
	    "master_repl_offset:0\r\nrepl_backlog_active:0\r\n\r\n");
}

/* Clients and tools ask whether they talk to a cluster node. */
static void
section_cluster(struct info *in)
{
	buf_appendf(&in->b, "# Cluster\r\ncluster_enabled:0\r\n\r\n");
}

/*
 * As Redis: one line per command run at least once since the start,
 * over all processes.  Commands are not refused after they start here,
 * so rejected_calls and failed_calls count replies that are errors only
 * in total_error_replies.
 */
static void
section_commandstats(struct info *in)
{
	const struct stats_slot	*s = &in->sum;
	size_t			 i;

	buf_appendf(&in->b, "# Commandstats\r\n");
	for (i = 0; i < cmd_count && i < STATS_CMDS; i++) {
		if (s->cmd_calls[i] == 0)
			continue;
		buf_appendf(&in->b, "cmdstat_%s:calls=%llu,usec=%llu,"
		    "usec_per_call=%.2f,rejected_calls=0,failed_calls=0\r\n",
		    cmd_table[i].name, (unsigned long long)s->cmd_calls[i],
		    (unsigned long long)s->cmd_usec[i],
		    (double)s->cmd_usec[i] / s->cmd_calls[i]);
	}
	buf_appendf(&in->b, "\r\n");
}

static int
count_queue(void *arg, uint32_t qid, const void *name, size_t len,
    const int64_t c[STORE_NCOUNTERS])
{
	struct info	*in = arg;

	(void)qid;
	(void)name;
	(void)len;
	in->nqueues += c[STORE_C_MESSAGES] > 0;
	in->nmessages += (uint64_t)c[STORE_C_MESSAGES];
	return 0;
}

/*
 * The keyspace figures: exact, from one pass over the queues, while there
 * are at most INFO_EXACT_QUEUES; past that the housekeeper's, at most
 * 2 s old, so that INFO stays cheap (clients run it at every connect:
 * the pass takes 0.3 s for 300,000 queues).
 */
static int
keyspace(struct info *in)
{
	struct stats_env	e;

	stats_env_read(&e);
	if (e.updated_ms != 0 && e.nregistered > INFO_EXACT_QUEUES) {
		in->nqueues = e.nqueues;
		in->nmessages = e.nmessages;
		return STORE_OK;
	}
	return store_queue_totals(server.store, count_queue, in);
}

static void
section_keyspace(struct info *in)
{
	buf_appendf(&in->b, "# Keyspace\r\n");
	if (in->nqueues > 0)
		buf_appendf(&in->b, "db0:keys=%llu,expires=0,avg_ttl=0\r\n",
		    (unsigned long long)in->nqueues);
	buf_appendf(&in->b, "total_queues:%llu\r\ntotal_messages:%llu\r\n",
	    (unsigned long long)in->nqueues,
	    (unsigned long long)in->nmessages);
	buf_appendf(&in->b, "\r\n");
}

/* As in Redis, commandstats is only given when asked for, or with all. */
static const struct section {
	const char	*name;
	void		(*fn)(struct info *);
	int		 by_default;
} sections[] = {
	{ "server", section_server, 1 },
	{ "clients", section_clients, 1 },
	{ "memory", section_memory, 1 },
	{ "persistence", section_persistence, 1 },
	{ "stats", section_stats, 1 },
	{ "replication", section_replication, 1 },
	{ "cluster", section_cluster, 1 },
	{ "commandstats", section_commandstats, 0 },
	{ "keyspace", section_keyspace, 1 },
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static int
wanted(const struct cmdctx *x, const struct section *sec)
{
	size_t	i;

	if (x->argc == 1)
		return sec->by_default;
	for (i = 1; i < x->argc; i++)
		if (arg_eq(x, i, sec->name) || arg_eq(x, i, "all") ||
		    arg_eq(x, i, "everything") ||
		    (arg_eq(x, i, "default") && sec->by_default))
			return 1;
	return 0;
}

int
cmd_info(struct cmdctx *x)
{
	struct info	in;
	size_t		i;
	int		r;

	memset(&in, 0, sizeof(in));
	buf_init(&in.b, 0);
	stats_sum(&in.sum);
	if ((r = store_info(server.store, &in.si)) != STORE_OK)
		return r;
	for (i = 0; i < NSECTIONS; i++) {
		if (!wanted(x, &sections[i]))
			continue;
		/* The queues' figures: a pass over them, only when shown. */
		if (sections[i].fn == section_keyspace &&
		    (r = keyspace(&in)) != STORE_OK) {
			buf_free(&in.b);
			return r;
		}
		sections[i].fn(&in);
	}
	/* Redis ends the reply without the last blank line. */
	if (in.b.len >= 2)
		in.b.len -= 2;
	reply_bulk(x->c, in.b.data, in.b.len);
	buf_free(&in.b);
	return STORE_OK;
}
