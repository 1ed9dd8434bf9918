/*
 * metric_pack.c: the SQL face of the metric pack codec in core/mpack.c.
 *
 * dispatch._pack(at, layout_id, vals ORDER BY at) is an aggregate that packs one
 * node's samples into a bytea; dispatch._unpack(pack) gives them back as rows,
 * and dispatch._unpack_metric(pack, layouts, positions) only the value of one
 * metric, for the layouts that have it.  The monitor packs closed hours
 * (80_metrics.sql); every reader of samples goes through these functions, so
 * packed and plain samples look alike.  A pack that does not decode is reported
 * as data corruption: only the monitor writes packs.
 *
 * Rollups are packed the same way: dispatch._pack_rollup(at, layout_id, n, sum,
 * min, max ORDER BY at) packs one node's rollup rows, each as one row of 1 + 3k
 * values (the count, then the k sums, minima and maxima), so that every
 * statistic of every metric is a column of its own; dispatch._unpack_rollup()
 * and dispatch._unpack_rollup_metric() read them back (the latter with avg =
 * sum / n, the very division avg() makes).
 */
#include "pg_dispatch.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "mpack.h"

/* The aggregate's state: the pack being written. */
typedef struct PackState
{
	MpackWriter w;
	uint8	   *buf;
	size_t		cap;
} PackState;

PG_FUNCTION_INFO_V1(_pack_add);
PG_FUNCTION_INFO_V1(_pack_final);
PG_FUNCTION_INFO_V1(_unpack);
PG_FUNCTION_INFO_V1(_unpack_metric);
PG_FUNCTION_INFO_V1(_pack_rollup_add);
PG_FUNCTION_INFO_V1(_unpack_rollup);
PG_FUNCTION_INFO_V1(_unpack_rollup_metric);

/* What a pack's rows are: samples, or rollup rows of a count and 3 statistics per value. */
typedef enum PackKind
{
	PACK_SAMPLES,
	PACK_ROLLUPS
} PackKind;

static void *array_data(ArrayType *a);
static int	float8_elems(ArrayType *a, double **vals);
static PackState *pack_state(FunctionCallInfo fcinfo, int nargs, const char *what);
static PackState *pack_append(PackState *st, TimestampTz t, int32 layout, int nvals,
							  const double *vals, const char *what);
static Datum float8_array(const double *vals, int n);
static void unpack_rows(FunctionCallInfo fcinfo, bytea *pack, ArrayType *layouts,
						ArrayType *positions, PackKind kind);

/* The elements of array a, which has no NULLs (ARR_DATA_PTR without its sign-compare warning). */
static void *
array_data(ArrayType *a)
{
	return (char *) a + ARR_OVERHEAD_NONULLS(ARR_NDIM(a));
}

/* Points *vals at the elements of float8[] a (no NULLs, one dimension); returns their number. */
static int
float8_elems(ArrayType *a, double **vals)
{
	if (ARR_NDIM(a) > 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("sample values must be a one-dimensional double precision array without nulls")));
	*vals = (double *) array_data(a);
	return ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
}

/*
 * The state of a pack aggregate called with nargs arguments after the state,
 * none of them NULL (what names its rows in the error): created in the
 * aggregate's context on the first call.
 */
static PackState *
pack_state(FunctionCallInfo fcinfo, int nargs, const char *what)
{
	MemoryContext aggcxt;
	PackState  *st;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "pack aggregate step called outside an aggregate");
	for (int i = 1; i <= nargs; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("a packed %s needs an instant, a layout and values", what)));
	if (!PG_ARGISNULL(0))
		return (PackState *) PG_GETARG_POINTER(0);
	st = MemoryContextAllocZero(aggcxt, sizeof(PackState));
	mpack_writer_init(&st->w);
	st->cap = MPACK_HEADER + 64 * 1024;
	st->buf = MemoryContextAlloc(aggcxt, st->cap);
	return st;
}

