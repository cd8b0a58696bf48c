/*
 * fuzz_resp: libFuzzer harness for the request parser (resp.h).
 *
 * The input is parsed twice: whole, and fed in pieces whose sizes come
 * from the input itself, the way a socket delivers it.  Both must give the
 * same commands, the same outcome and the same error; every argument must
 * lie inside what was given; the parser must stop at a limit.  Built and
 * run by tests/fuzz/run.sh (clang, ASan and UBSan), not by make check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define MAX_CMDS	256

struct outcome {
	size_t		 ncmds;
	uint64_t	 hash;		/* of every command's arguments */
	enum resp_status last;
	char		 error[128];
};

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char	*s = p;
	size_t			 i;

	for (i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ULL;
	return h;
}

static void
take(struct outcome *o, const struct resp_parser *p)
{
	size_t	i;

	if (p->argc < 1)
		abort();
	o->hash = mix(o->hash, &p->argc, sizeof(p->argc));
	for (i = 0; i < p->argc; i++) {
		o->hash = mix(o->hash, &p->argvlen[i], sizeof(size_t));
		o->hash = mix(o->hash, p->argv[i], p->argvlen[i]);
	}
	o->ncmds++;
}

/*
 * Feeds data[0..len) in pieces of the given sizes (cycled; 0: all at once)
 * into a buffer that grows as a socket's would, and moves in memory.
 */
static void
run(const uint8_t *data, size_t len, const uint8_t *sizes, size_t nsizes,
    struct outcome *o)
{
	struct resp_limits	lim = { 512, 16, 256 };
	struct resp_parser	p;
	enum resp_status	st = RESP_INCOMPLETE;
	char			*in = NULL;
	size_t			 have = 0, fed = 0, k = 0, used;

	memset(o, 0, sizeof(*o));
	o->hash = 14695981039346656037ULL;
	resp_parser_init(&p, &lim);
	while (fed < len && o->ncmds < MAX_CMDS) {
		size_t	n = nsizes ? 1 + sizes[k++ % nsizes] % 64 : len;
		char	*moved;

		if (n > len - fed)
			n = len - fed;
		/* A fresh allocation each time: a stale pointer shows. */
		if ((moved = malloc(have + n + 1)) == NULL)
			abort();
		if (have)
			memcpy(moved, in, have);
		memcpy(moved + have, data + fed, n);
		free(in);
		in = moved;
		have += n;
		fed += n;
		while (have > 0 && o->ncmds < MAX_CMDS) {
			st = resp_parse(&p, in, have, &used);
			if (used > have)
				abort();
			if (st == RESP_ERROR)
				goto out;
			if (st == RESP_OK)
				take(o, &p);
			else if (used == 0)
				break;
			memmove(in, in + used, have - used);
			have -= used;
		}
	}
out:
	o->last = st;
	if (st == RESP_ERROR)
		snprintf(o->error, sizeof(o->error), "%s", p.error);
	resp_parser_free(&p);
	free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome	whole, pieces;
	size_t		nsizes;

	if (size < 1)
		return 0;
	/* The first byte: how many of the next bytes are piece sizes. */
	nsizes = data[0] % 8;
	if (1 + nsizes > size)
		return 0;
	run(data + 1 + nsizes, size - 1 - nsizes, NULL, 0, &whole);
	run(data + 1 + nsizes, size - 1 - nsizes, data + 1, nsizes, &pieces);
	/* A command cut by the MAX_CMDS stop may differ; compare the rest. */
	if (whole.ncmds < MAX_CMDS && pieces.ncmds < MAX_CMDS &&
	    (whole.ncmds != pieces.ncmds || whole.hash != pieces.hash ||
	    (whole.last == RESP_ERROR) != (pieces.last == RESP_ERROR) ||
	    strcmp(whole.error, pieces.error) != 0)) {
		fprintf(stderr, "whole: %zu cmds, %s; pieces: %zu cmds, %s\n",
		    whole.ncmds, whole.error, pieces.ncmds, pieces.error);
		abort();
	}
	return 0;
}
