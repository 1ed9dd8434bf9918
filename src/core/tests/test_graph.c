/*
 * test_graph.c: unit tests of the graph module (graph.c).
 *
 * Small named graphs pin the exact answers: components, the dependency-first
 * order with its tie rule, the cycle (start, direction, shortest, neighbours in
 * input order) and stale sets.  Random graphs (fixed seed) are checked against
 * a naive transitive closure: the components are the mutual-reachability
 * classes, every edge goes from a later or equal component to an earlier one,
 * each component is the smallest-node ready one when it is placed, the cycle is
 * made of edges and is a shortest one through the smallest cyclic node, and
 * the stale set is what reaches a changed node.  A 200,000-node chain and ring
 * would overflow the C stack of a recursive search.  Every allocation of each
 * function fails in turn (fail_alloc.h): the function must say GRAPH_NOMEM and
 * leak nothing (LeakSanitizer).
 */
#include "graph.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 40					/* nodes of the random graphs */
#define LONG 200000				/* nodes of the chain */

static void *sys_alloc(size_t size, void *arg);
static void sys_release(void *ptr, void *arg);
static Graph *build(int n, int m, const int *from, const int *to);
static int	same(const int *a, const int *b, int n);
static void expect_order(const char *name, int n, int m, const int *from, const int *to,
						 const int *want);
static void expect_cycle(const char *name, int n, int m, const int *from, const int *to,
						 const int *want, int wantlen);
static uint32_t rnd(void);
static void test_empty(void);
static void test_orders(void);
static void test_cycles(void);
static void test_components(void);
static void test_stale(void);
static void test_errors(void);
static void check_random(int n, int m, const int *from, const int *to);
static void test_random(void);
static void test_long(void);
static int	oom_scenario(void);
static void test_out_of_memory(void);

static const GraphAlloc sys = {sys_alloc, sys_release, NULL};
static long allocations;		/* calls of sys_alloc */

/* malloc for the graph (fail_alloc.h makes it fail on demand). */
static void *
sys_alloc(size_t size, void *arg)
{
	(void) arg;
	allocations++;
	return malloc(size);
}

/* free for the graph. */
static void
sys_release(void *ptr, void *arg)
{
	(void) arg;
	free(ptr);
}

/* Returns the graph of these edges; exits when it cannot be built. */
static Graph *
build(int n, int m, const int *from, const int *to)
{
	Graph	   *g;

	if (graph_new(n, m, from, to, &sys, &g, NULL) != GRAPH_OK)
	{
		printf("FAIL cannot build a graph of %d nodes and %d edges\n", n, m);
		exit(1);
	}
	return g;
}

/* Returns 1 when a[0 .. n) and b[0 .. n) are equal. */
static int
same(const int *a, const int *b, int n)
{
	return n == 0 || memcmp(a, b, (size_t) n * sizeof(int)) == 0;
}

/* Checks graph_order against want (n nodes). */
static void
expect_order(const char *name, int n, int m, const int *from, const int *to, const int *want)
{
	Graph	   *g = build(n, m, from, to);
	int		   *order = malloc(((size_t) n + 1) * sizeof(int));

	check(name, graph_order(g, order) == GRAPH_OK && same(order, want, n));
	free(order);
	graph_free(g);
}

/* Checks graph_cycle against want[0 .. wantlen) (wantlen 0: no cycle). */
static void
expect_cycle(const char *name, int n, int m, const int *from, const int *to, const int *want,
			 int wantlen)
{
	Graph	   *g = build(n, m, from, to);
	int		   *cycle = malloc(((size_t) n + 1) * sizeof(int));
	int			len = -1;

	check(name, graph_cycle(g, cycle, &len) == GRAPH_OK && len == wantlen &&
		  same(cycle, want, len));
	free(cycle);
	graph_free(g);
}

