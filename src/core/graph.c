/*
 * graph.c: components, dependency order, cycles and stale sets (see graph.h).
 *
 * A graph keeps its edges twice, in compressed rows: by tail (each node's
 * out-edges, for the component search and the cycle search) and by head (the
 * edges into each node, for the order and the stale set), both in input order
 * so that every search visits neighbours in the order the caller gave them.
 *
 * Components come from Tarjan's algorithm with an explicit stack of the path
 * being explored and a cursor per node into its out-edges, so depth costs
 * memory, not C stack.  Tarjan completes a component only after every
 * component it reaches, which is already a dependency-first order, but one that
 * depends on where the search starts; graph_components therefore renumbers them
 * with Kahn's algorithm on the condensation, taking from a min-heap the ready
 * component with the smallest node.  The cycle is a breadth-first search from
 * the smallest node of a cyclic component, kept inside that component: the
 * first node dequeued that has an edge back to the start closes a shortest
 * cycle.  The stale set is a breadth-first search along edges reversed.
 *
 * Each call allocates its scratch space in one or two blocks and releases them
 * before it returns; nothing is allocated per node or per edge.
 */
#include "graph.h"

#include <stdint.h>
#include <string.h>

struct Graph
{
	GraphAlloc	alloc;
	int			n;
	int			m;
	int		   *out_start;		/* n + 1: v's out-edges end at out_node[out_start[v] .. out_start[v + 1]) */
	int		   *out_node;		/* m */
	int		   *in_start;		/* n + 1: v's in-edges start at in_node[in_start[v] .. in_start[v + 1]) */
	int		   *in_node;		/* m */
};

static int *ints(const GraphAlloc *a, size_t count);
static void rows(int n, int m, const int *key, const int *val, int *start, int *node);
static int	tarjan(const Graph *g, int *comp, int *member, int *start);
static int	smallest(const int *member, const int *start, int c);
static void heap_push(int *heap, int *len, int v);
static int	heap_pop(int *heap, int *len);
static int	on_cycle(const Graph *g, const int *comp, const int *start, int v);

/* Returns room for count ints from a, or NULL when out of memory or too large. */
static int *
ints(const GraphAlloc *a, size_t count)
{
	if (count > SIZE_MAX / sizeof(int))
		return NULL;
	return a->alloc(count == 0 ? sizeof(int) : count * sizeof(int), a->arg);
}

/*
 * Groups the pairs (key[i], val[i]), i < m, by key, stably: node[start[k] ..
 * start[k + 1]) are the vals of key k (0 .. n-1) in input order; val NULL stands
 * for val[i] = i.  start has n + 1 slots.
 */
static void
rows(int n, int m, const int *key, const int *val, int *start, int *node)
{
	memset(start, 0, ((size_t) n + 1) * sizeof(int));
	for (int i = 0; i < m; i++)
		start[key[i] + 1]++;
	for (int k = 0; k < n; k++)
		start[k + 1] += start[k];
	/* start[k] serves as k's cursor, ending at start[k + 1]'s value ... */
	for (int i = 0; i < m; i++)
		node[start[key[i]]++] = val ? val[i] : i;
	/* ... so shifting by one slot gives the starts back. */
	for (int k = n; k > 0; k--)
		start[k] = start[k - 1];
	start[0] = 0;
}

int
graph_new(int n, int m, const int *from, const int *to, const GraphAlloc *alloc,
		  Graph **out, int *bad_edge)
{
	Graph	   *g;
	int		   *block;

	*out = NULL;
	if (n < 0 || n > GRAPH_MAX || m < 0 || m > GRAPH_MAX ||
		(m > 0 && (from == NULL || to == NULL)))
		return GRAPH_EINVAL;
	for (int i = 0; i < m; i++)
		if (from[i] < 0 || from[i] >= n || to[i] < 0 || to[i] >= n)
		{
			if (bad_edge)
				*bad_edge = i;
			return GRAPH_ERANGE;
		}
	if ((g = alloc->alloc(sizeof(Graph), alloc->arg)) == NULL)
		return GRAPH_NOMEM;
	if ((block = ints(alloc, 2 * ((size_t) n + 1) + 2 * (size_t) m)) == NULL)
	{
		alloc->release(g, alloc->arg);
		return GRAPH_NOMEM;
	}
	g->alloc = *alloc;
	g->n = n;
	g->m = m;
	g->out_start = block;
	g->out_node = g->out_start + n + 1;
	g->in_start = g->out_node + m;
	g->in_node = g->in_start + n + 1;
	rows(n, m, from, to, g->out_start, g->out_node);
	rows(n, m, to, from, g->in_start, g->in_node);
	*out = g;
	return GRAPH_OK;
}

void
graph_free(Graph *g)
{
	if (g == NULL)
		return;
	g->alloc.release(g->out_start, g->alloc.arg);
	g->alloc.release(g, g->alloc.arg);
}

