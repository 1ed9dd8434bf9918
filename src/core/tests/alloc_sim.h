/*
 * alloc_sim.h: a cluster run in simulated time through the allocator, for the
 * backfill property test (test_alloc.c) and bench/backfill_bench.c.
 */
#ifndef DISPATCH_ALLOC_SIM_H
#define DISPATCH_ALLOC_SIM_H

#include <stdint.h>

typedef struct SimConfig
{
	int			nodes;
	int			cpus;			/* per node */
	int			gpus;			/* per node */
	int			licences;		/* in a cluster-wide pool */
	int			jobs;			/* half queued at time 0, the rest arriving */
	unsigned int seed;
	int			greedy;			/* place whatever fits, ignoring FIFO: the baseline */
	int			max_reservations;	/* 0: the allocator's default */
	int			max_job_test;	/* 0: the allocator's default */
} SimConfig;

typedef struct SimResult
{
	double		utilisation;	/* busy cpu-seconds / (cpus x makespan) */
	int64_t		makespan;		/* when the last job ended */
	long		promises;		/* starts promised in one cycle and checked in the next */
	long		broken;			/* promises a job did not keep (earlier jobs may cause it) */
	long		delays;			/* broken promises a later job caused: must be 0 */
	long		cycles;
	long		placed_out_of_order;	/* jobs that started before an earlier one */
	double		alloc_seconds;	/* time spent in alloc_run, checks excluded */
} SimResult;

/* Runs the trace c describes to its end; returns 0, or -1 (memory, or a stuck queue). */
extern int	alloc_sim(const SimConfig *c, SimResult *r);

#endif							/* DISPATCH_ALLOC_SIM_H */
