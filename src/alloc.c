/*
 * alloc.c: the SQL side of the allocator (core/alloc.c), one round per cycle.
 *
 * alloc_assign() reads the allocation problem from the dispatch._sched_* views
 * (online nodes, their labels, free resource units, what running jobs hold and
 * until when, the pending jobs with their needs, label constraints, time limits
 * and last reservations, in submission order), solves it with alloc_run() and
 * writes the answer back with one dispatch._assign_many() call for the jobs it
 * placed (which also NOTIFYs their nodes) and one dispatch._set_reasons() call
 * for the jobs that wait (reasons and reservations).  Only the views and those
 * two functions cross the boundary, so the algorithm stays plain C with its own
 * unit tests.  Times cross it as whole seconds of the Unix epoch.
 *
 * Everything is palloc'd in the current memory context (SPI's, inside the
 * scheduler's transaction); strings read from SPI stay valid until SPI_finish.
 */
#include "pg_dispatch.h"
#include "worker.h"

#include "alloc.h"
#include "catalog/pg_type.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

/* A node name and its index in AllocProblem.nodes. */
typedef struct NodeEntry
{
	char		name[NAMEDATALEN * 2];	/* hash key: node names are short */
	int			index;
} NodeEntry;

/* A resource id and its index in AllocProblem.units. */
typedef struct UnitEntry
{
	int64		resource_id;	/* hash key */
	int			index;
} UnitEntry;

static int	node_index(HTAB *nodes, const char *name);
static HTAB *load_nodes(AllocProblem *p, char ***node_names);
static void load_labels(AllocProblem *p, HTAB *nodes);
static HTAB *load_units(AllocProblem *p, HTAB *nodes);
static void load_holds(AllocProblem *p, HTAB *units);
static void load_jobs(AllocProblem *p, HTAB *nodes);
static void format_local(int64_t t, int64_t now, char *buf, size_t len);
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

/*
 * Reads the free resource units (of nodes in nodes, or of no node) into p; returns
 * the resource-id-to-index table.
 */
static HTAB *
load_units(AllocProblem *p, HTAB *nodes)
{
	SPITupleTable *t = worker_select("SELECT resource_id, type, node, free, capacity"
									 "  FROM dispatch._sched_free", 0, NULL, NULL);
	AllocUnit  *units = palloc(sizeof(AllocUnit) * (t->numvals + 1));
	HASHCTL		ctl = {0};
	HTAB	   *index;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(UnitEntry);
	ctl.hcxt = CurrentMemoryContext;
	index = hash_create("pg_dispatch units", Max(t->numvals, 16), &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

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
		((UnitEntry *) hash_search(index, &u->resource_id, HASH_ENTER, NULL))->index = p->nunits;
		p->nunits++;
	}
	p->units = units;
	return index;
}

/* Reads what running jobs hold of the units in units, and until when, into p. */
static void
load_holds(AllocProblem *p, HTAB *units)
{
	SPITupleTable *t = worker_select("SELECT resource_id, amount, ends FROM dispatch._sched_holds",
									 0, NULL, NULL);
	AllocHold  *holds = palloc(sizeof(AllocHold) * (t->numvals + 1));

	for (uint64 i = 0; i < t->numvals; i++)
	{
		int64		id = worker_int8_at(t, i, 1);
		UnitEntry  *e = hash_search(units, &id, HASH_FIND, NULL);
		bool		isnull;

		if (e == NULL)
			continue;			/* a unit of a node that is not online */
		holds[p->nholds].unit = e->index;
		holds[p->nholds].amount = worker_int8_at(t, i, 2);
		holds[p->nholds].end = worker_int8_at(t, i, 3);
		(void) SPI_getbinval(t->vals[i], t->tupdesc, 3, &isnull);
		if (isnull)
			holds[p->nholds].end = ALLOC_NEVER;
		p->nholds++;
	}
	p->holds = holds;
}

/*
 * Reads the pending jobs, with their needs, constraints, time limits and last
 * reservations (on nodes in nodes), in submission order into p.
 */
