/*
 * alloc.c: the SQL side of the allocator (core/alloc.c), one round per cycle.
 *
 * alloc_assign() reads the allocation problem from the dispatch._sched_* views
 * (online nodes, their labels, free resource units, the pending jobs with their
 * needs and label constraints, in submission order), solves it with alloc_run()
 * and writes the answer back with one dispatch._assign_many() call for the jobs
 * it placed (which also NOTIFYs their nodes) and one dispatch._set_reasons()
 * call for the jobs that wait.  Only the views and those two functions cross
 * the boundary, so the algorithm stays plain C with its own unit tests.
 *
 * Everything is palloc'd in the current memory context (SPI's, inside the
 * scheduler's transaction); strings read from SPI stay valid until SPI_finish.
 */
#include "pg_dispatch.h"
#include "worker.h"

#include "alloc.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"

/* A node name and its index in AllocProblem.nodes. */
typedef struct NodeEntry
{
	char		name[NAMEDATALEN * 2];	/* hash key: node names are short */
	int			index;
} NodeEntry;

static int	node_index(HTAB *nodes, const char *name);
static HTAB *load_nodes(AllocProblem *p, char ***node_names);
static void load_labels(AllocProblem *p, HTAB *nodes);
static void load_units(AllocProblem *p, HTAB *nodes);
static void load_jobs(AllocProblem *p);
static int	split_pairs(Datum arr, bool last, AllocConstraint **pairs);
static Datum int8_array(Datum *values, int n);
static Datum text_array(Datum *values, int n);
static int	write_result(const AllocProblem *p, const AllocOutput *out, char **node_names);

/* Returns the index of a node by name, or -1 when it is not online. */
static int
node_index(HTAB *nodes, const char *name)
{
	NodeEntry  *e;
	char		key[NAMEDATALEN * 2] = {0};

	if (name == NULL)
		return -1;
	strlcpy(key, name, sizeof(key));
	e = hash_search(nodes, key, HASH_FIND, NULL);
	return e ? e->index : -1;
}

/* Reads the online nodes into p and *node_names; returns the name-to-index table. */
static HTAB *
load_nodes(AllocProblem *p, char ***node_names)
{
	SPITupleTable *t = worker_select("SELECT node FROM dispatch._sched_nodes", 0, NULL, NULL);
	HASHCTL		ctl = {0};
	HTAB	   *nodes;

	ctl.keysize = NAMEDATALEN * 2;
	ctl.entrysize = sizeof(NodeEntry);
	ctl.hcxt = CurrentMemoryContext;
	nodes = hash_create("pg_dispatch nodes", Max(t->numvals, 16), &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	*node_names = palloc(sizeof(char *) * (t->numvals + 1));
	for (uint64 i = 0; i < t->numvals; i++)
	{
		NodeEntry  *e;
		char		key[NAMEDATALEN * 2] = {0};

		(*node_names)[i] = worker_text_at(t, i, 1);
		strlcpy(key, (*node_names)[i], sizeof(key));
		e = hash_search(nodes, key, HASH_ENTER, NULL);
		e->index = (int) i;
	}
	p->nodes = (const char *const *) *node_names;
	p->nnodes = (int) t->numvals;
	return nodes;
}

/* Reads the labels of the nodes in nodes into p. */
static void
load_labels(AllocProblem *p, HTAB *nodes)
{
	SPITupleTable *t = worker_select("SELECT node, key, value FROM dispatch._sched_node_labels",
									 0, NULL, NULL);
	AllocLabel *labels = palloc(sizeof(AllocLabel) * (t->numvals + 1));

	for (uint64 i = 0; i < t->numvals; i++)
	{
		int			n = node_index(nodes, worker_text_at(t, i, 1));

		if (n < 0)
			continue;			/* went online after we read the nodes */
		labels[p->nlabels].node = n;
		labels[p->nlabels].key = worker_text_at(t, i, 2);
		labels[p->nlabels].value = worker_text_at(t, i, 3);
		p->nlabels++;
	}
	p->labels = labels;
}

/* Reads the free resource units (of nodes in nodes, or of no node) into p. */
static void
load_units(AllocProblem *p, HTAB *nodes)
{
	SPITupleTable *t = worker_select("SELECT resource_id, type, node, free, capacity"
									 "  FROM dispatch._sched_free", 0, NULL, NULL);
	AllocUnit  *units = palloc(sizeof(AllocUnit) * (t->numvals + 1));

	for (uint64 i = 0; i < t->numvals; i++)
	{
		char	   *node = worker_text_at(t, i, 3);
		AllocUnit  *u = &units[p->nunits];

		u->node = node_index(nodes, node);
		if (node != NULL && u->node < 0)
			continue;
		u->resource_id = worker_int8_at(t, i, 1);
		u->type = worker_text_at(t, i, 2);
		u->free = worker_int8_at(t, i, 4);
		u->capacity = worker_int8_at(t, i, 5);
		p->nunits++;
	}
	p->units = units;
}

/* Reads the pending jobs, with their needs and constraints, in submission order into p. */
static void
load_jobs(AllocProblem *p)
{
	SPITupleTable *t;
	AllocJob   *jobs;

	t = worker_select("SELECT job_id, joblist_id, needs, constraints FROM dispatch._sched_jobs",
					  0, NULL, NULL);
	jobs = palloc0(sizeof(AllocJob) * (t->numvals + 1));
	for (uint64 i = 0; i < t->numvals; i++)
	{
		AllocJob   *j = &jobs[i];
		bool		isnull;
		Datum		arr;
		AllocConstraint *pairs;

		j->job_id = worker_int8_at(t, i, 1);
		j->joblist_id = worker_int8_at(t, i, 2);
		arr = SPI_getbinval(t->vals[i], t->tupdesc, 3, &isnull);
		if (!isnull)
		{
			/* "type=count": a type may hold '=', a count not */
			AllocNeed  *needs;

			j->nneeds = split_pairs(arr, true, &pairs);
			j->needs = needs = palloc(sizeof(AllocNeed) * j->nneeds);
			for (int k = 0; k < j->nneeds; k++)
				needs[k] = (AllocNeed) {pairs[k].key, pg_strtoint64(pairs[k].value)};
		}
		arr = SPI_getbinval(t->vals[i], t->tupdesc, 4, &isnull);
		if (!isnull)
		{
			j->nconstraints = split_pairs(arr, false, &pairs);
			j->constraints = pairs;
		}
	}
	p->jobs = jobs;
	p->njobs = (int) t->numvals;
}

/*
 * Splits each "key=value" element of the text[] arr at its last '=' (last) or its
 * first, in place, into *pairs; returns how many.
 */
static int
split_pairs(Datum arr, bool last, AllocConstraint **pairs)
{
	Datum	   *elems;
	int			nelems;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, NULL, &nelems);
	*pairs = palloc(sizeof(AllocConstraint) * nelems);
	for (int k = 0; k < nelems; k++)
	{
		char	   *s = TextDatumGetCString(elems[k]);
		char	   *eq = last ? strrchr(s, '=') : strchr(s, '=');

		*eq = '\0';
		(*pairs)[k].key = s;
		(*pairs)[k].value = eq + 1;
	}
	return nelems;
}

