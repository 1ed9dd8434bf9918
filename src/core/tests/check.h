/*
 * check.h: the pass and fail counters the unit tests of src/core share.  Each
 * test program includes it once and prints the counts at its end.
 */
#ifndef DISPATCH_TESTS_CHECK_H
#define DISPATCH_TESTS_CHECK_H

#include <stdio.h>

static int	passed;
static int	failed;

/* Counts one check; prints its name when it failed. */
static void
check(const char *name, int ok)
{
	if (ok)
		passed++;
	else
	{
		failed++;
		printf("FAIL %s\n", name);
	}
}

#endif							/* DISPATCH_TESTS_CHECK_H */
