/*
 * seam.h: a failing allocator for the dq_malloc_fn / dq_realloc_fn seams of
 * alloc.h, shared by the unit tests.  Allocations fail once seam.budget
 * runs out (-1: never), and absurd sizes fail as they would with malloc(3)
 * (ASan would abort instead).  seam.calls and seam.biggest say what was
 * asked for.  Use as a Criterion suite's .init and .fini:
 *
 *	TestSuite(name, .init = seam_setup, .fini = seam_teardown);
 */
#ifndef DQ_TEST_SEAM_H
#define DQ_TEST_SEAM_H

#include <stdlib.h>

#include "alloc.h"

#define SEAM_HUGE	((size_t)1 << 40)

static struct {
	int	budget;		/* allocations left; -1: unlimited */
	int	calls;
	size_t	biggest;	/* the largest request */
} seam;

static int
seam_allow(size_t n)
{
	seam.calls++;
	if (n > seam.biggest)
		seam.biggest = n;
	if (seam.budget == 0 || n >= SEAM_HUGE)
		return 0;
	if (seam.budget > 0)
		seam.budget--;
	return 1;
}

static void *
seam_malloc(size_t n)
{
	return seam_allow(n) ? malloc(n) : NULL;
}

static void *
seam_realloc(void *p, size_t n)
{
	return seam_allow(n) ? realloc(p, n) : NULL;
}

static void
seam_setup(void)
{
	seam.budget = -1;
	seam.calls = 0;
	seam.biggest = 0;
	dq_malloc_fn = seam_malloc;
	dq_realloc_fn = seam_realloc;
}

static void
seam_teardown(void)
{
	dq_malloc_fn = malloc;
	dq_realloc_fn = realloc;
}

#endif
