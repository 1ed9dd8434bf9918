/*
 * flowgraph.c: the SQL face of the graph module (core/graph.c), for the
 * dependencies between a joblist's jobs and, later, between artefacts.
 *
 * A graph comes in as two int arrays of one length, edge i going from froms[i]
 * to tos[i] ("froms[i] runs after tos[i]"), over the nodes 0 .. n-1; a NULL
 * array stands for no edges, so a joblist without dependencies needs no case
 * of its own.  dispatch._dag_cycle(froms, tos, n) returns one cycle, which spec
 * validation refuses by name, or NULL; dispatch._dag_order(froms, tos, n)
 * returns the nodes dependency-first.  For the artefacts' rules, whose graph may
 * have cycles, dispatch._graph_components(froms, tos, n) numbers each node's
 * strongly connected component dependency-first, and dispatch._graph_stale(froms,
 * tos, n, changed) lists the nodes that depend on the changed ones.  The answers
 * depend on the arrays alone.
 * Malformed input gets an error that says what is wrong; memory comes from the
 * current memory context (core_palloc), so an error anywhere releases it.  Each
 * pass of the core is linear in the graph (the order's heap adds a logarithm),
 * so interrupts are checked between the passes, not inside them.
 */
#include "pg_dispatch.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "graph.h"

/* Most nodes of a graph: its order, or a cycle through all of them, fits an array. */
#define MAX_NODES ((int) MaxArraySize - 1)

/* An edge array has at most MaxArraySize elements: every graph that passes fits the core. */
StaticAssertDecl(MaxArraySize <= (Size) GRAPH_MAX, "edge arrays fit a graph");

PG_FUNCTION_INFO_V1(_dag_cycle);
PG_FUNCTION_INFO_V1(_dag_order);
PG_FUNCTION_INFO_V1(_graph_components);
PG_FUNCTION_INFO_V1(_graph_stale);

static void no_memory(const char *what);
static int	edge_array(FunctionCallInfo fcinfo, int argno, const char *name,
					   const int32 **ends);
static Graph *read_graph(FunctionCallInfo fcinfo);
static ArrayType *new_int_array(int n, int32 **data);

/* Raises out of memory, naming what could not be allocated. */
static void
no_memory(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("Failed to allocate %s.", what)));
}

/*
 * Points *ends at the elements of int[] argument argno and returns their number
 * (a NULL argument has none); refuses more than one dimension and nulls.
 */
static int
edge_array(FunctionCallInfo fcinfo, int argno, const char *name, const int32 **ends)
{
	ArrayType  *a;

	*ends = NULL;
	if (PG_ARGISNULL(argno))
		return 0;
	a = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_ELEMTYPE(a) != INT4OID)
		elog(ERROR, "array %s is not an integer array", name);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("array %s must be one-dimensional", name),
				 errdetail("It has %d dimensions.", ARR_NDIM(a))));
	if (array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("array %s must not contain nulls", name)));
	if (ARR_NDIM(a) == 0)
		return 0;
	/* ARR_DATA_PTR, without its sign-compare warning; a null bitmap may be there, unused */
	*ends = (const int32 *) ((char *) a + (ARR_HASNULL(a) ? (size_t) a->dataoffset :
										   ARR_OVERHEAD_NONULLS(1)));
	return ARR_DIMS(a)[0];
}

/* Returns the graph of arguments (froms, tos, n), or raises what is wrong with them. */
static Graph *
read_graph(FunctionCallInfo fcinfo)
{
	const int32 *froms,
			   *tos;
	int			nfroms = edge_array(fcinfo, 0, "froms", &froms);
	int			ntos = edge_array(fcinfo, 1, "tos", &tos);
	GraphAlloc	alloc = {core_palloc, core_pfree, NULL};
	Graph	   *g;
	int			n,
				bad = -1,
				rc;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node count must not be null")));
	n = PG_GETARG_INT32(2);
	if (nfroms != ntos)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("edge arrays froms and tos must have the same length"),
				 errdetail("froms has %d elements and tos has %d.", nfroms, ntos),
				 errhint("Edge i goes from froms[i] to tos[i]; a NULL array has no elements.")));
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node count must not be negative"),
				 errdetail("The node count is %d.", n)));
	/* Checked before anything is allocated: the answer must fit an array (a cycle repeats a node). */
	if (n > MAX_NODES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("graph has too many nodes"),
				 errdetail("A graph has at most %d nodes; this one has %d.", MAX_NODES, n)));

	rc = graph_new(n, nfroms, froms, tos, &alloc, &g, &bad);
	if (rc == GRAPH_ERANGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("edge %d -> %d names a node outside the graph", froms[bad], tos[bad]),
				 n > 0 ?
				 errdetail("Nodes are numbered 0 to %d; this is edge %d of %d (counting from 1).",
						   n - 1, bad + 1, nfroms) :
				 errdetail("The graph has no nodes; this is edge %d of %d (counting from 1).",
						   bad + 1, nfroms)));
	if (rc == GRAPH_NOMEM)
		no_memory("the edge lists of the graph");
	if (rc != GRAPH_OK)
		elog(ERROR, "graph_new refused a checked graph: %d", rc);
	CHECK_FOR_INTERRUPTS();
	return g;
}