/* xorshift32 with a fixed seed: the same graphs every run. */
static uint32_t
rnd(void)
{
	static uint32_t x = 2463534242u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

/* No nodes, and nodes without edges. */
static void
test_empty(void)
{
	Graph	   *g = build(0, 0, NULL, NULL);
	int			comp[4],
				ncomp = -1,
				len = -1,
				cycle[1];
	unsigned char stale[1];
	static const int order4[] = {0, 1, 2, 3};

	check("empty: no components", graph_components(g, comp, &ncomp) == GRAPH_OK && ncomp == 0);
	check("empty: no order", graph_order(g, comp) == GRAPH_OK);
	check("empty: no cycle", graph_cycle(g, cycle, &len) == GRAPH_OK && len == 0);
	check("empty: nothing stale", graph_stale(g, NULL, 0, stale, NULL) == GRAPH_OK);
	check("empty: no nodes", graph_nodes(g) == 0);
	graph_free(g);
	graph_free(NULL);
	expect_order("no edges: nodes in index order", 4, 0, NULL, NULL, order4);
	expect_cycle("no edges: no cycle", 4, 0, NULL, NULL, NULL, 0);
}

/* Dependency-first orders of acyclic graphs, ties to the smallest node. */
static void
test_orders(void)
{
	static const int dag_f[] = {0, 1, 5, 2}, dag_t[] = {5, 5, 3, 4};
	static const int dag[] = {3, 4, 2, 5, 0, 1};
	static const int dia_f[] = {0, 0, 1, 2, 4}, dia_t[] = {1, 2, 3, 3, 0};
	static const int dia[] = {3, 1, 2, 0, 4};
	static const int rev_f[] = {0, 1, 2}, rev_t[] = {1, 2, 3};
	static const int rev[] = {3, 2, 1, 0};
	static const int dup_f[] = {1, 1, 1}, dup_t[] = {0, 0, 0};
	static const int dup[] = {0, 1, 2};
	static const int loop_f[] = {0, 2}, loop_t[] = {1, 2};
	static const int loop[] = {1, 0, 2};

	expect_order("dag: ready nodes taken smallest first", 6, 4, dag_f, dag_t, dag);
	expect_order("diamond: the shared dependency first, then 1, 2, 0, 4", 5, 5, dia_f, dia_t, dia);
	expect_order("chain: the last dependency first", 4, 3, rev_f, rev_t, rev);
	expect_order("parallel edges count once each", 3, 3, dup_f, dup_t, dup);
	expect_order("a self-loop is no dependency on another component", 3, 2, loop_f, loop_t, loop);
	expect_cycle("dag: no cycle", 6, 4, dag_f, dag_t, NULL, 0);
	expect_cycle("diamond: no cycle", 5, 5, dia_f, dia_t, NULL, 0);
}

/* Cycles: start, direction, shortest, input order among equals. */
static void
test_cycles(void)
{
	static const int self_f[] = {0, 2}, self_t[] = {1, 2};
	static const int self[] = {2, 2};
	static const int two_f[] = {0, 3}, two_t[] = {3, 0};
	static const int two[] = {0, 3, 0};
	static const int not0_f[] = {0, 1, 2, 3, 4}, not0_t[] = {1, 2, 3, 1, 0};
	static const int not0[] = {1, 2, 3, 1};
	static const int short_f[] = {0, 1, 2, 3, 0, 4}, short_t[] = {1, 2, 3, 0, 4, 0};
	static const int shortest[] = {0, 4, 0};
	static const int tie_f[] = {0, 0, 1, 2}, tie_t[] = {2, 1, 0, 0};
	static const int tie[] = {0, 2, 0};
	static const int low_f[] = {3, 4, 1, 1}, low_t[] = {4, 3, 1, 3};
	static const int low[] = {1, 1};
	static const int out_f[] = {0, 1, 2, 2, 4}, out_t[] = {4, 2, 1, 3, 1};
	static const int out[] = {1, 2, 1};

	expect_cycle("self-loop: [2, 2]", 3, 2, self_f, self_t, self, 2);
	expect_cycle("2-cycle: [0, 3, 0]", 4, 2, two_f, two_t, two, 3);
	expect_cycle("cycle not through node 0 starts at its smallest node", 5, 5, not0_f, not0_t,
				 not0, 4);
	expect_cycle("the shortest cycle through the start", 5, 6, short_f, short_t, shortest, 3);
	expect_cycle("equal cycles: the first edge in input order", 3, 4, tie_f, tie_t, tie, 3);
	expect_cycle("a self-loop on a smaller node beats a larger cycle", 5, 4, low_f, low_t, low, 2);
	expect_cycle("the search leaves out nodes outside the component", 5, 5, out_f, out_t, out, 3);
}

/* Several components, numbered dependency-first. */
static void
test_components(void)
{
	/* {0, 1} after {2, 3, 4} after {6}; 5 after {0, 1} */
	static const int f[] = {0, 1, 2, 3, 4, 0, 5, 4}, t[] = {1, 0, 3, 4, 2, 2, 0, 6};
	static const int want_comp[] = {2, 2, 1, 1, 1, 3, 0};
	static const int want_order[] = {6, 2, 3, 4, 0, 1, 5};
	static const int want_cycle[] = {0, 1, 0};
	Graph	   *g = build(7, 8, f, t);
	int			comp[7],
				ncomp = -1;

	check("several components: numbered dependency-first",
		  graph_components(g, comp, &ncomp) == GRAPH_OK && ncomp == 4 &&
		  same(comp, want_comp, 7));
	graph_free(g);
	expect_order("several components: members ascending", 7, 8, f, t, want_order);
	expect_cycle("several components: the cycle of the smallest node", 7, 8, f, t, want_cycle, 3);
}

/* Stale sets: what depends on a changed node, directly or not. */
static void
test_stale(void)
{
	/* 0 -> 1 -> 2, 3 -> 2, 4 -> 3, 5 alone, 6 <-> 7 -> 1 */
	static const int f[] = {0, 1, 3, 4, 6, 7, 7}, t[] = {1, 2, 2, 3, 7, 6, 1};
	static const unsigned char from2[] = {1, 1, 1, 1, 1, 0, 1, 1};
	static const unsigned char from3[] = {0, 0, 0, 1, 1, 0, 0, 0};
	static const unsigned char from6[] = {0, 0, 0, 0, 0, 0, 1, 1};
	static const unsigned char none[8] = {0};
	static const int c2[] = {2}, c35[] = {3, 3, 5}, c6[] = {6};
	static const unsigned char from35[] = {0, 0, 0, 1, 1, 1, 0, 0};
	Graph	   *g = build(8, 7, f, t);
	unsigned char stale[8];

	check("stale: everything that reaches 2",
		  graph_stale(g, c2, 1, stale, NULL) == GRAPH_OK && memcmp(stale, from2, 8) == 0);
	check("stale: only what reaches 3",
		  graph_stale(g, c35, 1, stale, NULL) == GRAPH_OK && memcmp(stale, from3, 8) == 0);
	check("stale: duplicates and a node nothing depends on",
		  graph_stale(g, c35, 3, stale, NULL) == GRAPH_OK && memcmp(stale, from35, 8) == 0);
	check("stale: around a cycle",
		  graph_stale(g, c6, 1, stale, NULL) == GRAPH_OK && memcmp(stale, from6, 8) == 0);
	memset(stale, 1, sizeof(stale));
	check("stale: nothing changed, nothing stale",
		  graph_stale(g, NULL, 0, stale, NULL) == GRAPH_OK && memcmp(stale, none, 8) == 0);
	graph_free(g);
}

/* Bad sizes and out-of-range nodes are refused. */
static void
test_errors(void)
{
	static const int f[] = {0, 1, 2}, t[] = {1, 2, 3};
	static const int neg[] = {0, -1};
	Graph	   *g;
	int			bad = -1;
	unsigned char stale[3];

	check("edge endpoint past the last node",
		  graph_new(3, 3, f, t, &sys, &g, &bad) == GRAPH_ERANGE && bad == 2);
	bad = -1;
	check("negative edge tail",
		  graph_new(3, 2, neg, f, &sys, &g, &bad) == GRAPH_ERANGE && bad == 1);
	check("negative edge head", graph_new(3, 2, f, neg, &sys, &g, NULL) == GRAPH_ERANGE);
	check("negative node count", graph_new(-1, 0, NULL, NULL, &sys, &g, NULL) == GRAPH_EINVAL);
	check("negative edge count", graph_new(3, -1, f, t, &sys, &g, NULL) == GRAPH_EINVAL);
	check("too many nodes", graph_new(GRAPH_MAX + 1, 0, NULL, NULL, &sys, &g, NULL) == GRAPH_EINVAL);
	check("too many edges", graph_new(3, GRAPH_MAX + 1, f, t, &sys, &g, NULL) == GRAPH_EINVAL);
	check("edges without arrays", graph_new(3, 1, NULL, NULL, &sys, &g, NULL) == GRAPH_EINVAL);
	check("every edge of a graph in range is accepted",
		  graph_new(4, 3, f, t, &sys, &g, NULL) == GRAPH_OK);
	graph_free(g);
	g = build(3, 2, f, t);
	bad = -1;
	check("stale: changed node out of range",
		  graph_stale(g, t, 3, stale, &bad) == GRAPH_ERANGE && bad == 2);
	check("stale: negative changed node", graph_stale(g, neg, 2, stale, &bad) == GRAPH_ERANGE &&
		  bad == 1);
	check("stale: negative count", graph_stale(g, f, -1, stale, NULL) == GRAPH_EINVAL);
	graph_free(g);
}

/* Checks every answer on one graph against its transitive closure. */
static void
check_random(int n, int m, const int *from, const int *to)
{
	static unsigned char reach[MAXN][MAXN];
	static int	dist[MAXN][MAXN];
	Graph	   *g = build(n, m, from, to);
	int			comp[MAXN],
				order[MAXN],
				cycle[MAXN + 1],
				changed[3],
				nchanged,
				ncomp = -1,
				len = -1,
				s = -1,
				ok = 1;
	unsigned char stale[MAXN];

	/* dist[a][b]: fewest edges from a to b (a path of at least one edge), or MAXN + 1. */
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++)
			dist[a][b] = MAXN + 1;
	for (int i = 0; i < m; i++)
		dist[from[i]][to[i]] = 1;
	for (int k = 0; k < n; k++)
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++)
				if (dist[a][k] + dist[k][b] < dist[a][b])
					dist[a][b] = dist[a][k] + dist[k][b];
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++)
			reach[a][b] = dist[a][b] <= MAXN;

	if (graph_components(g, comp, &ncomp) != GRAPH_OK || graph_order(g, order) != GRAPH_OK ||
		graph_cycle(g, cycle, &len) != GRAPH_OK)
	{
		check("random: every call succeeds", 0);
		graph_free(g);
		return;
	}
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++)
			if ((comp[a] == comp[b]) != (a == b || (reach[a][b] && reach[b][a])))
				ok = 0;
	check("random: components are the mutual-reachability classes", ok);
	ok = 1;
	for (int i = 0; i < m; i++)
		if (comp[to[i]] > comp[from[i]])
			ok = 0;
	check("random: every edge points to an earlier or the same component", ok);

	/* Component k must be the ready one with the smallest node. */
	ok = 1;
	for (int k = 0; k < ncomp && ok; k++)
	{
		int			best = -1;

		for (int v = 0; v < n && best < 0; v++)
		{
			int			ready = comp[v] >= k;

			for (int i = 0; i < m && ready; i++)
				if (comp[from[i]] == comp[v] && comp[to[i]] != comp[v] && comp[to[i]] >= k)
					ready = 0;
			if (ready)
				best = v;
		}
		ok = best >= 0 && comp[best] == k;
	}
	check("random: the ready component with the smallest node comes next", ok);
	ok = 1;
	for (int i = 1; i < n; i++)
		if (comp[order[i]] < comp[order[i - 1]] ||
			(comp[order[i]] == comp[order[i - 1]] && order[i] < order[i - 1]))
			ok = 0;
	check("random: order lists components in turn, members ascending", ok);

	for (int v = 0; v < n && s < 0; v++)
		if (reach[v][v])
			s = v;
	if (s < 0)
		check("random: acyclic, no cycle", len == 0);
	else
	{
		ok = len == dist[s][s] + 1 && cycle[0] == s && cycle[len - 1] == s;
		for (int i = 0; ok && i + 1 < len; i++)
		{
			int			edge = 0;

			for (int e = 0; e < m && !edge; e++)
				edge = from[e] == cycle[i] && to[e] == cycle[i + 1];
			ok = edge;
		}
		check("random: a shortest cycle through the smallest cyclic node, of edges", ok);
	}

	nchanged = 1 + (int) (rnd() % 3);
	for (int i = 0; i < nchanged; i++)
		changed[i] = (int) (rnd() % (uint32_t) n);
	ok = graph_stale(g, changed, nchanged, stale, NULL) == GRAPH_OK;
	for (int v = 0; v < n && ok; v++)
	{
		int			want = 0;

		for (int i = 0; i < nchanged; i++)
			want |= v == changed[i] || reach[v][changed[i]];
		ok = stale[v] == want;
	}
	check("random: stale is what reaches a changed node", ok);
	graph_free(g);
}

