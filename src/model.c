/*
 * model.c: the scheduler's model of the tables, loaded once and then kept up to date.
 *
 * The scheduler places jobs with a core AllocSession (core/alloc_session.h): the
 * online nodes with their labels and units, the pool, what assigned and running
 * jobs hold, and the runnable queue.  model_load() fills a new session from the
 * _sched_* views (at start, after a failed cycle, on SIGHUP, for the model check).
 * Afterwards the session follows the change queue (dispatch._sched_changes,
 * sql/src/33_sched_changes.sql): model_changes_read() takes the rows committed
 * since the last cycle, and model_apply() reloads only what they name, with one
 * statement per kind (= ANY of the named ids): the named nodes (online or not,
 * their labels, their units), the pool, the named jobs and the current pending
 * jobs of the named joblists (runnable or dropped, through the same predicate as
 * the full load), and the holds of the named jobs and of the jobs on the named
 * nodes.  Reloading is idempotent: a row read twice (a change committed while a
 * cycle ran is both seen by its queries and left in the queue) costs a second
 * reload and nothing else.
 *
 * Strings and arrays are palloc'd in the current memory context (SPI's, inside the
 * cycle's transaction); the session copies what it is given.
 */
#include "pg_dispatch.h"
#include "worker.h"
#include "model.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"

/* A node's labels and units while they are read (hash entry by name). */
typedef struct NodeRows
{
	char		name[NAMEDATALEN * 2];	/* hash key: node names are short */
	bool		online;
	AllocConstraint *labels;
	int			nlabels,
				labels_room;
	AllocSessionUnit *units;
	int			nunits,
				units_room;
} NodeRows;

static HTAB *node_table(void);
static NodeRows *node_rows(HTAB *nodes, const char *name, bool create);
static void load_nodes(AllocSession *s, const char *filter, int nargs, Datum *args,
					   bool with_pool);
static void load_holds(AllocSession *s, const char *filter, int nargs, Oid *types, Datum *args);
static void reload_holds(AllocSession *s, const DatumList *jobs, const DatumList *nodes);
static void reload_jobs(AllocSession *s, const DatumList *jobs, const DatumList *joblists);
static void read_job(SPITupleTable *t, uint64 i, AllocSessionJob *j);
static int	split_pairs(Datum arr, bool last, AllocConstraint **pairs);

/* Raises out of memory when a session call returned -1. */
void
model_check_memory(int rc)
{
	if (rc < 0)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"),
						errdetail("The scheduler's model could not grow.")));
}

