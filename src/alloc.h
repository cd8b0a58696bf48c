/*
 * alloc: the one place memory comes from.
 *
 * Every allocation in dqd goes through these wrappers.  They return NULL on
 * failure like malloc(3) (callers must check) and never abort.  The function
 * pointers are a fault-injection seam (beanstalkd's falloc): a test may point
 * dq_malloc_fn at an allocator that fails on the Nth call.
 */
#ifndef DQ_ALLOC_H
#define DQ_ALLOC_H

#include <stddef.h>

extern void	*(*dq_malloc_fn)(size_t);
extern void	*(*dq_realloc_fn)(void *, size_t);

void	*dq_malloc(size_t);
void	*dq_calloc(size_t, size_t);	/* overflow-checked */
void	*dq_realloc(void *, size_t);
void	*dq_reallocarray(void *, size_t, size_t);	/* overflow-checked */
char	*dq_strdup(const char *);
char	*dq_memdup(const void *, size_t);	/* NUL-terminated copy */
void	 dq_free(void *);

#endif