/* Random graphs, dense and sparse, against the naive closure. */
static void
test_random(void)
{
	int			from[4 * MAXN],
				to[4 * MAXN];

	for (int round = 0; round < 600; round++)
	{
		int			n = 1 + (int) (rnd() % MAXN);
		int			m = (int) (rnd() % (uint32_t) (4 * n));
		int			kept = 0;

		for (int i = 0; i < m; i++)
		{
			int			a = (int) (rnd() % (uint32_t) n);
			int			b = (int) (rnd() % (uint32_t) n);

			/* Half the rounds acyclic: every edge from a smaller node to a larger one. */
			if (round % 2 == 0 && a == b)
				continue;
			from[kept] = round % 2 == 0 && a > b ? b : a;
			to[kept++] = round % 2 == 0 && a > b ? a : b;
		}
		m = kept;
		check_random(n, m, from, to);
	}
}

/* A 200,000-node chain, then the same closed into a ring. */
static void
test_long(void)
{
	int		   *from = malloc(LONG * sizeof(int));
	int		   *to = malloc(LONG * sizeof(int));
	int		   *out = malloc((LONG + 1) * sizeof(int));
	Graph	   *g;
	int			ok = 1,
				len = -1,
				ncomp = -1;

	for (int i = 0; i < LONG - 1; i++)
	{
		from[i] = i;
		to[i] = i + 1;
	}
	g = build(LONG, LONG - 1, from, to);
	check("chain: order from the far end", graph_order(g, out) == GRAPH_OK);
	for (int i = 0; i < LONG; i++)
		ok = ok && out[i] == LONG - 1 - i;
	check("chain: every node after the one it depends on", ok);
	check("chain: no cycle", graph_cycle(g, out, &len) == GRAPH_OK && len == 0);
	graph_free(g);

	from[LONG - 1] = LONG - 1;
	to[LONG - 1] = 0;
	g = build(LONG, LONG, from, to);
	check("ring: one component", graph_components(g, out, &ncomp) == GRAPH_OK && ncomp == 1);
	check("ring: the cycle is the whole ring",
		  graph_cycle(g, out, &len) == GRAPH_OK && len == LONG + 1);
	for (int i = 0; i < LONG; i++)
		ok = ok && out[i] == i;
	check("ring: cycle 0, 1, ..., 0", ok && out[LONG] == 0);
	graph_free(g);
	free(from);
	free(to);
	free(out);
}

