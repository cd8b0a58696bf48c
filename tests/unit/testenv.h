/*
 * testenv.h: a real Berkeley DB environment in a temporary directory, for
 * the unit tests of what lies on top of the store.
 *
 *	testenv_config(&cfg, dir);	// defaults, data_dir = mkdtemp(dir)
 *	cfg.durability = ...;		// whatever the test needs
 *	testenv_open(&cfg, &s);		// recovery, then a handle
 *	...
 *	testenv_close(&cfg, s, dir);	// handle closed, directory removed
 */
#ifndef DQ_TEST_ENV_H
#define DQ_TEST_ENV_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "store.h"

static void
testenv_config(struct config *cfg, char *dir)
{
	cr_assert_not_null(mkdtemp(dir));
	config_defaults(cfg);
	free(cfg->data_dir);
	cfg->data_dir = strdup(dir);
}

static void
testenv_open(struct config *cfg, struct store **s)
{
	char	err[512];

	cr_assert_eq(store_recover(cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_open(cfg, 0, s, err, sizeof(err)), 0, "%s", err);
}

static void
testenv_close(struct config *cfg, struct store *s, const char *dir)
{
	char	cmd[128];

	store_close(s);
	config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

#endif
