/*
 * alloc.c: one scheduling round on the scheduler's model (model.c).
 *
 * alloc_assign() asks the session to place what it can (core/alloc_session.c:
 * FIFO order with backfill, the same answer alloc_run() gives for the same
 * problem) and writes the answer back with one dispatch._assign_many() call for
 * the jobs it placed (which also NOTIFYs their nodes) and one dispatch._set_reasons()
 * call for the waiting jobs whose reason or reservation changed since it last said.
 * _assign_many() tells which jobs it really assigned: a job it skipped (cancelled,
 * or one of its units withdrawn, since the tables were read, or held by another
 * transaction's row lock) is reloaded into the session at once, since no change row
 * may ever come for it; so is a waiting job whose reason _set_reasons() could not
 * write because another transaction held it.  Neither call waits for another
 * transaction.  Times cross the boundary as whole seconds of the Unix epoch.
 *
 * Everything is palloc'd in the current memory context (SPI's, inside the
 * scheduler's transaction).
 */
#include "pg_dispatch.h"
#include "worker.h"
#include "model.h"

#include "catalog/pg_type.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

static void format_local(int64_t t, int64_t now, char *buf, size_t len);
static int	compare_ids(const void *a, const void *b);
static int	write_placed(const AllocSessionOutput *out, DatumList *skipped);
static void write_waits(const AllocSessionOutput *out, DatumList *skipped);

/* qsort/bsearch order of int8 Datums. */
static int
compare_ids(const void *a, const void *b)
{
	int64		x = DatumGetInt64(*(const Datum *) a);
	int64		y = DatumGetInt64(*(const Datum *) b);

	return x < y ? -1 : x > y;
}

/*
 * Assigns the jobs out placed with one dispatch._assign_many() call; adds those it
 * skipped to skipped; returns how many it assigned.
 */
static int
write_placed(const AllocSessionOutput *out, DatumList *skipped)
{
	Oid			types[5] = {INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID};
	Datum	   *placed = palloc(sizeof(Datum) * (out->nplaced + 1));
	Datum	   *nodes = palloc(sizeof(Datum) * (out->nplaced + 1));
	Datum	   *take_jobs = palloc(sizeof(Datum) * (out->ntakes + 1));
	Datum	   *take_units = palloc(sizeof(Datum) * (out->ntakes + 1));
	Datum	   *take_amounts = palloc(sizeof(Datum) * (out->ntakes + 1));
	int			ntakes = 0;
	Datum		args[5];
	bool		isnull;
	SPITupleTable *t;
	Datum	   *assigned;
	int			nassigned;

	for (int j = 0; j < out->nplaced; j++)
	{
		const AllocPlaced *p = &out->placed[j];

		placed[j] = Int64GetDatum(p->job_id);
		nodes[j] = CStringGetTextDatum(p->node);
		for (int k = 0; k < p->ntakes; k++)
		{
			const AllocPlacedTake *tk = &out->takes[p->first_take + k];

			take_jobs[ntakes] = placed[j];
			take_units[ntakes] = Int64GetDatum(tk->resource_id);
			take_amounts[ntakes++] = Int64GetDatum(tk->amount);
		}
	}
	args[0] = model_int8_array(placed, out->nplaced);
	args[1] = model_text_array(nodes, out->nplaced);
	args[2] = model_int8_array(take_jobs, ntakes);
	args[3] = model_int8_array(take_units, ntakes);
	args[4] = model_int8_array(take_amounts, ntakes);
	t = worker_select("SELECT dispatch._assign_many($1, $2, $3, $4, $5)", 5, types, args);
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(t->vals[0], t->tupdesc, 1, &isnull)),
					  INT8OID, 8, true, TYPALIGN_DOUBLE, &assigned, NULL, &nassigned);

	qsort(assigned, nassigned, sizeof(Datum), compare_ids);
	for (int j = 0; j < out->nplaced; j++)
		if (bsearch(&placed[j], assigned, nassigned, sizeof(Datum), compare_ids) == NULL)
			model_add(skipped, placed[j]);
	return nassigned;
}

/*
 * Records the changed waits of out (reasons, reservations) with one
 * dispatch._set_reasons() call; adds the jobs it could not write to skipped.
 */
static void
write_waits(const AllocSessionOutput *out, DatumList *skipped)
{
	Oid			types[4] = {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};
	int			n = out->nwaits;
	Datum	   *jobs = palloc(sizeof(Datum) * (n + 1));
	Datum	   *reasons = palloc(sizeof(Datum) * (n + 1));
	Datum	   *starts = palloc(sizeof(Datum) * (n + 1));
	bool	   *starts_null = palloc(sizeof(bool) * (n + 1));
	Datum	   *reserved_on = palloc(sizeof(Datum) * (n + 1));
	bool	   *reserved_null = palloc(sizeof(bool) * (n + 1));
	Datum		args[4];
	int			dims[1] = {n};
	int			lbs[1] = {1};
	bool		isnull;
	SPITupleTable *t;
	Datum	   *left;
	int			nleft;

	for (int i = 0; i < n; i++)
	{
		const AllocWaitChange *w = &out->waits[i];

		jobs[i] = Int64GetDatum(w->job_id);
		reasons[i] = CStringGetTextDatum(w->reason);
		starts_null[i] = w->reserved_node == NULL || w->expected_start == ALLOC_NEVER;
		starts[i] = starts_null[i] ? (Datum) 0 :
			TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) w->expected_start));
		reserved_null[i] = w->reserved_node == NULL;
		reserved_on[i] = reserved_null[i] ? (Datum) 0 : CStringGetTextDatum(w->reserved_node);
	}
	args[0] = model_int8_array(jobs, n);
	args[1] = model_text_array(reasons, n);
	args[2] = PointerGetDatum(construct_md_array(starts, starts_null, 1, dims, lbs,
												 TIMESTAMPTZOID, 8, true, TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_md_array(reserved_on, reserved_null, 1, dims, lbs,
												 TEXTOID, -1, false, TYPALIGN_INT));
	t = worker_select("SELECT dispatch._set_reasons($1, $2, $3, $4)", 4, types, args);
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(t->vals[0], t->tupdesc, 1, &isnull)),
					  INT8OID, 8, true, TYPALIGN_DOUBLE, &left, NULL, &nleft);
	for (int i = 0; i < nleft; i++)
		model_add(skipped, left[i]);
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

/*
 * Places what it can of the session's queue and records why the changed others
 * wait; returns how many it assigned, and in *nskipped how many jobs it left for
 * the next cycle because another transaction held them (or they changed meanwhile).
 */
int
alloc_assign(AllocSession *s, int *nskipped)
{
	AllocSessionOutput out;
	int			assigned = 0;
	DatumList	skipped = {0};

	model_check_memory(alloc_session_run(s, (int64_t) timestamptz_to_time_t(GetCurrentTimestamp()),
										 dispatch_max_reservations, dispatch_max_job_test,
										 format_local, &out));
	if (out.nwaits > 0)
		write_waits(&out, &skipped);
	if (out.nplaced > 0)
		assigned = write_placed(&out, &skipped);
	model_reload_jobs(s, &skipped);	/* out is the session's: reload only now */
	*nskipped = skipped.n;
	return assigned;
}