/* Appends the row (t, layout, vals) to the pack in st, growing its buffer; returns st. */
static PackState *
pack_append(PackState *st, TimestampTz t, int32 layout, int nvals, const double *vals,
			const char *what)
{
	while (mpack_writer_size(&st->w) + mpack_sample_bound(nvals) > st->cap)
	{
		st->cap *= 2;
		st->buf = repalloc(st->buf, st->cap);
	}
	if (mpack_put(&st->w, st->buf, t, layout, nvals, vals) < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("cannot pack %ss out of time order or more than %d in one pack",
							   what, MPACK_MAX_SAMPLES)));
	return st;
}

/* Aggregate step of dispatch._pack(): appends the sample (at, layout_id, vals). */
Datum
_pack_add(PG_FUNCTION_ARGS)
{
	PackState  *st = pack_state(fcinfo, 3, "sample");
	double	   *vals;
	int			nvals = float8_elems(PG_GETARG_ARRAYTYPE_P(3), &vals);

	if (nvals > MPACK_MAX_VALUES)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a packed sample has at most %d values", MPACK_MAX_VALUES)));
	PG_RETURN_POINTER(pack_append(st, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_INT32(2), nvals, vals,
								  "sample"));
}

/*
 * Aggregate step of dispatch._pack_rollup(): appends the rollup row (at,
 * layout_id, n, sum, min, max) as the row n, sum..., min..., max....
 */
Datum
_pack_rollup_add(PG_FUNCTION_ARGS)
{
	PackState  *st = pack_state(fcinfo, 6, "rollup row");
	double	   *stat[3];
	double	   *row;
	int			k = float8_elems(PG_GETARG_ARRAYTYPE_P(4), &stat[0]);

	if (float8_elems(PG_GETARG_ARRAYTYPE_P(5), &stat[1]) != k ||
		float8_elems(PG_GETARG_ARRAYTYPE_P(6), &stat[2]) != k)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("a rollup row needs as many minima and maxima as sums")));
	if (k > MPACK_MAX_VALUES)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a packed rollup row has at most %d values", MPACK_MAX_VALUES)));
	if (PG_GETARG_INT32(3) < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("a rollup row counts at least one sample")));
	row = palloc(sizeof(double) * (1 + 3 * k));
	row[0] = PG_GETARG_INT32(3);
	for (int j = 0; j < 3; j++)
		memcpy(row + 1 + j * k, stat[j], sizeof(double) * k);
	st = pack_append(st, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_INT32(2), 1 + 3 * k, row,
					 "rollup row");
	pfree(row);
	PG_RETURN_POINTER(st);
}

/* Aggregate end: the finished pack as a bytea (NULL for no samples). */
Datum
_pack_final(PG_FUNCTION_ARGS)
{
	PackState  *st = PG_ARGISNULL(0) ? NULL : (PackState *) PG_GETARG_POINTER(0);
	bytea	   *out;
	size_t		len;

	if (st == NULL)
		PG_RETURN_NULL();
	len = mpack_finish(&st->w, st->buf);
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), st->buf, len);
	PG_RETURN_BYTEA_P(out);
}

/* vals[0 .. n) as a float8[] */
static Datum
float8_array(const double *vals, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * (n + 1));
	ArrayType  *a;

	for (int i = 0; i < n; i++)
		elems[i] = Float8GetDatum(vals[i]);
	a = construct_array(elems, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	pfree(elems);
	return PointerGetDatum(a);
}

/*
 * Fills the SRF result of fcinfo from pack, whose rows are of kind.  When
 * layouts is NULL: every row, as (at, layout_id, vals) for samples, (at,
 * layout_id, n, sum, min, max) for rollups.  Else only the rows whose layout is
 * layouts[i], with element positions[i] (1-based) of their values: (at, value)
 * for samples, (at, avg, min, max) for rollups.
 */
