/*
 * alloc_bench.c: how fast alloc_run() places a large queue.
 *
 * A synthetic cluster (N nodes with 8 cpus, 2 gpus and 64 GB each, 4 zones, a
 * cluster-wide licence pool) and a queue of 10 N jobs with mixed needs, a quarter of
 * them pinned to a zone.  The baseline is the same workload 10 times smaller,
 * measured in the same run: the printed scaling ratio is (time per job at full size)
 * / (time per job at baseline size), 1.0 meaning perfectly linear.
 */
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *zones[] = {"a", "b", "c", "d"};

static double now_s(void);
static double run(int nnodes, int reps, int *placed);

/* Returns a monotonic clock reading in seconds. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Builds the workload for nnodes, runs alloc_run reps times; returns the best seconds. */
static double
run(int nnodes, int reps, int *placed)
{
	int			njobs = nnodes * 10;
	int			nunits = nnodes * 11 + 16;
	char	  **names = malloc(sizeof(char *) * nnodes);
	AllocLabel *labels = malloc(sizeof(AllocLabel) * nnodes);
	AllocUnit  *units = malloc(sizeof(AllocUnit) * nunits);
	AllocJob   *jobs = malloc(sizeof(AllocJob) * njobs);
	AllocNeed  *needs = malloc(sizeof(AllocNeed) * njobs * 2);
	AllocConstraint *cons = malloc(sizeof(AllocConstraint) * njobs);
	AllocProblem p;
	double		best = 1e9;
	int			u = 0;
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
		jobs[j] = (AllocJob) {.job_id = j + 1, .joblist_id = 1 + j / 5, .needs = &needs[2 * j],
			.nneeds = 2, .constraints = &cons[j], .nconstraints = kind % 4 == 0};
	}
	p = (AllocProblem) {.nodes = (const char *const *) names, .nnodes = nnodes, .labels = labels,
		.nlabels = nnodes, .units = units, .nunits = u, .jobs = jobs, .njobs = njobs};
	for (int r = 0; r < reps; r++)
	{
		AllocOutput out;
		double		t0 = now_s();

		if (alloc_run(&p, &out) < 0)
		{
			fprintf(stderr, "alloc_run failed\n");
			exit(1);
		}
		t0 = now_s() - t0;
		best = t0 < best ? t0 : best;
		*placed = out.placed;
		alloc_output_free(&out);
	}
	for (int n = 0; n < nnodes; n++)
		free(names[n]);
	free(names);
	free(labels);
	free(units);
	free(jobs);
	free(needs);
	free(cons);
	return best;
}

int
main(int argc, char **argv)
{
	int			nodes = argc > 1 ? atoi(argv[1]) : 1000;
	int			placed_base, placed_full;
	double		base = run(nodes / 10, 20, &placed_base);
	double		full = run(nodes, 5, &placed_full);
	double		per_base = base / (nodes / 10 * 10);
	double		per_full = full / (nodes * 10);

	printf("baseline: %d nodes, %d jobs queued, %d placed: %.3f ms per cycle, %.0f jobs/s\n",
		   nodes / 10, nodes, placed_base, base * 1e3, nodes / base);
	printf("full:     %d nodes, %d jobs queued, %d placed: %.3f ms per cycle, %.0f jobs/s\n",
		   nodes, nodes * 10, placed_full, full * 1e3, nodes * 10 / full);
	printf("scaling ratio (time per job, full / baseline): %.2f\n", per_full / per_base);
	return 0;
}
