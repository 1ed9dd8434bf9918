/*
 * alloc_bench.c: how fast alloc_run() places a large queue, against main's.
 *
 * A synthetic cluster (N nodes with 8 cpus, 2 gpus and 64 GB each, 4 zones, a
 * cluster-wide pool of 16 licences) and a queue of 10 N jobs with mixed needs, a
 * quarter of them pinned to a zone, four in five with a time limit.  Two cycles are
 * timed: the full one on the idle cluster, and the next one, 60 s later, after 100
 * changes (50 running jobs ended, 50 jobs submitted), with everything the first
 * placed now running until its limit.  Each is the best of 3 runs.
 *
 * `make run` builds this file twice: against this tree's allocator, and (with
 * -DALLOC_BASELINE) against main's src/core/alloc.c, taken with `git show` at build
 * time into a scratch directory.  The first runs the second with --raw on the same
 * workload and prints both and their ratio.  main's allocator knows no time limits
 * and keeps nothing between cycles; neither does this one yet, so "after 100
 * changes" is a whole cycle again (docs/scale.md).
 */
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANGES 100
#define REPS 3					/* each cycle is timed 3 times, the best kept */

typedef struct Figures
{
	double		full_ms;
	int			full_placed;
	double		next_ms;
	int			next_placed;
} Figures;

static const char *zones[] = {"a", "b", "c", "d"};

static double now_s(void);
static double timed_run(const AllocProblem *p, AllocOutput *out);
static void measure(int nnodes, Figures *f);

/* Returns a monotonic clock reading in seconds. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs alloc_run on p into out REPS times; returns the fewest milliseconds it took. */
static double
timed_run(const AllocProblem *p, AllocOutput *out)
{
	double		best = 1e30;

	for (int r = 0; r < REPS; r++)
	{
		double		t0 = now_s();

		if (r > 0)
			alloc_output_free(out);
		if (alloc_run(p, out) < 0)
		{
			fprintf(stderr, "alloc_run failed\n");
			exit(1);
		}
		t0 = (now_s() - t0) * 1e3;
		best = t0 < best ? t0 : best;
	}
	return best;
}

