/*
 * alloc.h: the Tetris allocator of pg_dispatch, in plain C.
 *
 * The caller describes one scheduling cycle: online nodes and their labels,
 * resource units (identified instances of capacity 1, or amounts such as mem_mb),
 * and the pending runnable jobs in FIFO order with their needs and constraints.
 * alloc_run() places the jobs in order, takes concrete units for each, and gives
 * every job it cannot place a reason.  No PostgreSQL headers: see docs/internals.md.
 */
#ifndef DISPATCH_ALLOC_H
#define DISPATCH_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define ALLOC_REASON_LEN 192

typedef struct AllocLabel
{
	int			node;			/* index into the problem's nodes */
	const char *key;
	const char *value;
} AllocLabel;

typedef struct AllocUnit
{
	int64_t		resource_id;
	const char *type;
	int			node;			/* index into nodes, or -1 for a cluster-wide pool */
	int64_t		free;			/* units free now (0 when busy) */
	int64_t		capacity;
} AllocUnit;

typedef struct AllocNeed
{
	const char *type;
	int64_t		count;
} AllocNeed;

typedef struct AllocConstraint
{
	const char *key;
	const char *value;
} AllocConstraint;

typedef struct AllocJob
{
	int64_t		job_id;
	int64_t		joblist_id;
	const AllocNeed *needs;
	int			nneeds;
	const AllocConstraint *constraints;
	int			nconstraints;
} AllocJob;

typedef struct AllocProblem
{
	const char *const *nodes;	/* online node names */
	int			nnodes;
	const AllocLabel *labels;	/* any order */
	int			nlabels;
	const AllocUnit *units;		/* in the order units should be taken */
	int			nunits;
	const AllocJob *jobs;		/* FIFO order */
	int			njobs;
} AllocProblem;

typedef struct AllocTake
{
	int			unit;			/* index into the problem's units */
	int64_t		amount;
} AllocTake;

typedef struct AllocResult
{
	int			node;			/* chosen node, or -1 when the job waits */
	int			first_take;		/* its takes: takes[first_take .. +ntakes) */
	int			ntakes;
	char		reason[ALLOC_REASON_LEN];	/* why it waits ("" when placed) */
} AllocResult;

typedef struct AllocOutput
{
	AllocResult *results;		/* one per job, same order */
	AllocTake  *takes;
	int			ntakes;
	int			placed;
} AllocOutput;

/* Places the jobs of p in order; returns 0, or -1 when memory runs out. */
extern int	alloc_run(const AllocProblem *p, AllocOutput *out);

/* Frees what alloc_run allocated in out. */
extern void alloc_output_free(AllocOutput *out);

#endif							/* DISPATCH_ALLOC_H */
