#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void	*(*dq_malloc_fn)(size_t) = malloc;
void	*(*dq_realloc_fn)(void *, size_t) = realloc;

void *
dq_malloc(size_t n)
{
	return dq_malloc_fn(n == 0 ? 1 : n);
}

void *
dq_calloc(size_t nmemb, size_t size)
{
	void	*p;

	if (size != 0 && nmemb > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = dq_malloc(nmemb * size)) != NULL)
		memset(p, 0, nmemb * size);
	return p;
}

void *
dq_realloc(void *p, size_t n)
{
	return dq_realloc_fn(p, n == 0 ? 1 : n);
}

void *
dq_reallocarray(void *p, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return dq_realloc(p, nmemb * size);
}

char *
dq_memdup(const void *src, size_t len)
{
	char	*p;

	if (len == SIZE_MAX || (p = dq_malloc(len + 1)) == NULL)
		return NULL;
	memcpy(p, src, len);
	p[len] = '\0';
	return p;
}

char *
dq_strdup(const char *s)
{
	return dq_memdup(s, strlen(s));
}

void
dq_free(void *p)
{
	free(p);
}