/* Returns an int8[] of n values. */
static Datum
int8_array(Datum *values, int n)
{
	return PointerGetDatum(construct_array(values, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

/* Returns a text[] of n values. */
static Datum
text_array(Datum *values, int n)
{
	return PointerGetDatum(construct_array(values, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Writes the cycle's result with one dispatch._assign_many() call for the placed jobs
 * and one dispatch._set_reasons() call for the others; returns the number assigned.
 */
static int
write_result(const AllocProblem *p, const AllocOutput *out, char **node_names)
{
	Oid			assign_types[5] = {INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID};
	Oid			reason_types[2] = {INT8ARRAYOID, TEXTARRAYOID};
	Datum	   *placed = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *nodes = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *waiting = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *reasons = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *take_jobs = palloc(sizeof(Datum) * (out->ntakes + 1));
	Datum	   *take_units = palloc(sizeof(Datum) * (out->ntakes + 1));
	Datum	   *take_amounts = palloc(sizeof(Datum) * (out->ntakes + 1));
	int			nplaced = 0, nwaiting = 0, ntakes = 0;
	int			assigned = 0;

	for (int j = 0; j < p->njobs; j++)
	{
		const AllocResult *r = &out->results[j];
		Datum		job = Int64GetDatum(p->jobs[j].job_id);

		if (r->node < 0)
		{
			waiting[nwaiting] = job;
			reasons[nwaiting++] = CStringGetTextDatum(r->reason);
			continue;
		}
		placed[nplaced] = job;
		nodes[nplaced++] = CStringGetTextDatum(node_names[r->node]);
		for (int k = 0; k < r->ntakes; k++)
		{
			const AllocTake *tk = &out->takes[r->first_take + k];

			take_jobs[ntakes] = job;
			take_units[ntakes] = Int64GetDatum(p->units[tk->unit].resource_id);
			take_amounts[ntakes++] = Int64GetDatum(tk->amount);
		}
	}
	if (nplaced > 0)
	{
		Datum		args[5];
		bool		isnull;
		SPITupleTable *t;

		args[0] = int8_array(placed, nplaced);
		args[1] = text_array(nodes, nplaced);
		args[2] = int8_array(take_jobs, ntakes);
		args[3] = int8_array(take_units, ntakes);
		args[4] = int8_array(take_amounts, ntakes);
		t = worker_select("SELECT dispatch._assign_many($1, $2, $3, $4, $5)", 5,
						  assign_types, args);
		assigned = DatumGetInt32(SPI_getbinval(t->vals[0], t->tupdesc, 1, &isnull));
	}
	if (nwaiting > 0)
	{
		Datum		args[2];

		args[0] = int8_array(waiting, nwaiting);
		args[1] = text_array(reasons, nwaiting);
		(void) worker_select("SELECT dispatch._set_reasons($1, $2)", 2, reason_types, args);
	}
	return assigned;
}

/* Places what it can of the pending jobs and records why the others wait; returns how many it assigned. */
int
alloc_assign(void)
{
	AllocProblem p = {0};
	AllocOutput out;
	char	  **node_names;
	HTAB	   *nodes;
	int			assigned;

	nodes = load_nodes(&p, &node_names);
	load_labels(&p, nodes);
	load_units(&p, nodes);
	load_jobs(&p);
	if (p.njobs == 0)
		return 0;
	if (alloc_run(&p, &out) < 0)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	/* An ERROR here ends the process, which frees out with everything else. */
	assigned = write_result(&p, &out, node_names);
	alloc_output_free(&out);
	return assigned;
}
