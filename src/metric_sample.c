/*
 * metric_sample.c: dispatch._sample_flat(sample, max_name), the metrics of one
 * agent sample as parallel arrays of names and double precision values.
 *
 * The server stores a sample as the values of its numeric leaves in the order of
 * a layout, so every sample has to be flattened: object keys join the name with
 * "."; an array element is named by its mount, sensor, dev, iface, name or index
 * (else its position) and those keys are not metrics themselves; the load
 * averages become load.1, load.5 and load.15; a plugin's metric is
 * plugin.<name>{k="v",...} with its labels in key order; t, top_cpu, top_rss and
 * problems are not metrics.  This used to be recursive SQL and cost most of the
 * time of agent_metrics(); here it is one walk over the jsonb.  The names come
 * out sorted (byte order, a repeated name keeps its place), with the SHA-256 of
 * the list: the key under which dispatch.metric_layouts finds the layout
 * without looking the names up one by one.  Validation happens before, in
 * dispatch._check_sample (38_agent_input.sql); long_name says whether a name is
 * longer than max_name bytes, so the caller raises that error with its path.
 */
#include "pg_dispatch.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"

/* The metrics found so far. */
typedef struct Flat
{
	char	  **names;
	double	   *vals;
	int			n;
	int			cap;
} Flat;

/* A label of a plugin metric. */
typedef struct Label
{
	const char *key;
	int			keylen;
	const char *val;
	int			vallen;
} Label;

/* Keys that name an array element, in the order they are tried. */
static const char *const element_keys[] = {"mount", "sensor", "dev", "iface", "name", "index"};

/* Keys of a sample that are not flattened as they are. */
static const char *const special_keys[] = {"t", "load", "plugins", "top_cpu", "top_rss", "problems"};

static Flat *sort_flat;			/* what cmp_metric() sorts */

PG_FUNCTION_INFO_V1(_sample_flat);

static void add_metric(Flat *f, const char *name, double v);
static double numeric_value(JsonbValue *v);
static bool key_in(const JsonbValue *key, const char *const *keys, int nkeys);
static char *scalar_text(JsonbValue *v);
static void flatten(Flat *f, const char *prefix, JsonbValue *v, bool drop_element_keys);
static void flatten_sample(Flat *f, JsonbContainer *sample);
static void add_plugin(Flat *f, JsonbContainer *p);
static int	cmp_label(const void *a, const void *b);
static int	cmp_metric(const void *a, const void *b);

/* Appends metric name = v. */
static void
add_metric(Flat *f, const char *name, double v)
{
	if (f->n == f->cap)
	{
		f->cap *= 2;
		f->names = repalloc(f->names, sizeof(char *) * f->cap);
		f->vals = repalloc(f->vals, sizeof(double) * f->cap);
	}
	f->names[f->n] = pstrdup(name);
	f->vals[f->n++] = v;
}

/* The double nearest to JSON number v (an error when out of its range). */
static double
numeric_value(JsonbValue *v)
{
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

/* Whether object key is one of keys[0 .. nkeys). */
static bool
key_in(const JsonbValue *key, const char *const *keys, int nkeys)
{
	for (int i = 0; i < nkeys; i++)
		if (strlen(keys[i]) == (size_t) key->val.string.len &&
			memcmp(keys[i], key->val.string.val, key->val.string.len) == 0)
			return true;
	return false;
}

/* What ->> gives for v: its text, NULL for a JSON null. */
static char *
scalar_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
	return NULL;
}

/*
 * Adds the numeric leaves of v under prefix; when drop_element_keys, v is an
 * array element and its naming keys are skipped.
 */
static void
flatten(Flat *f, const char *prefix, JsonbValue *v, bool drop_element_keys)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key,
				val;
	int			pos = 0;

	if (v->type == jbvNumeric)
		add_metric(f, prefix, numeric_value(v));
	if (v->type != jbvBinary)
		return;					/* strings, booleans and nulls are not metrics */
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *name;

			tok = JsonbIteratorNext(&it, &val, true);
			if (drop_element_keys && key_in(&key, element_keys, lengthof(element_keys)))
				continue;
			name = psprintf("%s.%.*s", prefix, key.val.string.len, key.val.string.val);
			flatten(f, name, &val, false);
			pfree(name);
		}
		else if (tok == WJB_ELEM)
		{
			char	   *id = NULL,
					   *name;
			bool		elem_object = key.type == jbvBinary && JsonContainerIsObject(key.val.binary.data);

			for (int i = 0; elem_object && id == NULL && i < (int) lengthof(element_keys); i++)
			{
				JsonbValue	found;

				if (getKeyJsonValueFromContainer(key.val.binary.data, element_keys[i],
												 strlen(element_keys[i]), &found) != NULL)
					id = scalar_text(&found);
			}
			name = id != NULL ? psprintf("%s.%s", prefix, id) : psprintf("%s.%d", prefix, pos);
			flatten(f, name, &key, elem_object);
			pfree(name);
			pos++;
		}
	}
}

/* Orders labels by key in the database's collation (as ORDER BY key did). */
static int
cmp_label(const void *a, const void *b)
{
	const Label *x = a,
			   *y = b;

	return varstr_cmp(x->key, x->keylen, y->key, y->keylen, DEFAULT_COLLATION_OID);
}

