/*
 * alloc.h: the Tetris allocator of pg_dispatch, in plain C.
 *
 * The caller describes one scheduling cycle: online nodes and their labels,
 * resource units (identified instances of capacity 1, or amounts such as mem_mb),
 * what running jobs hold and until when (their time limits), and the pending
 * runnable jobs in FIFO order with their needs, constraints and time limits.
 * alloc_run() places the jobs in order, takes concrete units for each, and gives
 * every job it cannot place a reason and, when it can tell, the time it will start
 * (backfill: docs/internals.md "Allocation rules"), until max_job_test jobs past
 * the reservations have waited: it stops there.  No PostgreSQL headers.
 *
 * Times are whole seconds on any clock the caller likes (the glue uses the Unix
 * epoch); ALLOC_NEVER stands for "not known": a job without a time limit ends then.
 */
#ifndef DISPATCH_ALLOC_H
#define DISPATCH_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define ALLOC_REASON_LEN 192
#define ALLOC_NEVER INT64_MAX
/* Waiting jobs that get a reservation when the problem says 0. */
#define ALLOC_DEFAULT_RESERVATIONS 100
/* Waiting jobs looked at past the reservation depth when the problem says 0. */
#define ALLOC_DEFAULT_JOB_TEST 1000

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
	int64_t		limit;			/* time limit in seconds, 0 when it has none */
	/* Its reservation from the last cycle, which it keeps unless it does better. */
	int			reserved;		/* 1 when it has one */
	int			reserved_node;	/* index into nodes */
	int64_t		reserved_start; /* ALLOC_NEVER when its start was not known */
} AllocJob;

/* What a running (or assigned) job holds of one unit, and when it lets go. */
typedef struct AllocHold
{
	int			unit;			/* index into the problem's units */
	int64_t		amount;
	int64_t		end;			/* start + time limit, or ALLOC_NEVER */
} AllocHold;

/* Formats time t for a reason ("12:04") into buf. */
typedef void (*AllocTimeFormat) (int64_t t, int64_t now, char *buf, size_t len);

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
	int64_t		now;
	const AllocHold *holds;		/* busy amounts without a hold end at ALLOC_NEVER */
	int			nholds;
	int			max_reservations;	/* 0: ALLOC_DEFAULT_RESERVATIONS */
	AllocTimeFormat format_time;	/* NULL: UTC "HH:MM" */
	/*
	 * Once max_reservations waiting jobs have a reservation, the pass looks at
	 * this many more jobs that cannot start now, and stops (Slurm's
	 * bf_max_job_test): the jobs after are not looked at.  0: ALLOC_DEFAULT_JOB_TEST.
	 */
	int			max_job_test;
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
	int64_t		expected_start; /* when it waits: its reservation, or ALLOC_NEVER */
	int			reserved_node;	/* and where, or -1 when it has none */
	char		reason[ALLOC_REASON_LEN];	/* why it waits ("" when placed) */
} AllocResult;

typedef struct AllocOutput
{
	AllocResult *results;		/* one per job looked at, same order */
	int			looked;			/* jobs looked at: results[0 .. looked), the rest wait */
	AllocTake  *takes;
	int			ntakes;
	int			placed;
} AllocOutput;

/* Places the jobs of p in order; returns 0, or -1 when memory runs out. */
extern int	alloc_run(const AllocProblem *p, AllocOutput *out);

/* Frees what alloc_run allocated in out. */
extern void alloc_output_free(AllocOutput *out);

#endif							/* DISPATCH_ALLOC_H */
