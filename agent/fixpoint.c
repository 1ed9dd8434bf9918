/*
 * fixpoint.c -- running a cycle of build commands to a fixed point.
 *
 * Some builds feed on their own outputs: LaTeX reads the .aux file its last run
 * wrote, a code generator reads what it generated.  Such a cycle is built as one
 * unit: its commands run in order, pass after pass, and after each pass every
 * output is digested.  The first pass that leaves every output exactly as it
 * found it (the same SHA-256, and there before and after) is the fixed point;
 * the state before the first pass counts, so outputs fetched from the last build
 * that a pass does not change converge in one pass.  A pass whose command fails
 * ends it with that command's status; max_passes passes that still change
 * something end it unconverged, naming what the last pass changed.
 *
 * The driver knows neither processes nor files: the caller runs a pass and
 * digests an output through callbacks (iterate_cmd.c gives real ones, the unit
 * tests fake ones), so every way a cycle can end is tested without a process.
 */
#include "fixpoint.h"

#include <stdlib.h>
#include <string.h>

/* The digests of every output at one moment. */
typedef struct State
{
	char		(*sha)[DIGEST_HEX_LEN + 1];
	char	   *present;		/* 0: the output did not exist */
} State;

static void state_init(State *s, int n);
static void state_free(State *s);
static int	take(const StrList *outputs, FixDigest digest, void *arg, State *s, char *err, size_t errlen);

/* Makes s hold n outputs. */
static void
state_init(State *s, int n)
{
	s->sha = xmalloc(sizeof(*s->sha) * (size_t) (n > 0 ? n : 1));
	s->present = xmalloc((size_t) (n > 0 ? n : 1));
}

/* Releases s. */
static void
state_free(State *s)
{
	free(s->sha);
	free(s->present);
}

/* Digests every output into s; returns 0 or -1 with err set. */
static int
take(const StrList *outputs, FixDigest digest, void *arg, State *s, char *err, size_t errlen)
{
	for (int i = 0; i < outputs->n; i++)
	{
		int			rc = digest(arg, outputs->items[i], s->sha[i], err, errlen);

		if (rc < 0)
			return -1;
		s->present[i] = (char) rc;
	}
	return 0;
}

/*
 * Runs passes of run() (at most max_passes) until one leaves every output as it
 * was before it, digesting the outputs with digest() before the first pass and
 * after each.  Returns 0 with res filled, or -1 with err set when a pass could
 * not be run or an output not digested; res is released with fixpoint_free()
 * either way.
 */
int
fixpoint_run(const StrList *outputs, int max_passes, FixRunPass run, FixDigest digest, void *arg,
			 FixResult *res, char *err, size_t errlen)
{
	State		before, after, swap;
	int			rc = -1;

	memset(res, 0, sizeof(*res));
	strlist_init(&res->changed);
	state_init(&before, outputs->n);
	state_init(&after, outputs->n);
	if (take(outputs, digest, arg, &before, err, errlen) < 0)
		goto out;
	for (int pass = 1; pass <= max_passes; pass++)
	{
		int			status = run(arg, pass, err, errlen);

		res->passes = pass;
		if (status < 0)
			goto out;
		if (status > 0)
		{
			res->outcome = FIX_FAILED;
			res->status = status;
			rc = 0;
			goto out;
		}
		if (take(outputs, digest, arg, &after, err, errlen) < 0)
			goto out;
		strlist_free(&res->changed);
		strlist_init(&res->changed);
		for (int i = 0; i < outputs->n; i++)
			if (!before.present[i] || !after.present[i] || strcmp(before.sha[i], after.sha[i]) != 0)
				strlist_add(&res->changed, outputs->items[i]);
		if (res->changed.n == 0)
		{
			res->outcome = FIX_CONVERGED;
			rc = 0;
			goto out;
		}
		swap = before;
		before = after;
		after = swap;
	}
	res->outcome = FIX_NOT_CONVERGED;
	rc = 0;
out:
	state_free(&before);
	state_free(&after);
	return rc;
}

/* Releases what fixpoint_run() put in res. */
void
fixpoint_free(FixResult *res)
{
	strlist_free(&res->changed);
}