/* Adds plugin metric p (an object with a name, labels and a value) when its value is a number. */
static void
add_plugin(Flat *f, JsonbContainer *p)
{
	JsonbValue	value,
				name,
				labels;
	StringInfoData buf;

	if (getKeyJsonValueFromContainer(p, "value", 5, &value) == NULL || value.type != jbvNumeric ||
		getKeyJsonValueFromContainer(p, "name", 4, &name) == NULL || name.type != jbvString)
		return;
	initStringInfo(&buf);
	appendStringInfo(&buf, "plugin.%.*s", name.val.string.len, name.val.string.val);
	if (getKeyJsonValueFromContainer(p, "labels", 6, &labels) != NULL && labels.type == jbvBinary &&
		JsonContainerIsObject(labels.val.binary.data) && JsonContainerSize(labels.val.binary.data) > 0)
	{
		int			n = JsonContainerSize(labels.val.binary.data),
					i = 0;
		Label	   *l = palloc(sizeof(Label) * n);
		JsonbIterator *it = JsonbIteratorInit(labels.val.binary.data);
		JsonbValue	k,
					v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			JsonbIteratorNext(&it, &v, true);
			if (v.type != jbvString || i >= n)	/* _check_sample allows string labels only */
				continue;
			l[i++] = (Label) {k.val.string.val, k.val.string.len, v.val.string.val, v.val.string.len};
		}
		qsort(l, i, sizeof(Label), cmp_label);
		for (int j = 0; j < i; j++)
			appendStringInfo(&buf, "%c%.*s=\"%.*s\"", j == 0 ? '{' : ',', l[j].keylen, l[j].key,
							 l[j].vallen, l[j].val);
		if (i > 0)
			appendStringInfoChar(&buf, '}');
		pfree(l);
	}
	add_metric(f, buf.data, numeric_value(&value));
	pfree(buf.data);
}

/* Adds every metric of sample object sample. */
static void
flatten_sample(Flat *f, JsonbContainer *sample)
{
	JsonbIterator *it = JsonbIteratorInit(sample);
	JsonbIteratorToken tok;
	JsonbValue	key,
				val;

	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		char	   *name;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		if (!key_in(&key, special_keys, lengthof(special_keys)))
		{
			name = pnstrdup(key.val.string.val, key.val.string.len);
			flatten(f, name, &val, false);
			pfree(name);
		}
		else if (key.val.string.len == 4 && memcmp(key.val.string.val, "load", 4) == 0 &&
				 val.type == jbvBinary && JsonContainerIsArray(val.val.binary.data))
		{
			static const char *const load_names[] = {"load.1", "load.5", "load.15"};

			for (int i = 0; i < 3; i++)
			{
				JsonbValue *e = getIthJsonbValueFromContainer(val.val.binary.data, i);

				if (e != NULL && e->type == jbvNumeric)
					add_metric(f, load_names[i], numeric_value(e));
			}
		}
		else if (key.val.string.len == 7 && memcmp(key.val.string.val, "plugins", 7) == 0 &&
				 val.type == jbvBinary && JsonContainerIsArray(val.val.binary.data))
		{
			int			n = JsonContainerSize(val.val.binary.data);

			for (int i = 0; i < n; i++)
			{
				JsonbValue *p = getIthJsonbValueFromContainer(val.val.binary.data, i);

				if (p->type == jbvBinary && JsonContainerIsObject(p->val.binary.data))
					add_plugin(f, p->val.binary.data);
			}
		}
	}
}

/* Orders metric indexes by name, then by where they were found. */
static int
cmp_metric(const void *a, const void *b)
{
	int			x = *(const int *) a,
				y = *(const int *) b,
				c = strcmp(sort_flat->names[x], sort_flat->names[y]);

	return c != 0 ? c : (x > y) - (x < y);
}

/*
 * dispatch._sample_flat(sample jsonb, max_name int, OUT names text[], OUT vals
 * float8[], OUT digest bytea, OUT long_name boolean): the metrics of a sample
 * sorted by name, the SHA-256 of the names, and whether one is longer than
 * max_name bytes.
 */
Datum
_sample_flat(PG_FUNCTION_ARGS)
{
	Jsonb	   *sample = PG_GETARG_JSONB_P(0);
	int			max_name = PG_GETARG_INT32(1);
	Flat		f = {palloc(sizeof(char *) * 128), palloc(sizeof(double) * 128), 0, 128};
	int		   *order;
	Datum	   *names,
			   *vals;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	bytea	   *d;
	pg_cryptohash_ctx *ctx;
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	bool		long_name = false;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "_sample_flat must return a record");
	if (!JB_ROOT_IS_OBJECT(sample))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("sample must be a JSON object")));
	flatten_sample(&f, &sample->root);
	order = palloc(sizeof(int) * (f.n + 1));
	for (int i = 0; i < f.n; i++)
		order[i] = i;
	sort_flat = &f;
	qsort(order, f.n, sizeof(int), cmp_metric);
	names = palloc(sizeof(Datum) * (f.n + 1));
	vals = palloc(sizeof(Datum) * (f.n + 1));
	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize SHA-256: %s", pg_cryptohash_error(ctx));
	for (int i = 0; i < f.n; i++)
	{
		const char *nm = f.names[order[i]];
		size_t		len = strlen(nm);

		long_name |= len > (size_t) max_name;
		names[i] = PointerGetDatum(cstring_to_text_with_len(nm, (int) len));
		vals[i] = Float8GetDatum(f.vals[order[i]]);
		if (pg_cryptohash_update(ctx, (const uint8 *) nm, len + 1) < 0)	/* the NUL separates */
			elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	}
	if (pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	d = palloc(VARHDRSZ + sizeof(digest));
	SET_VARSIZE(d, VARHDRSZ + sizeof(digest));
	memcpy(VARDATA(d), digest, sizeof(digest));
	values[0] = PointerGetDatum(construct_array(names, f.n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(vals, f.n, FLOAT8OID, sizeof(float8),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(d);
	values[3] = BoolGetDatum(long_name);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
