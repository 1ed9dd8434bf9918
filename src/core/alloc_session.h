/*
 * alloc_session.h: the allocator's model, kept between scheduling cycles.
 *
 * The scheduler worker keeps one session: the online nodes with their labels and
 * resource units, what assigned and running jobs hold and until when, and the
 * runnable queue in FIFO order ((joblist_id, job_id)).  It loads the session once
 * (at start, after a promotion, after a failed cycle), then changes it with what
 * the committing transactions recorded in the change queue, and asks it once per
 * cycle to place what it can.  Taking a change costs O(1) or O(log n), and a run
 * reports only the waits that changed, so the SQL side of a cycle costs what
 * changed; the run itself still solves the whole problem with alloc_run()
 * (docs/scale.md, "The allocator", says what is left to make it incremental).
 * Its placements, reasons and reservations are exactly what alloc_run() gives for
 * the same problem (tests/test_alloc_session.c checks that on random traces).
 *
 * Everything passed in is copied; pointers in an output stay valid until the next
 * call on the session.  Times are whole seconds, as in alloc.h.  No PostgreSQL
 * headers.  Functions returning int return 0, or -1 when memory runs out (the
 * session is then only fit for alloc_session_free).
 */
#ifndef DISPATCH_ALLOC_SESSION_H
#define DISPATCH_ALLOC_SESSION_H

#include "alloc.h"

typedef struct AllocSession AllocSession;

/* A resource unit of a node (or of the cluster-wide pool). */
typedef struct AllocSessionUnit
{
	int64_t		resource_id;
	const char *type;
	int64_t		capacity;
} AllocSessionUnit;

/* What a job holds of one unit, and when it lets go (ALLOC_NEVER: not known). */
typedef struct AllocSessionHold
{
	int64_t		resource_id;
	int64_t		amount;
	int64_t		end;
} AllocSessionHold;

/* A runnable pending job. */
typedef struct AllocSessionJob
{
	int64_t		job_id;
	int64_t		joblist_id;
	const AllocNeed *needs;
	int			nneeds;
	const AllocConstraint *constraints;
	int			nconstraints;
	int64_t		limit;			/* time limit in seconds, 0 when it has none */
	/* What the tables show for it now, so that only changes are reported. */
	const char *reason;			/* NULL: none */
	const char *reserved_node;	/* its reservation's node, NULL: none */
	int64_t		reserved_start; /* and start, ALLOC_NEVER when not known */
} AllocSessionJob;

/* A job the run placed: its node and its takes, takes[first_take .. +ntakes). */
typedef struct AllocPlaced
{
	int64_t		job_id;
	const char *node;
	int			first_take;
	int			ntakes;
} AllocPlaced;

typedef struct AllocPlacedTake
{
	int64_t		resource_id;
	int64_t		amount;
} AllocPlacedTake;

/* A waiting job whose reason, expected start or reserved node changed. */
typedef struct AllocWaitChange
{
	int64_t		job_id;
	const char *reason;
	int64_t		expected_start; /* ALLOC_NEVER: not known */
	const char *reserved_node;	/* NULL: no reservation */
} AllocWaitChange;

typedef struct AllocSessionOutput
{
	const AllocPlaced *placed;
	int			nplaced;
	const AllocPlacedTake *takes;
	int			ntakes;
	const AllocWaitChange *waits;
	int			nwaits;
} AllocSessionOutput;

extern AllocSession *alloc_session_new(void);
extern void alloc_session_free(AllocSession *s);

/*
 * Adds an online node, or replaces its labels (the keys a constraint may name, as
 * the glue computes them) and its units (in the order they are to be taken).
 */
extern int	alloc_session_set_node(AllocSession *s, const char *node,
								   const AllocConstraint *labels, int nlabels,
								   const AllocSessionUnit *units, int nunits);

/* Forgets a node (offline, gone) and its units; holds on them count nowhere. */
extern void alloc_session_drop_node(AllocSession *s, const char *node);

/* Replaces the units of the cluster-wide pool (units of no node). */
extern int	alloc_session_set_pool(AllocSession *s, const AllocSessionUnit *units, int nunits);

/*
 * Replaces what job_id holds (nholds 0: nothing, it ended).  A hold on a unit the
 * session does not know counts once the unit appears.
 */
extern int	alloc_session_set_holds(AllocSession *s, int64_t job_id,
									const AllocSessionHold *holds, int nholds);

/* Adds a runnable job to the queue, or replaces it (same job_id). */
extern int	alloc_session_set_job(AllocSession *s, const AllocSessionJob *job);

/* Takes a job out of the queue (assigned, cancelled, no longer runnable). */
extern void alloc_session_drop_job(AllocSession *s, int64_t job_id);

/*
 * Runs one cycle at now: places what it can, in FIFO order with backfill (alloc.h).
 * Placed jobs leave the queue and their takes become their holds, ending at
 * now - 1 + limit (ALLOC_NEVER without one), until set_holds says otherwise.
 * out lists the placed jobs and the waiting jobs whose reason, expected start or
 * reserved node differ from what was last reported (or given in set_job).
 * Past the reservation depth the run looks at max_job_test waiting jobs (alloc.h);
 * the jobs after keep what they were told, and a job set since the last run that
 * it did not look at is told it is behind earlier jobs (needs ...).
 */
extern int	alloc_session_run(AllocSession *s, int64_t now, int max_reservations,
							  int max_job_test, AllocTimeFormat format_time,
							  AllocSessionOutput *out);

/*
 * Compares the nodes, labels, units, holds and queues of a and b (not what was
 * reported); returns 0 when they are the same, else 1 with the first difference
 * described in why.
 */
extern int	alloc_session_diff(const AllocSession *a, const AllocSession *b,
							   char *why, size_t len);

/* How big the model is (for scheduler_stats and benchmarks). */
extern void alloc_session_size(const AllocSession *s, int *nodes, int *units, int *jobs,
							   int *holds);

#endif							/* DISPATCH_ALLOC_SESSION_H */
