/*
 * unit.h -- the agent's tiny unit test harness.
 *
 * CHECK(cond) counts one passed or failed assertion and prints the failing
 * ones with file and line; the runner (unit.c) prints "N passed, M failed"
 * and exits non-zero when anything failed.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "metrics/collect.h"

extern int	unit_passed;
extern int	unit_failed;

#define CHECK(cond) \
	do { \
		if (cond) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

#define CHECK_STR(a, b) CHECK((a) != NULL && strcmp((a), (b)) == 0)

/* The fixture whose mount points unit_fake_usage(), a statvfs() stand-in, answers for. */
extern const char *unit_usage_root;
int			unit_fake_usage(const char *path, FsStat *fs);

/* A fresh scratch directory under tests/tmp for test name. */
const char *unit_tmpdir(const char *name);

/* The value of variable name in env, or NULL. */
const char *unit_env_get(const StrList *env, const char *name);

/* The content of dir/name (static buffer), or "(missing)". */
const char *unit_read(const char *dir, const char *name);

void		test_idlist(void);
void		test_names(void);
void		test_json(void);
void		test_utf8(void);
void		test_env(void);
void		test_files(void);
void		test_spool(void);
void		test_runner(void);
void		test_collect(void);
void		test_plugins(void);
void		test_sample(void);
void		test_metrics(void);
void		test_history(void);
void		test_jobuser(void);
void		test_flow(void);
void		test_control(void);
void		test_digest(void);
void		test_watch(void);
void		test_artefacts(void);
void		test_fixpoint(void);

#endif