static void
load_jobs(AllocProblem *p, HTAB *nodes)
{
	SPITupleTable *t;
	AllocJob   *jobs;

	t = worker_select("SELECT job_id, joblist_id, needs, constraints, time_limit, expected_start,"
					  "       expected_node FROM dispatch._sched_jobs", 0, NULL, NULL);
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
		j->limit = worker_int8_at(t, i, 5);
		j->reserved_node = node_index(nodes, worker_text_at(t, i, 7));
		j->reserved = j->reserved_node >= 0;
		j->reserved_start = worker_int8_at(t, i, 6);
		(void) SPI_getbinval(t->vals[i], t->tupdesc, 6, &isnull);
		if (isnull)
			j->reserved_start = ALLOC_NEVER;
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
 * and one dispatch._set_reasons() call (reasons, reservations) for the others;
 * returns the number assigned.
 */
static int
write_result(const AllocProblem *p, const AllocOutput *out, char **node_names)
{
	Oid			assign_types[5] = {INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID};
	Oid			reason_types[4] = {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	TEXTARRAYOID};
	Datum	   *placed = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *nodes = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *waiting = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *reasons = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *starts = palloc(sizeof(Datum) * (p->njobs + 1));
	bool	   *starts_null = palloc(sizeof(bool) * (p->njobs + 1));
	Datum	   *reserved_on = palloc(sizeof(Datum) * (p->njobs + 1));
	bool	   *reserved_null = palloc(sizeof(bool) * (p->njobs + 1));
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
			reasons[nwaiting] = CStringGetTextDatum(r->reason);
			starts_null[nwaiting] = r->reserved_node < 0 || r->expected_start == ALLOC_NEVER;
			starts[nwaiting] = starts_null[nwaiting] ? (Datum) 0 :
				TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) r->expected_start));
			reserved_null[nwaiting] = r->reserved_node < 0;
			reserved_on[nwaiting] = reserved_null[nwaiting] ? (Datum) 0 :
				CStringGetTextDatum(node_names[r->reserved_node]);
			nwaiting++;
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
		Datum		args[4];
		int			dims[1] = {nwaiting};
		int			lbs[1] = {1};

		args[0] = int8_array(waiting, nwaiting);
		args[1] = text_array(reasons, nwaiting);
		args[2] = PointerGetDatum(construct_md_array(starts, starts_null, 1, dims, lbs,
													 TIMESTAMPTZOID, 8, true,
													 TYPALIGN_DOUBLE));
		args[3] = PointerGetDatum(construct_md_array(reserved_on, reserved_null, 1, dims, lbs,
													 TEXTOID, -1, false, TYPALIGN_INT));
		(void) worker_select("SELECT dispatch._set_reasons($1, $2, $3, $4)", 4, reason_types,
							 args);
	}
	return assigned;
}

/* Formats t in the server's time zone for a reason: "12:04", with the date a day or more ahead. */
static void
format_local(int64_t t, int64_t now, char *buf, size_t len)
{
	pg_time_t	pt = (pg_time_t) t;
	struct pg_tm *tm = pg_localtime(&pt, session_timezone);

	if (tm == NULL || pg_strftime(buf, len, t - now < 86400 ? "%H:%M" : "%Y-%m-%d %H:%M", tm) == 0)
		strlcpy(buf, "?", len);
}

/* Places what it can of the pending jobs and records why the others wait; returns how many it assigned. */
int
alloc_assign(void)
{
	AllocProblem p = {0};
	AllocOutput out;
	char	  **node_names;
	HTAB	   *nodes;
	HTAB	   *units;
	int			assigned;

	nodes = load_nodes(&p, &node_names);
	load_labels(&p, nodes);
	units = load_units(&p, nodes);
	load_jobs(&p, nodes);
	if (p.njobs == 0)
		return 0;
	load_holds(&p, units);
	p.now = (int64_t) timestamptz_to_time_t(GetCurrentTimestamp());
	p.max_reservations = dispatch_max_reservations;
	p.format_time = format_local;
	if (alloc_run(&p, &out) < 0)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	/* An ERROR here ends the process, which frees out with everything else. */
	assigned = write_result(&p, &out, node_names);
	alloc_output_free(&out);
	return assigned;
}
