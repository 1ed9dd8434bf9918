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

static void *array_data(ArrayType *a);
static int	float8_elems(ArrayType *a, double **vals);
static void unpack_rows(FunctionCallInfo fcinfo, bytea *pack, ArrayType *layouts,
						ArrayType *positions);

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

/* Aggregate step: appends the sample (at, layout_id, vals) to the pack in state. */
Datum
_pack_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	PackState  *st;
	double	   *vals;
	int			nvals;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "_pack_add called outside an aggregate");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("a packed sample needs an instant, a layout and values")));
	st = PG_ARGISNULL(0) ? NULL : (PackState *) PG_GETARG_POINTER(0);
	if (st == NULL)
	{
		st = MemoryContextAllocZero(aggcxt, sizeof(PackState));
		mpack_writer_init(&st->w);
		st->cap = MPACK_HEADER + 64 * 1024;
		st->buf = MemoryContextAlloc(aggcxt, st->cap);
	}
	nvals = float8_elems(PG_GETARG_ARRAYTYPE_P(3), &vals);
	if (nvals > MPACK_MAX_VALUES)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a packed sample has at most %d values", MPACK_MAX_VALUES)));
	while (mpack_writer_size(&st->w) + mpack_sample_bound(nvals) > st->cap)
	{
		st->cap *= 2;
		st->buf = repalloc(st->buf, st->cap);
	}
	if (mpack_put(&st->w, st->buf, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_INT32(2), nvals, vals) < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("cannot pack samples out of time order or more than %d in one pack",
							   MPACK_MAX_SAMPLES)));
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

/*
 * Fills the SRF result of fcinfo from pack: every sample as (at, layout_id,
 * vals) when layouts is NULL, else (at, value) of the samples whose layout is
 * layouts[i], value being element positions[i] (1-based) of its values.
 */
static void
unpack_rows(FunctionCallInfo fcinfo, bytea *pack, ArrayType *layouts, ArrayType *positions)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MpackReader *r = palloc(sizeof(MpackReader));
	double	   *vals = palloc(sizeof(double) * MPACK_MAX_VALUES);
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
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = TimestampTzGetDatum(t);
		if (layouts == NULL)
		{
			Datum	   *elems = palloc(sizeof(Datum) * (nvals + 1));

			for (int i = 0; i < nvals; i++)
				elems[i] = Float8GetDatum(vals[i]);
			values[1] = Int32GetDatum(layout);
			values[2] = PointerGetDatum(construct_array(elems, nvals, FLOAT8OID, sizeof(float8),
														FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			pfree(DatumGetPointer(values[2]));
			pfree(elems);
			continue;
		}
		for (int i = 0; i < nlay; i++)
		{
			if (lay[i] != layout || pos[i] < 1 || pos[i] > nvals)
				continue;
			values[1] = Float8GetDatum(vals[pos[i] - 1]);
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
	unpack_rows(fcinfo, PG_GETARG_BYTEA_PP(0), NULL, NULL);
	return (Datum) 0;
}

/*
 * dispatch._unpack_metric(pack, layouts, positions): (at, value) of one metric,
 * element positions[i] of the samples whose layout is layouts[i].
 */
Datum
_unpack_metric(PG_FUNCTION_ARGS)
{
	unpack_rows(fcinfo, PG_GETARG_BYTEA_PP(0), PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_ARRAYTYPE_P(2));
	return (Datum) 0;
}
