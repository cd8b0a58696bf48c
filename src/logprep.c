#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "logprep.h"
#include "util.h"

#define CHUNK	(64 * 1024)

ssize_t	(*logprep_write_fn)(int, const void *, size_t) = write;

static int
write_zeros(int fd, uint64_t size)
{
	static const char	 zeros[CHUNK];
	uint64_t		 left = size;
	ssize_t			 n;

	while (left > 0) {
		n = logprep_write_fn(fd, zeros, left < CHUNK ? left : CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = ENOSPC;
			return -1;
		}
		left -= (uint64_t)n;
	}
	return fdatasync(fd);
}

int
logprep_next(const char *dir, uint32_t cur, uint64_t size)
{
	char	path[PATH_MAX], tmp[PATH_MAX], name[64];
	int	fd, saved, made;

	if (cur == UINT32_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	snprintf(name, sizeof(name), LOG_FILE_FMT, cur + 1);
	if (path_join(path, sizeof(path), dir, name) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s%ld", LOGPREP_TMP, (long)getpid());
	if (path_join(tmp, sizeof(tmp), dir, name) == -1)
		return -1;
	if (access(path, F_OK) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	/* Berkeley DB's own mode for log files (store.c opens with 0600). */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		return -1;
	if (write_zeros(fd, size) == -1) {
		saved = errno;
		(void)close(fd);
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1) {
		saved = errno;
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	/* link, never rename: if Berkeley DB made the file meanwhile, it
	   fails (EEXIST) and the file stays as Berkeley DB has it. */
	made = link(tmp, path) == 0;
	saved = errno;
	(void)unlink(tmp);
	if (!made && saved != EEXIST) {
		errno = saved;
		return -1;
	}
	return made;
}

void
logprep_clean(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[PATH_MAX], *end;
	long		 pid;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, LOGPREP_TMP, strlen(LOGPREP_TMP)) != 0)
			continue;
		errno = 0;
		pid = strtol(de->d_name + strlen(LOGPREP_TMP), &end, 10);
		if (errno != 0 || *end != '\0' || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (path_join(path, sizeof(path), dir, de->d_name) == 0)
			(void)unlink(path);
	}
	closedir(d);
}