int
graph_nodes(const Graph *g)
{
	return g->n;
}

/*
 * Tarjan's algorithm without recursion.  comp[v] (n slots) becomes v's
 * component, numbered in the order components complete, and
 * member[start[c] .. start[c + 1]) the nodes of component c (member: n slots,
 * start: n + 1).  Returns the number of components, or -1 when out of memory.
 */
static int
tarjan(const Graph *g, int *comp, int *member, int *start)
{
	const int	n = g->n;
	int		   *work = ints(&g->alloc, 4 * (size_t) n);
	int		   *index,			/* visit number, -1: not visited yet */
			   *low,			/* smallest visit number reachable through the search tree */
			   *next,			/* next out-edge to look at */
			   *stack;			/* visited nodes whose component is still open */
	int			counter = 0,
				top = 0,
				ncomp = 0,
				filled = 0;
	int		   *path = member;	/* the search path; member fills from below only
								 * once nodes leave the path, so they share */

	if (work == NULL)
		return -1;
	index = work;
	low = work + n;
	next = work + 2 * n;
	stack = work + 3 * n;
	for (int v = 0; v < n; v++)
	{
		index[v] = -1;
		comp[v] = -1;
	}
	for (int root = 0; root < n; root++)
	{
		int			depth = 0;

		if (index[root] >= 0)
			continue;
		index[root] = low[root] = counter++;
		next[root] = g->out_start[root];
		stack[top++] = root;
		path[n - 1 - depth++] = root;
		while (depth > 0)
		{
			int			v = path[n - depth];

			if (next[v] < g->out_start[v + 1])
			{
				int			w = g->out_node[next[v]++];

				if (index[w] < 0)
				{
					index[w] = low[w] = counter++;
					next[w] = g->out_start[w];
					stack[top++] = w;
					path[n - 1 - depth++] = w;
				}
				else if (comp[w] < 0 && index[w] < low[v])
					low[v] = index[w];	/* w is open: on the stack */
				continue;
			}
			depth--;
			if (depth > 0 && low[v] < low[path[n - depth]])
				low[path[n - depth]] = low[v];
			if (low[v] == index[v])
			{
				int			x;

				start[ncomp] = filled;
				do
				{
					x = stack[--top];
					comp[x] = ncomp;
					member[filled++] = x;
				} while (x != v);
				ncomp++;
			}
		}
	}
	start[ncomp] = filled;
	g->alloc.release(work, g->alloc.arg);
	return ncomp;
}

/* Returns the smallest node of component c. */
static int
smallest(const int *member, const int *start, int c)
{
	int			best = member[start[c]];

	for (int i = start[c] + 1; i < start[c + 1]; i++)
		if (member[i] < best)
			best = member[i];
	return best;
}

/* Adds v to the min-heap heap[0 .. *len). */
static void
heap_push(int *heap, int *len, int v)
{
	int			i = (*len)++;

	while (i > 0 && heap[(i - 1) / 2] > v)
	{
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = v;
}

/* Removes and returns the smallest value of the min-heap heap[0 .. *len), not empty. */
static int
heap_pop(int *heap, int *len)
{
	int			top = heap[0];
	int			last = heap[--(*len)];
	int			i = 0;

	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= *len)
			break;
		if (c + 1 < *len && heap[c + 1] < heap[c])
			c++;
		if (heap[c] >= last)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (*len > 0)
		heap[i] = last;
	return top;
}

int
graph_components(const Graph *g, int *comp, int *ncomp)
{
	const int	n = g->n;
	int		   *block = ints(&g->alloc, 3 * (size_t) n + 1);
	int		   *raw,			/* Tarjan's numbering */
			   *member,
			   *start,
			   *pending,		/* per component: edges to components not numbered yet */
			   *heap;			/* smallest nodes of the ready components */
	int			nraw,
				nheap = 0,
				next = 0;

	if (block == NULL)
		return GRAPH_NOMEM;
	raw = block;
	member = block + n;
	start = block + 2 * n;
	if ((nraw = tarjan(g, raw, member, start)) < 0 ||
		(pending = ints(&g->alloc, 2 * (size_t) nraw)) == NULL)
	{
		g->alloc.release(block, g->alloc.arg);
		return GRAPH_NOMEM;
	}
	heap = pending + nraw;
	memset(pending, 0, (size_t) nraw * sizeof(int));
	for (int a = 0; a < n; a++)
		for (int e = g->out_start[a]; e < g->out_start[a + 1]; e++)
			if (raw[g->out_node[e]] != raw[a])
				pending[raw[a]]++;
	for (int c = 0; c < nraw; c++)
		if (pending[c] == 0)
			heap_push(heap, &nheap, smallest(member, start, c));
	while (nheap > 0)
	{
		int			c = raw[heap_pop(heap, &nheap)];

		for (int i = start[c]; i < start[c + 1]; i++)
		{
			int			b = member[i];

			comp[b] = next;
			for (int e = g->in_start[b]; e < g->in_start[b + 1]; e++)
			{
				int			ca = raw[g->in_node[e]];

				if (ca != c && --pending[ca] == 0)
					heap_push(heap, &nheap, smallest(member, start, ca));
			}
		}
		next++;
	}
	*ncomp = next;
	g->alloc.release(pending, g->alloc.arg);
	g->alloc.release(block, g->alloc.arg);
	return GRAPH_OK;
}

