/*
 * backfill_bench.c: backfill in simulated time (src/core/tests/alloc_sim.c).
 *
 * A synthetic trace of mixed sizes and time limits with a scarce licence runs
 * through the allocator on a cluster of NODES nodes (8 cpus, 2 gpus), and, as the
 * baseline in the same run, through a greedy placement that starts whatever fits
 * at every event and ignores FIFO.  It prints the utilisation of both and their
 * ratio, and the promise check: how often a waiting job's expected start was
 * broken, and how often a later job caused that (which must be 0).
 */
#include "alloc_sim.h"

#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	SimConfig	c = {.nodes = argc > 1 ? atoi(argv[1]) : 16, .cpus = 8, .gpus = 2,
	.licences = 4, .jobs = argc > 2 ? atoi(argv[2]) : 1500, .seed = 7};
	SimResult	bf,
				gr;

	if (c.nodes < 1 || c.nodes > 100000 || c.jobs < 2 || c.jobs > 1000000)
	{
		fprintf(stderr, "usage: backfill_bench [NODES (1..100000)] [JOBS (2..1000000)]\n");
		return 2;
	}
	if (alloc_sim(&c, &bf) < 0 || (c.greedy = 1, alloc_sim(&c, &gr)) < 0)
	{
		fprintf(stderr, "the simulation failed\n");
		return 1;
	}
	printf("%d nodes (8 cpus, 2 gpus), a pool of %d licences, %d jobs (limits 1-60 min, "
		   "runs 20-100 %% of them)\n", c.nodes, c.licences, c.jobs);
	printf("backfill: utilisation %.3f, makespan %lld s, %ld cycles, %.2f ms per cycle, "
		   "%ld jobs started before an earlier one\n", bf.utilisation, (long long) bf.makespan,
		   bf.cycles, bf.alloc_seconds * 1e3 / bf.cycles, bf.placed_out_of_order);
	printf("greedy:   utilisation %.3f, makespan %lld s (places whatever fits, no FIFO)\n",
		   gr.utilisation, (long long) gr.makespan);
	printf("utilisation ratio (backfill / greedy): %.3f\n", bf.utilisation / gr.utilisation);
	printf("promised starts checked: %ld, broken: %ld, broken by a later job: %ld\n",
		   bf.promises, bf.broken, bf.delays);
	return bf.delays == 0 ? 0 : 1;
}