/* Returns a one-dimensional int[] of n (at most MAX_NODES + 1) elements, lower bound 1, for *data to fill. */
static ArrayType *
new_int_array(int n, int32 **data)
{
	ArrayType  *a;
	Size		size;

	Assert(n <= MAX_NODES + 1);
	if (n == 0)
	{
		*data = NULL;
		return construct_empty_array(INT4OID);
	}
	size = ARR_OVERHEAD_NONULLS(1) + (Size) n * sizeof(int32);
	a = palloc0(size);
	SET_VARSIZE(a, size);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = INT4OID;
	ARR_DIMS(a)[0] = n;
	ARR_LBOUND(a)[0] = 1;
	*data = (int32 *) ((char *) a + ARR_OVERHEAD_NONULLS(1));
	return a;
}

/*
 * _dag_cycle(froms int[], tos int[], n int) -> int[]: a shortest cycle through
 * the smallest node on a cycle, start repeated at the end, or NULL when none.
 */
Datum
_dag_cycle(PG_FUNCTION_ARGS)
{
	Graph	   *g = read_graph(fcinfo);
	int			n = graph_nodes(g);
	int		   *cycle = palloc_extended(((Size) n + 1) * sizeof(int), MCXT_ALLOC_HUGE);
	int32	   *data;
	ArrayType  *a;
	int			len;

	if (graph_cycle(g, cycle, &len) != GRAPH_OK)
		no_memory("the cycle search of the graph");
	graph_free(g);
	if (len == 0)
		PG_RETURN_NULL();
	a = new_int_array(len, &data);
	memcpy(data, cycle, (Size) len * sizeof(int32));
	PG_RETURN_ARRAYTYPE_P(a);
}

/*
 * _dag_order(froms int[], tos int[], n int) -> int[]: the n nodes dependency-first,
 * the nodes of a cycle together in ascending order.
 */
Datum
_dag_order(PG_FUNCTION_ARGS)
{
	Graph	   *g = read_graph(fcinfo);
	int32	   *data;
	ArrayType  *a = new_int_array(graph_nodes(g), &data);

	if (data != NULL && graph_order(g, data) != GRAPH_OK)
		no_memory("the components of the graph");
	graph_free(g);
	PG_RETURN_ARRAYTYPE_P(a);
}

/*
 * _graph_components(froms int[], tos int[], n int) -> int[]: element v + 1 is the
 * strongly connected component of node v, components numbered from 0
 * dependency-first (for every edge a -> b, b's number is at most a's).
 */
Datum
_graph_components(PG_FUNCTION_ARGS)
{
	Graph	   *g = read_graph(fcinfo);
	int32	   *data;
	ArrayType  *a = new_int_array(graph_nodes(g), &data);
	int			ncomp;

	if (data != NULL && graph_components(g, data, &ncomp) != GRAPH_OK)
		no_memory("the components of the graph");
	graph_free(g);
	PG_RETURN_ARRAYTYPE_P(a);
}

/*
 * _graph_stale(froms int[], tos int[], n int, changed int[]) -> int[]: the nodes
 * that are changed or depend on one, directly or not, in ascending order.
 */
Datum
_graph_stale(PG_FUNCTION_ARGS)
{
	Graph	   *g = read_graph(fcinfo);
	int			n = graph_nodes(g);
	const int32 *changed;
	int			nchanged = edge_array(fcinfo, 3, "changed", &changed);
	unsigned char *stale = palloc_extended((Size) n + 1, MCXT_ALLOC_HUGE);
	int32	   *data;
	ArrayType  *a;
	int			bad = -1,
				count = 0,
				rc;

	rc = graph_stale(g, changed, nchanged, stale, &bad);
	if (rc == GRAPH_ERANGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("changed node %d is outside the graph", changed[bad]),
				 errdetail("Nodes are numbered 0 to %d.", n - 1)));
	if (rc != GRAPH_OK)
		no_memory("the stale set of the graph");
	graph_free(g);
	for (int v = 0; v < n; v++)
		count += stale[v];
	a = new_int_array(count, &data);
	for (int v = 0, k = 0; v < n; v++)
		if (stale[v])
			data[k++] = v;
	PG_RETURN_ARRAYTYPE_P(a);
}
