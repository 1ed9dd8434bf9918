/*
 * graph.h: directed graphs of pg_dispatch, in plain C (no PostgreSQL headers).
 *
 * A graph has n nodes 0 .. n-1 and m edges from[i] -> to[i].  pg_dispatch reads
 * an edge a -> b as "a runs after b" (a depends on b), so "dependency-first"
 * below means that for every edge a -> b, b comes no later than a; the module
 * itself attaches no meaning to edges.  It gives the strongly connected
 * components (each cycle is inside one), an order of them that puts
 * dependencies first, one short cycle for an error message, and the set of
 * nodes that depend on a set of changed ones.  Every answer is deterministic:
 * it depends on n and the edges in their input order, nothing else.
 *
 * No function recurses, so a chain of any length is fine.  Memory comes from a
 * caller's allocator (malloc, or palloc in the server); when it fails, a
 * function returns GRAPH_NOMEM having released what it took.
 */
#ifndef DISPATCH_GRAPH_H
#define DISPATCH_GRAPH_H

#include <limits.h>
#include <stddef.h>

/* Most nodes and most edges of a graph: sizes computed from them cannot overflow. */
#define GRAPH_MAX (INT_MAX / 4)

/* Results of the functions below. */
#define GRAPH_OK 0
#define GRAPH_NOMEM (-1)		/* the allocator returned NULL */
#define GRAPH_EINVAL (-2)		/* a count is negative or above GRAPH_MAX */
#define GRAPH_ERANGE (-3)		/* a node number is outside 0 .. n-1 */

/* Where the graph gets and returns memory (malloc/free, or palloc/pfree). */
typedef struct GraphAlloc
{
	void	   *(*alloc) (size_t size, void *arg);	/* returns NULL when out of memory */
	void		(*release) (void *ptr, void *arg);
	void	   *arg;
} GraphAlloc;

typedef struct Graph Graph;

/*
 * Builds the graph of n nodes and the m edges from[i] -> to[i] into *out (from
 * and to may be NULL when m is 0).  Returns GRAPH_OK; GRAPH_EINVAL when n or m is
 * negative or above GRAPH_MAX; GRAPH_ERANGE when an endpoint is outside 0 .. n-1,
 * with *bad_edge the first such edge (bad_edge may be NULL); GRAPH_NOMEM.  *out
 * is NULL unless GRAPH_OK.
 */
extern int	graph_new(int n, int m, const int *from, const int *to,
					  const GraphAlloc *alloc, Graph **out, int *bad_edge);

/* Frees a graph built by graph_new (NULL is fine). */
extern void graph_free(Graph *g);

/* Returns the number of nodes of g. */
extern int	graph_nodes(const Graph *g);

/*
 * Strongly connected components (Tarjan's, iterative): comp[v] (n slots) is the
 * component of node v, *ncomp their number.  Components are numbered in
 * dependency-first order: for every edge a -> b, comp[b] <= comp[a].  Among the
 * components whose dependencies are all numbered, the one holding the smallest
 * node comes next.  Returns GRAPH_OK or GRAPH_NOMEM.
 */
extern int	graph_components(const Graph *g, int *comp, int *ncomp);

/*
 * Fills order (n slots) with the nodes in dependency-first order: the
 * components in graph_components' order, the members of each in ascending
 * order; for an acyclic graph a topological order.  Returns GRAPH_OK or
 * GRAPH_NOMEM.
 */
extern int	graph_order(const Graph *g, int *order);

/*
 * Finds a cycle through the smallest node that lies on one (a self-loop
 * counts), a shortest one through it (breadth first, edges in input order):
 * cycle[0 .. *len) starts at that node, follows edges and repeats the start at
 * its end ([0, 3, 0] for 0 -> 3 -> 0; [2, 2] for a self-loop on 2).  cycle needs
 * n + 1 slots; *len is 0 when the graph has no cycle.  Returns GRAPH_OK or
 * GRAPH_NOMEM.
 */
extern int	graph_cycle(const Graph *g, int *cycle, int *len);

/*
 * Marks the stale nodes: stale[v] (n slots) becomes 1 when v is one of
 * changed[0 .. nchanged) or reaches one along edges (depends on it, directly or
 * not), else 0.  Returns GRAPH_OK; GRAPH_EINVAL when nchanged is negative;
 * GRAPH_ERANGE when a changed node is outside 0 .. n-1, with *bad its index in
 * changed (bad may be NULL); GRAPH_NOMEM.
 */
extern int	graph_stale(const Graph *g, const int *changed, int nchanged,
						unsigned char *stale, int *bad);

#endif							/* DISPATCH_GRAPH_H */