static void
unpack_rows(FunctionCallInfo fcinfo, bytea *pack, ArrayType *layouts, ArrayType *positions,
			PackKind kind)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MpackReader *r = palloc(sizeof(MpackReader));
	double	   *vals = palloc(sizeof(double) * MPACK_MAX_COLUMNS);
	int32	   *lay = NULL,
			   *pos = NULL;
	int			nlay = 0,
				rc;
	int64		t;
	int32		layout;
	int			nvals;

	InitMaterializedSRF(fcinfo, 0);
	if (layouts != NULL)
	{
		if (ARR_NDIM(layouts) > 1 || ARR_HASNULL(layouts) || ARR_HASNULL(positions) ||
			ArrayGetNItems(ARR_NDIM(layouts), ARR_DIMS(layouts)) !=
			ArrayGetNItems(ARR_NDIM(positions), ARR_DIMS(positions)))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("layouts and positions must be arrays of the same length without nulls")));
		nlay = ArrayGetNItems(ARR_NDIM(layouts), ARR_DIMS(layouts));
		lay = (int32 *) array_data(layouts);
		pos = (int32 *) array_data(positions);
	}
	if (mpack_reader_init(r, (const uint8 *) VARDATA_ANY(pack), VARSIZE_ANY_EXHDR(pack)) < 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("metric pack is damaged")));
	while ((rc = mpack_get(r, &t, &layout, &nvals, vals)) == 1)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		int			k = nvals;	/* values per statistic */

		if (kind == PACK_ROLLUPS)
		{
			if (nvals % 3 != 1 || !(vals[0] >= 1 && vals[0] <= PG_INT32_MAX))
				ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
								errmsg("metric pack is damaged")));
			k = nvals / 3;
		}
		values[0] = TimestampTzGetDatum(t);
		if (layouts == NULL)
		{
			values[1] = Int32GetDatum(layout);
			if (kind == PACK_SAMPLES)
				values[2] = float8_array(vals, nvals);
			else
			{
				values[2] = Int32GetDatum((int32) vals[0]);
				for (int j = 0; j < 3; j++)
					values[3 + j] = float8_array(vals + 1 + j * k, k);
			}
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			for (int j = kind == PACK_SAMPLES ? 2 : 3; j < (kind == PACK_SAMPLES ? 3 : 6); j++)
				pfree(DatumGetPointer(values[j]));
			continue;
		}
		for (int i = 0; i < nlay; i++)
		{
			int			p = pos[i];

			if (lay[i] != layout || p < 1 || p > k)
				continue;
			if (kind == PACK_SAMPLES)
				values[1] = Float8GetDatum(vals[p - 1]);
			else
			{
				values[1] = Float8GetDatum(vals[p] / vals[0]);
				values[2] = Float8GetDatum(vals[k + p]);
				values[3] = Float8GetDatum(vals[2 * k + p]);
			}
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			break;
		}
	}
	if (rc < 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("metric pack is damaged")));
	pfree(vals);
	pfree(r);
}

/* dispatch._unpack(pack): the samples of pack as (at, layout_id, vals). */
Datum
_unpack(PG_FUNCTION_ARGS)
{
	unpack_rows(fcinfo, PG_GETARG_BYTEA_PP(0), NULL, NULL, PACK_SAMPLES);
	return (Datum) 0;
}

/*
 * dispatch._unpack_metric(pack, layouts, positions): (at, value) of one metric,
 * element positions[i] of the samples whose layout is layouts[i].
 */
Datum
_unpack_metric(PG_FUNCTION_ARGS)
{
	unpack_rows(fcinfo, PG_GETARG_BYTEA_PP(0), PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_ARRAYTYPE_P(2),
				PACK_SAMPLES);
	return (Datum) 0;
}

/* dispatch._unpack_rollup(pack): the rollup rows of pack as (at, layout_id, n, sum, min, max). */
Datum
_unpack_rollup(PG_FUNCTION_ARGS)
{
	unpack_rows(fcinfo, PG_GETARG_BYTEA_PP(0), NULL, NULL, PACK_ROLLUPS);
	return (Datum) 0;
}

/*
 * dispatch._unpack_rollup_metric(pack, layouts, positions): (at, avg, min, max)
 * of one metric, element positions[i] of the rollup rows whose layout is layouts[i].
 */
Datum
_unpack_rollup_metric(PG_FUNCTION_ARGS)
{
	unpack_rows(fcinfo, PG_GETARG_BYTEA_PP(0), PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_ARRAYTYPE_P(2),
				PACK_ROLLUPS);
	return (Datum) 0;
}