/* Builds the workload for nnodes and times its two cycles into f. */
static void
measure(int nnodes, Figures *f)
{
	int			njobs = nnodes * 10 + CHANGES / 2;
	int			nunits = nnodes * 11 + 16;
	char	  **names = malloc(sizeof(char *) * nnodes);
	AllocLabel *labels = malloc(sizeof(AllocLabel) * nnodes);
	AllocUnit  *units = malloc(sizeof(AllocUnit) * nunits);
	AllocJob   *jobs = malloc(sizeof(AllocJob) * njobs);
	AllocJob   *next = malloc(sizeof(AllocJob) * njobs);
	AllocNeed  *needs = malloc(sizeof(AllocNeed) * njobs * 2);
	AllocConstraint *cons = malloc(sizeof(AllocConstraint) * njobs);
	int64_t    *limit = malloc(sizeof(int64_t) * njobs);
	AllocProblem p;
	AllocOutput out;
	int			u = 0,
				nnext = 0,
				ended = 0;
	unsigned int seed = 42;

	for (int n = 0; n < nnodes; n++)
	{
		names[n] = malloc(16);
		snprintf(names[n], 16, "node%05d", n);
		labels[n] = (AllocLabel) {n, "zone", zones[n % 4]};
		for (int c = 0; c < 8; c++)
			units[u++] = (AllocUnit) {u, "cpu", n, 1, 1};
		for (int g = 0; g < 2; g++)
			units[u++] = (AllocUnit) {u, "gpu", n, 1, 1};
		units[u++] = (AllocUnit) {u, "mem_mb", n, 65536, 65536};
	}
	for (int l = 0; l < 16; l++)
		units[u++] = (AllocUnit) {u, "lic", -1, 1, 1};
	for (int j = 0; j < njobs; j++)
	{
		int			kind = rand_r(&seed) % 10;

		needs[2 * j] = (AllocNeed) {"cpu", 1 + rand_r(&seed) % 4};
		needs[2 * j + 1] = kind < 2 ? (AllocNeed) {"gpu", 1} :
			kind < 3 ? (AllocNeed) {"lic", 1} : (AllocNeed) {"mem_mb", 1024 * (1 + rand_r(&seed) % 16)};
		cons[j] = (AllocConstraint) {"zone", zones[rand_r(&seed) % 4]};
		limit[j] = rand_r(&seed) % 5 == 0 ? 0 : 600 * (1 + rand_r(&seed) % 24);
		memset(&jobs[j], 0, sizeof(AllocJob));
		jobs[j].job_id = j + 1;
		jobs[j].joblist_id = 1 + j / 5;
		jobs[j].needs = &needs[2 * j];
		jobs[j].nneeds = 2;
		jobs[j].constraints = &cons[j];
		jobs[j].nconstraints = kind % 4 == 0;
#ifndef ALLOC_BASELINE
		jobs[j].limit = limit[j];
#endif
	}
	memset(&p, 0, sizeof(p));
	p.nodes = (const char *const *) names;
	p.nnodes = nnodes;
	p.labels = labels;
	p.nlabels = nnodes;
	p.units = units;
	p.nunits = u;
	p.jobs = jobs;
	p.njobs = njobs - CHANGES / 2;
#ifndef ALLOC_BASELINE
	p.now = 1000000;
#endif
	f->full_ms = timed_run(&p, &out);
	f->full_placed = out.placed;

	/*
	 * 60 s later: what the first cycle placed runs (the first 50 of those have
	 * ended), what waited still waits, and 50 more jobs have come.
	 */
	{
		AllocUnit  *after = malloc(sizeof(AllocUnit) * nunits);
#ifndef ALLOC_BASELINE
		AllocHold  *holds = malloc(sizeof(AllocHold) * (out.ntakes + 1));
		int			nholds = 0;
#endif

		memcpy(after, units, sizeof(AllocUnit) * nunits);
		for (int j = 0; j < p.njobs; j++)
		{
			const AllocResult *r = &out.results[j];

			if (r->node < 0)
			{
				next[nnext] = jobs[j];
#ifndef ALLOC_BASELINE
				next[nnext].reserved = r->reserved_node >= 0;
				next[nnext].reserved_node = r->reserved_node;
				next[nnext].reserved_start = r->expected_start;
#endif
				nnext++;
				continue;
			}
			if (ended++ < CHANGES / 2)
				continue;
			for (int k = 0; k < r->ntakes; k++)
			{
				const AllocTake *t = &out.takes[r->first_take + k];

				after[t->unit].free -= t->amount;
#ifndef ALLOC_BASELINE
				holds[nholds++] = (AllocHold) {t->unit, t->amount,
				limit[j] ? p.now + limit[j] : ALLOC_NEVER};
#endif
			}
		}
		for (int j = njobs - CHANGES / 2; j < njobs; j++)
			next[nnext++] = jobs[j];
		alloc_output_free(&out);
		p.units = after;
		p.jobs = next;
		p.njobs = nnext;
#ifndef ALLOC_BASELINE
		p.holds = holds;
		p.nholds = nholds;
		p.now += 60;
#endif
		f->next_ms = timed_run(&p, &out);
		f->next_placed = out.placed;
		alloc_output_free(&out);
		free(after);
#ifndef ALLOC_BASELINE
		free(holds);
#endif
	}
	for (int n = 0; n < nnodes; n++)
		free(names[n]);
	free(names);
	free(labels);
	free(units);
	free(jobs);
	free(next);
	free(needs);
	free(cons);
	free(limit);
}

int
main(int argc, char **argv)
{
	int			raw = argc > 1 && strcmp(argv[1], "--raw") == 0;
	int			nodes = argc > 1 + raw ? atoi(argv[1 + raw]) : 10000;
	Figures		mine,
				base;
	char		cmd[256];
	FILE	   *in;

	if (nodes < 1 || nodes > 1000000)
	{
		fprintf(stderr, "usage: alloc_bench [--raw] [NODES (1..1000000)]\n");
		return 2;
	}
	measure(nodes, &mine);
	if (raw)
	{
		printf("%f %d %f %d\n", mine.full_ms, mine.full_placed, mine.next_ms, mine.next_placed);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "./alloc_bench_main --raw %d", nodes);
	if ((in = popen(cmd, "r")) == NULL ||
		fscanf(in, "%lf %d %lf %d", &base.full_ms, &base.full_placed, &base.next_ms,
			   &base.next_placed) != 4 || pclose(in) != 0)
	{
		fprintf(stderr, "could not run the baseline: %s\n", cmd);
		return 1;
	}
	printf("%d nodes (8 cpus, 2 gpus, 64 GB; 4 zones), a pool of 16 licences, %d jobs queued\n",
		   nodes, nodes * 10);
	printf("full cycle:        %8.1f ms, %6d placed, %8.0f placements/s   main: %8.1f ms, %6d placed\n",
		   mine.full_ms, mine.full_placed, mine.full_placed / mine.full_ms * 1e3,
		   base.full_ms, base.full_placed);
	printf("after %d changes: %8.1f ms, %6d placed                          main: %8.1f ms, %6d placed\n",
		   CHANGES, mine.next_ms, mine.next_placed, base.next_ms, base.next_placed);
	printf("ratio to main: full cycle time %.2f, placements %.1f; next cycle time %.2f\n",
		   mine.full_ms / base.full_ms, (double) mine.full_placed / base.full_placed,
		   mine.next_ms / base.next_ms);
	return 0;
}
