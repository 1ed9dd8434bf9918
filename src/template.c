/*
 * template.c: dispatch.render_template(template, replacements), the SQL face of the
 * template renderer in core/template.c.
 *
 * The replacement map is a JSON object whose keys are the patterns and whose
 * string values replace them.  The map is checked here (an object, no empty
 * pattern, only string values) with errors that name the JSON path.
 * dispatch._render_template(template, replacements, path) is the same C
 * function with the map's path in the spec, so spec validation checks a job's
 * maps by rendering an empty template.  Memory comes from the current memory
 * context, so an error anywhere releases it; core_palloc() and core_pfree() hand
 * it to the core (flowgraph.c uses them too).
 */
#include "pg_dispatch.h"

#include <ctype.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "template.h"

/* The rendered text, built in place after a varlena header. */
typedef struct Output
{
	StringInfoData buf;
	bool		too_big;
} Output;

PG_FUNCTION_INFO_V1(render_template);

static int	append(const char *data, size_t len, void *arg);
static char *key_path(const char *path, const char *key, int len);
static TmplPattern *read_map(Jsonb *map, const char *path, int *npatterns);

/* palloc for a core module (TmplAlloc, GraphAlloc): huge allocations allowed, NULL when out of memory. */
void *
core_palloc(size_t size, void *arg)
{
	return palloc_extended(size, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

/* pfree for a core module. */
void
core_pfree(void *ptr, void *arg)
{
	pfree(ptr);
}

/* Appends rendered text to the Output at arg; refuses to grow past a text's limit. */
static int
append(const char *data, size_t len, void *arg)
{
	Output	   *out = arg;

	if (len > (size_t) (MaxAllocSize - 1 - out->buf.len))
	{
		out->too_big = true;
		return -1;
	}
	appendBinaryStringInfo(&out->buf, data, (int) len);
	return 0;
}

/* Returns path followed by key, quoted when it is not a plain identifier (like dispatch._path). */
static char *
key_path(const char *path, const char *key, int len)
{
	StringInfoData buf;
	char	   *k = pnstrdup(key, len);
	bool		plain = len > 0 && (isalpha((unsigned char) k[0]) || k[0] == '_');

	for (int i = 1; plain && i < len; i++)
		plain = isalnum((unsigned char) k[i]) || k[i] == '_';
	initStringInfo(&buf);
	appendStringInfo(&buf, "%s.", path);
	if (plain)
		appendStringInfoString(&buf, k);
	else
		escape_json(&buf, k);
	return buf.data;
}

/* Checks the map and returns its patterns (*npatterns of them); path names it in errors. */
static TmplPattern *
read_map(Jsonb *map, const char *path, int *npatterns)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	TmplPattern *p;
	int			n = 0;

	if (!JB_ROOT_IS_OBJECT(map))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("replacements must be a JSON object"),
				 errdetail("The error is at %s.", path),
				 errhint("Write the map as {\"pattern\": \"replacement\", ...}.")));
	p = palloc_extended(sizeof(TmplPattern) * (JB_ROOT_COUNT(map) + 1), MCXT_ALLOC_HUGE);
	it = JsonbIteratorInit(&map->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			if (v.val.string.len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a replacement pattern must not be empty"),
						 errdetail("The error is at %s.", key_path(path, "", 0))));
			p[n].from = v.val.string.val;
			p[n].from_len = v.val.string.len;
		}
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("replacement of pattern \"%.*s\" must be a JSON string",
								(int) p[n].from_len, p[n].from),
						 errdetail("The error is at %s.",
								   key_path(path, p[n].from, (int) p[n].from_len)),
						 errhint("Write numbers and booleans as strings, such as \"8081\".")));
			p[n].to = v.val.string.val;
			p[n].to_len = v.val.string.len;
			n++;
		}
	}
	*npatterns = n;
	return p;
}

/*
 * render_template(template text, replacements jsonb [, path text]) -> text.
 * The optional path (default "replacements") is where the map sits, for errors.
 */
Datum
render_template(PG_FUNCTION_ARGS)
{
	text	   *tpl = PG_GETARG_TEXT_PP(0);
	Jsonb	   *map = PG_GETARG_JSONB_P(1);
	const char *path = PG_NARGS() > 2 ? text_to_cstring(PG_GETARG_TEXT_PP(2)) : "replacements";
	TmplAlloc	alloc = {core_palloc, core_pfree, NULL};
	TmplPattern *patterns;
	TmplMatcher *m;
	Output		out = {{0}, false};
	int			npatterns,
				empty;

	patterns = read_map(map, path, &npatterns);
	if ((m = tmpl_build(patterns, npatterns, &alloc, &empty)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed to build the matcher of %d replacement patterns.", npatterns)));

	initStringInfo(&out.buf);
	appendStringInfoSpaces(&out.buf, VARHDRSZ);
	if (tmpl_render(m, VARDATA_ANY(tpl), VARSIZE_ANY_EXHDR(tpl), append, &out) < 0)
	{
		if (out.too_big)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("rendered template would be larger than the maximum text size"),
					 errdetail("A text value is limited to %zu bytes.",
							   (size_t) (MaxAllocSize - VARHDRSZ - 1))));
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed to allocate the renderer's match buffer.")));
	}
	tmpl_free(m);
	SET_VARSIZE(out.buf.data, out.buf.len);
	PG_RETURN_TEXT_P((text *) out.buf.data);
}