int
graph_order(const Graph *g, int *order)
{
	const int	n = g->n;
	int		   *block = ints(&g->alloc, 2 * (size_t) n + 1);
	int		   *comp,
			   *first;			/* per component: its first slot in order */
	int			ncomp;

	if (block == NULL)
		return GRAPH_NOMEM;
	comp = block;
	first = block + n;
	if (graph_components(g, comp, &ncomp) != GRAPH_OK)
	{
		g->alloc.release(block, g->alloc.arg);
		return GRAPH_NOMEM;
	}
	rows(ncomp, n, comp, NULL, first, order);
	g->alloc.release(block, g->alloc.arg);
	return GRAPH_OK;
}

/* Returns 1 when node v lies on a cycle: its component has another node, or v has a self-loop. */
static int
on_cycle(const Graph *g, const int *comp, const int *start, int v)
{
	if (start[comp[v] + 1] - start[comp[v]] > 1)
		return 1;
	for (int e = g->out_start[v]; e < g->out_start[v + 1]; e++)
		if (g->out_node[e] == v)
			return 1;
	return 0;
}

int
graph_cycle(const Graph *g, int *cycle, int *len)
{
	const int	n = g->n;
	int		   *block = ints(&g->alloc, 3 * (size_t) n + 1);
	int		   *comp,
			   *queue,
			   *parent;			/* breadth-first tree, -1: not reached */
	int			s = -1,
				end = -1,
				head = 0,
				tail = 0,
				k = 1;

	*len = 0;
	if (block == NULL)
		return GRAPH_NOMEM;
	comp = block;
	if (tarjan(g, comp, block + n, block + 2 * n) < 0)
	{
		g->alloc.release(block, g->alloc.arg);
		return GRAPH_NOMEM;
	}
	for (int v = 0; v < n && s < 0; v++)
		if (on_cycle(g, comp, block + 2 * n, v))
			s = v;
	if (s < 0)
	{
		g->alloc.release(block, g->alloc.arg);
		return GRAPH_OK;
	}

	/* Tarjan's members and starts are done with: their slots hold the search. */
	queue = block + n;
	parent = block + 2 * n;
	for (int v = 0; v < n; v++)
		parent[v] = -1;
	parent[s] = s;
	queue[tail++] = s;
	while (end < 0 && head < tail)
	{
		int			u = queue[head++];

		for (int e = g->out_start[u]; e < g->out_start[u + 1]; e++)
		{
			int			x = g->out_node[e];

			if (x == s)
			{
				end = u;
				break;
			}
			if (parent[x] < 0 && comp[x] == comp[s])
			{
				parent[x] = u;
				queue[tail++] = x;
			}
		}
	}
	/* end is set: s's component is cyclic, so some node reached from s has an edge to s. */
	for (int x = end; x != s; x = parent[x])
		k++;
	cycle[0] = s;
	cycle[k] = s;
	for (int x = end, i = k - 1; x != s; x = parent[x], i--)
		cycle[i] = x;
	*len = k + 1;
	g->alloc.release(block, g->alloc.arg);
	return GRAPH_OK;
}

int
graph_stale(const Graph *g, const int *changed, int nchanged, unsigned char *stale, int *bad)
{
	const int	n = g->n;
	int		   *queue;
	int			head = 0,
				tail = 0;

	if (nchanged < 0 || (nchanged > 0 && changed == NULL))
		return GRAPH_EINVAL;
	for (int i = 0; i < nchanged; i++)
		if (changed[i] < 0 || changed[i] >= n)
		{
			if (bad)
				*bad = i;
			return GRAPH_ERANGE;
		}
	if ((queue = ints(&g->alloc, (size_t) n)) == NULL)
		return GRAPH_NOMEM;
	memset(stale, 0, (size_t) n);
	for (int i = 0; i < nchanged; i++)
		if (!stale[changed[i]])
		{
			stale[changed[i]] = 1;
			queue[tail++] = changed[i];
		}
	while (head < tail)
	{
		int			b = queue[head++];

		for (int e = g->in_start[b]; e < g->in_start[b + 1]; e++)
		{
			int			a = g->in_node[e];

			if (!stale[a])
			{
				stale[a] = 1;
				queue[tail++] = a;
			}
		}
	}
	g->alloc.release(queue, g->alloc.arg);
	return GRAPH_OK;
}
