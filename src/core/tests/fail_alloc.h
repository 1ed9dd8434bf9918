/*
 * fail_alloc.h: makes the n-th allocation fail, for the out-of-memory paths of
 * the core's tests (tests/fail_alloc.c defines these).  The Makefile includes it
 * first in every file of such a test (-include) and links tests/fail_alloc.c.
 */
#ifndef DISPATCH_TESTS_FAIL_ALLOC_H
#define DISPATCH_TESTS_FAIL_ALLOC_H

#include <stdlib.h>
#include <string.h>

/* Allocations left before one fails; -1: none fails. */
extern long fail_countdown;

extern void *fail_malloc(size_t n);
extern void *fail_calloc(size_t n, size_t size);
extern void *fail_realloc(void *p, size_t n);
extern char *fail_strdup(const char *s);

/*
 * Runs scenario (1: it ran to its end, 0: it gave up) with its first, second,
 * ... allocation failing, until a run ends or limit runs have failed; returns
 * the number of runs that gave up.
 */
extern int	fail_each(int (*scenario) (void), long limit);

#define malloc(n) fail_malloc(n)
#define calloc(n, size) fail_calloc(n, size)
#define realloc(p, n) fail_realloc(p, n)
#define strdup(s) fail_strdup(s)

#endif							/* DISPATCH_TESTS_FAIL_ALLOC_H */