/* Builds a graph and runs every function on it; returns 1 when all succeeded. */
static int
oom_scenario(void)
{
	static const int f[] = {0, 1, 2, 3, 4, 0, 5, 4}, t[] = {1, 0, 3, 4, 2, 2, 0, 6};
	static const int changed[] = {2};
	Graph	   *g;
	int			out[8],
				ncomp,
				len;
	unsigned char stale[7];
	int			ok;

	if (graph_new(7, 8, f, t, &sys, &g, NULL) != GRAPH_OK)
		return 0;
	ok = graph_components(g, out, &ncomp) == GRAPH_OK;
	ok = (graph_order(g, out) == GRAPH_OK) && ok;
	ok = (graph_cycle(g, out, &len) == GRAPH_OK) && ok;
	ok = (graph_stale(g, changed, 1, stale, NULL) == GRAPH_OK) && ok;
	graph_free(g);
	return ok;
}

/* Every allocation of the scenario fails in turn; LeakSanitizer checks the cleanup. */
static void
test_out_of_memory(void)
{
	int			points;
	long		total;

	allocations = 0;
	check("the scenario runs to its end without failures", oom_scenario());
	total = allocations;
	points = fail_each(oom_scenario, 1000);
	printf("out of memory at %d allocations in turn\n", points);
	check("every allocation of the scenario failed in turn and was reported", points == total);
}

int
main(void)
{
	test_empty();
	test_orders();
	test_cycles();
	test_components();
	test_stale();
	test_errors();
	test_random();
	test_long();
	test_out_of_memory();
	printf("test_graph: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
