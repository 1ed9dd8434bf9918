/*
 * fail_alloc.c: the allocation functions fail_alloc.h puts in place of malloc,
 * calloc, realloc and strdup, and the loop that fails each allocation of a
 * scenario in turn.  Each function counts down fail_countdown and fails the
 * allocation that finds it at 0; the (name) calls reach the C library's own.
 */
#include "fail_alloc.h"

long		fail_countdown = -1;

static int	fail_now(void);

/* Returns 1 when this allocation is to fail. */
static int
fail_now(void)
{
	if (fail_countdown < 0)
		return 0;
	return fail_countdown-- == 0;
}

void *
fail_malloc(size_t n)
{
	return fail_now() ? NULL : (malloc) (n);
}

void *
fail_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : (calloc) (n, size);
}

void *
fail_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : (realloc) (p, n);
}

char *
fail_strdup(const char *s)
{
	return fail_now() ? NULL : (strdup) (s);
}

int
fail_each(int (*scenario) (void), long limit)
{
	int			points = 0;

	for (long k = 0; k < limit; k++)
	{
		int			done;

		fail_countdown = k;
		done = scenario();
		fail_countdown = -1;
		if (done)
			break;
		points++;
	}
	return points;
}