/* Returns an int8[] of n values. */
Datum
model_int8_array(Datum *values, int n)
{
	return PointerGetDatum(construct_array(values, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

/* Returns a text[] of n values. */
Datum
model_text_array(Datum *values, int n)
{
	return PointerGetDatum(construct_array(values, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Appends d to l, growing it. */
void
model_add(DatumList *l, Datum d)
{
	if (l->n == l->room)
	{
		l->room = Max(16, l->room * 2);
		l->v = l->v ? repalloc(l->v, sizeof(Datum) * l->room) : palloc(sizeof(Datum) * l->room);
	}
	l->v[l->n++] = d;
}

/*
 * Reads the change queue into c (which starts zeroed): with take, the rows are
 * deleted (one DELETE ... RETURNING), else only read (the model check).  Rows a
 * transaction commits meanwhile stay for the next cycle.  With keep_others (a take
 * later in a cycle, after its housekeeping), the job and joblist rows this
 * transaction did not write are read but put back for the next cycle, in the same
 * statement: an end committed after the housekeeping looked at its joblist still
 * gets that joblist looked at (specs/sched_late_end.spec), and the commit that
 * wrote it has woken the scheduler for it.
 */
void
model_changes_read(ModelChanges *c, bool take, bool keep_others)
{
	const char *sql = keep_others ?
		"WITH taken AS (DELETE FROM dispatch._sched_changes"
		"               RETURNING kind, id, joblist_id, node,"
		"                         xmin = pg_catalog.pg_current_xact_id()::xid AS own),"
		"     again AS (INSERT INTO dispatch._sched_changes (kind, id, joblist_id, node)"
		"               SELECT kind, id, joblist_id, node FROM taken"
		"                WHERE NOT own AND kind IN ('job', 'joblist'))"
		" SELECT kind, id, joblist_id, node FROM taken" :
		take ? "DELETE FROM dispatch._sched_changes RETURNING kind, id, joblist_id, node" :
		"SELECT kind, id, joblist_id, node FROM dispatch._sched_changes";
	int			rc = SPI_execute(sql, false, 0);

	if (rc != (take && !keep_others ? SPI_OK_DELETE_RETURNING : SPI_OK_SELECT))
		elog(ERROR, "pg_dispatch could not read the change queue");
	for (uint64 i = 0; i < SPI_tuptable->numvals; i++)
	{
		char	   *kind = worker_text_at(SPI_tuptable, i, 1);
		Datum		id = Int64GetDatum(worker_int8_at(SPI_tuptable, i, 2));

		if (strcmp(kind, "job") == 0)
		{
			model_add(&c->jobs, id);
			model_add(&c->stage_joblists, Int64GetDatum(worker_int8_at(SPI_tuptable, i, 3)));
		}
		else if (strcmp(kind, "joblist") == 0)
		{
			model_add(&c->joblists, id);
			model_add(&c->stage_joblists, id);
		}
		else if (strcmp(kind, "node") == 0)
			model_add(&c->nodes, CStringGetTextDatum(worker_text_at(SPI_tuptable, i, 4)));
		else
			c->pool = true;
	}
}

/* Returns an empty table of NodeRows by node name. */
static HTAB *
node_table(void)
{
	HASHCTL		ctl = {0};

	ctl.keysize = NAMEDATALEN * 2;
	ctl.entrysize = sizeof(NodeRows);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("pg_dispatch model nodes", 64, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* Returns the rows of node name, entering it when create, else NULL when unknown. */
static NodeRows *
node_rows(HTAB *nodes, const char *name, bool create)
{
	char		key[NAMEDATALEN * 2] = {0};
	bool		found;
	NodeRows   *r;

	strlcpy(key, name, sizeof(key));
	r = hash_search(nodes, key, create ? HASH_ENTER : HASH_FIND, &found);
	if (r != NULL && create && !found)
		memset((char *) r + sizeof(r->name), 0, sizeof(NodeRows) - sizeof(r->name));
	return r;
}

/*
 * Reads the nodes of the _sched_* views that match filter (a WHERE clause on node
 * with nargs text[] arguments, or "" for all) into s: each online one is set with
 * its labels and units, each named one that is not online is dropped; with_pool
 * (the filter lets the pool's units through), the pool is set too.  Rows of a node that went online after the first
 * query are left for its change row.
 */
static void
load_nodes(AllocSession *s, const char *filter, int nargs, Datum *args, bool with_pool)
{
	Oid			types[1] = {TEXTARRAYOID};
	HTAB	   *nodes = node_table();
	HASH_SEQ_STATUS seq;
	NodeRows   *r;
	SPITupleTable *t;
	AllocSessionUnit *pool = NULL;
	int			npool = 0, pool_room = 0;

	t = worker_select(psprintf("SELECT node FROM dispatch._sched_nodes %s", filter),
					  nargs, types, args);
	for (uint64 i = 0; i < t->numvals; i++)
		node_rows(nodes, worker_text_at(t, i, 1), true)->online = true;

	t = worker_select(psprintf("SELECT node, key, value FROM dispatch._sched_node_labels %s",
							   filter), nargs, types, args);
	for (uint64 i = 0; i < t->numvals; i++)
	{
		if ((r = node_rows(nodes, worker_text_at(t, i, 1), false)) == NULL)
			continue;
		if (r->nlabels == r->labels_room)
		{
			r->labels_room = Max(8, r->labels_room * 2);
			r->labels = r->labels ? repalloc(r->labels, sizeof(AllocConstraint) * r->labels_room)
				: palloc(sizeof(AllocConstraint) * r->labels_room);
		}
		r->labels[r->nlabels++] = (AllocConstraint) {worker_text_at(t, i, 2),
		worker_text_at(t, i, 3)};
	}

	t = worker_select(psprintf("SELECT resource_id, type, node, capacity"
							   "  FROM dispatch._sched_units %s", filter), nargs, types, args);
	for (uint64 i = 0; i < t->numvals; i++)
	{
		char	   *node = worker_text_at(t, i, 3);
		AllocSessionUnit u = {worker_int8_at(t, i, 1), worker_text_at(t, i, 2),
		worker_int8_at(t, i, 4)};
		AllocSessionUnit **units;
		int		   *n, *room;

		if (node == NULL)
		{
			units = &pool;
			n = &npool;
			room = &pool_room;
		}
		else if ((r = node_rows(nodes, node, false)) != NULL)
		{
			units = &r->units;
			n = &r->nunits;
			room = &r->units_room;
		}
		else
			continue;
		if (*n == *room)
		{
			*room = Max(8, *room * 2);
			*units = *units ? repalloc(*units, sizeof(AllocSessionUnit) * *room)
				: palloc(sizeof(AllocSessionUnit) * *room);
		}
		(*units)[(*n)++] = u;
	}

	/* the named nodes that are not online */
	if (nargs > 0)
	{
		Datum	   *names;
		int			nnames;

		deconstruct_array(DatumGetArrayTypeP(args[0]), TEXTOID, -1, false, TYPALIGN_INT,
						  &names, NULL, &nnames);
		for (int i = 0; i < nnames; i++)
		{
			char	   *name = TextDatumGetCString(names[i]);

			if (node_rows(nodes, name, false) == NULL)
				alloc_session_drop_node(s, name);
		}
	}
	hash_seq_init(&seq, nodes);
	while ((r = hash_seq_search(&seq)) != NULL)
		model_check_memory(alloc_session_set_node(s, r->name, r->labels, r->nlabels,
												  r->units, r->nunits));
	if (with_pool)
		model_check_memory(alloc_session_set_pool(s, pool, npool));
}

/*
 * Reads the holds of _sched_holds matching filter (a WHERE clause with nargs
 * arguments, or "" for all) into s, one set_holds() per job.
 */
static void
load_holds(AllocSession *s, const char *filter, int nargs, Oid *types, Datum *args)
{
	SPITupleTable *t = worker_select(psprintf("SELECT job_id, resource_id, amount, ends"
											  "  FROM dispatch._sched_holds %s ORDER BY job_id",
											  filter), nargs, types, args);
	AllocSessionHold *holds = palloc(sizeof(AllocSessionHold) * (t->numvals + 1));
	uint64		first = 0;

	for (uint64 i = 0; i < t->numvals; i++)
	{
		bool		isnull;

		holds[i].resource_id = worker_int8_at(t, i, 2);
		holds[i].amount = worker_int8_at(t, i, 3);
		holds[i].end = worker_int8_at(t, i, 4);
		(void) SPI_getbinval(t->vals[i], t->tupdesc, 4, &isnull);
		if (isnull)
			holds[i].end = ALLOC_NEVER;
		if (i + 1 == t->numvals || worker_int8_at(t, i + 1, 1) != worker_int8_at(t, i, 1))
		{
			model_check_memory(alloc_session_set_holds(s, worker_int8_at(t, i, 1),
													   &holds[first], (int) (i + 1 - first)));
			first = i + 1;
		}
	}
}

/*
 * Reads row i of t (job_id, joblist_id, needs, constraints, time_limit,
 * expected_start, expected_node, reason) into j.
 */
static void
read_job(SPITupleTable *t, uint64 i, AllocSessionJob *j)
{
	bool		isnull;
	Datum		arr;
	AllocConstraint *pairs;

	memset(j, 0, sizeof(*j));
	j->job_id = worker_int8_at(t, i, 1);
	j->joblist_id = worker_int8_at(t, i, 2);
	arr = SPI_getbinval(t->vals[i], t->tupdesc, 3, &isnull);
	if (!isnull)
	{
		/* "type=count": a type may hold '=', a count not */
		AllocNeed  *needs;

		j->nneeds = split_pairs(arr, true, &pairs);
		j->needs = needs = palloc(sizeof(AllocNeed) * (j->nneeds + 1));
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
	j->reserved_start = worker_int8_at(t, i, 6);
	(void) SPI_getbinval(t->vals[i], t->tupdesc, 6, &isnull);
	if (isnull)
		j->reserved_start = ALLOC_NEVER;
	j->reserved_node = worker_text_at(t, i, 7);
	j->reason = worker_text_at(t, i, 8);
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
	*pairs = palloc(sizeof(AllocConstraint) * (nelems + 1));
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

/* Returns a new session loaded whole from the tables. */
AllocSession *
model_load(void)
{
	AllocSession *s = alloc_session_new();
	SPITupleTable *t;

	if (s == NULL)
		model_check_memory(-1);
	PG_TRY();
	{
		load_nodes(s, "", 0, NULL, true);
		load_holds(s, "", 0, NULL, NULL);
		t = worker_select("SELECT job_id, joblist_id, needs, constraints, time_limit,"
						  "       expected_start, expected_node, reason"
						  "  FROM dispatch._sched_jobs", 0, NULL, NULL);
		for (uint64 i = 0; i < t->numvals; i++)
		{
			AllocSessionJob j;

			read_job(t, i, &j);
			model_check_memory(alloc_session_set_job(s, &j));
		}
	}
	PG_CATCH();
	{
		alloc_session_free(s);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return s;
}

/*
 * Reloads jobs (and the current pending jobs of joblists) into s: each is dropped
 * from the queue, then set again when it is runnable.
 */
static void
reload_jobs(AllocSession *s, const DatumList *jobs, const DatumList *joblists)
{
	Oid			types[2] = {INT8ARRAYOID, INT8ARRAYOID};
	Datum		args[2];
	SPITupleTable *t;

	if (jobs->n == 0 && joblists->n == 0)
		return;
	for (int i = 0; i < jobs->n; i++)
		alloc_session_drop_job(s, DatumGetInt64(jobs->v[i]));
	args[0] = model_int8_array(jobs->v, jobs->n);
	args[1] = model_int8_array(joblists->v, joblists->n);
	t = worker_select("SELECT job_id, joblist_id, needs, constraints, time_limit,"
					  "       expected_start, expected_node, reason, runnable"
					  "  FROM dispatch._sched_jobs_changed($1, $2)", 2, types, args);
	for (uint64 i = 0; i < t->numvals; i++)
	{
		bool		isnull;
		AllocSessionJob j;

		read_job(t, i, &j);
		if (DatumGetBool(SPI_getbinval(t->vals[i], t->tupdesc, 9, &isnull)))
			model_check_memory(alloc_session_set_job(s, &j));
		else
			alloc_session_drop_job(s, j.job_id);
	}
}

/*
 * Reloads what jobs hold, and holds of the jobs on nodes, into s; a job of jobs
 * that holds nothing any more is set to hold nothing.
 */
static void
reload_holds(AllocSession *s, const DatumList *jobs, const DatumList *nodes)
{
	Oid			types[2] = {INT8ARRAYOID, TEXTARRAYOID};
	Datum		args[2];

	if (jobs->n == 0 && nodes->n == 0)
		return;
	for (int i = 0; i < jobs->n; i++)
		model_check_memory(alloc_session_set_holds(s, DatumGetInt64(jobs->v[i]), NULL, 0));
	args[0] = model_int8_array(jobs->v, jobs->n);
	args[1] = model_text_array(nodes->v, nodes->n);
	load_holds(s, "WHERE job_id = ANY ($1) OR node = ANY ($2)", 2, types, args);
}

/* Reloads jobs (their rows and holds) into s: the ones a cycle could not write. */
void
model_reload_jobs(AllocSession *s, const DatumList *jobs)
{
	DatumList	none = {0};

	reload_holds(s, jobs, &none);
	reload_jobs(s, jobs, &none);
}

/* Changes s by what c names: nodes, the pool, jobs, joblists and holds. */
void
model_apply(AllocSession *s, const ModelChanges *c)
{
	if (c->nodes.n > 0)
	{
		Datum		nodes = model_text_array(c->nodes.v, c->nodes.n);

		load_nodes(s, "WHERE node = ANY ($1)", 1, &nodes, false);
	}
	if (c->pool)
		load_nodes(s, "WHERE node IS NULL", 0, NULL, true);
	reload_holds(s, &c->jobs, &c->nodes);
	reload_jobs(s, &c->jobs, &c->joblists);
}
