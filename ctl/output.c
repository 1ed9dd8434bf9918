/*
 * output.c -- how dispatchctl prints results: aligned tables, records, JSON.
 *
 * Tables show the columns a command picks, aligned by display width (UTF-8 aware),
 * with the state column coloured on a terminal.  --json prints every column of the
 * result as jansson builds it from the column types: integers and finite floats as numbers,
 * booleans, json/jsonb parsed, NULL as null, everything else as a string.  Text from
 * the database (job names, reasons, labels: other users write them) never reaches
 * the terminal raw: control characters are shown escaped, so no value can move the
 * cursor, change the title or fake a line of another row.
 */
#include "dispatchctl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Column type oids (pg_type.h is server-side; these are fixed since PostgreSQL 7). */
#define BOOLOID		16
#define INT8OID		20
#define INT2OID		21
#define INT4OID		23
#define JSONOID		114
#define FLOAT4OID	700
#define FLOAT8OID	701
#define NUMERICOID	1700
#define JSONBOID	3802

#define ANSI_RESET	"\033[0m"
#define ANSI_BOLD	"\033[1m"

/* Returns the ANSI colour of a state (job, joblist, node, alert, artefact), or NULL. */
const char *
output_state_color(const char *state)
{
	static const char *const map[][2] = {
		{"succeeded", "\033[32m"}, {"online", "\033[32m"}, {"fresh", "\033[32m"},
		{"failed", "\033[31m"}, {"lost", "\033[31m"}, {"offline", "\033[31m"},
		{"firing", "\033[31m"},
		{"running", "\033[34m"}, {"building", "\033[34m"}, {"assigned", "\033[36m"},
		{"pending", "\033[33m"}, {"queued", "\033[33m"}, {"draining", "\033[33m"},
		{"stale", "\033[33m"},
		{"cancelled", "\033[35m"}, {"skipped", "\033[35m"},
	};

	for (size_t i = 0; state && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], state) == 0)
			return map[i][1];
	return NULL;
}

/* Writes s (len bytes) with control characters escaped (\n kept when keep_newlines). */
void
output_safe(FILE *out, const char *s, size_t len, int keep_newlines)
{
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '\n' && keep_newlines)
			fputc('\n', out);
		else if (c == '\t' && keep_newlines)
			fputc('\t', out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else if (c == 0xc2 && i + 1 < len && (unsigned char) s[i + 1] >= 0x80 &&
				 (unsigned char) s[i + 1] < 0xa0)
			fprintf(out, "\\u%04x", (unsigned char) s[++i]);	/* C1 controls */
		else
			fputc(c, out);
	}
}

/* Returns the display width of s as output_safe() prints it on one line. */
static int
display_width(const char *s)
{
	int			w = 0;

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			w += 4;
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0)
		{
			w += 6;
			p++;
		}
		else if ((*p & 0xc0) != 0x80)
			w++;
	}
	return w;
}

/* Returns the column number of name in res, or -1. */
static int
column_of(const PGresult *res, const char *name)
{
	return PQfnumber(res, name);
}

/* Returns the value of column col of row as JSON. */
static json_t *
value_json(const PGresult *res, int row, int col)
{
	const char *v = PQgetvalue(res, row, col);

	if (PQgetisnull(res, row, col))
		return json_null();
	switch (PQftype(res, col))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return json_integer(strtoll(v, NULL, 10));
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			{
				char	   *end;
				double		d = strtod(v, &end);

				return *end == '\0' && isfinite(d) ? json_real(d) : json_string(v);
			}
		case BOOLOID:
			return json_boolean(v[0] == 't');
		case JSONOID:
		case JSONBOID:
			{
				json_t	   *j = json_loads(v, JSON_DECODE_ANY, NULL);

				return j ? j : json_string(v);
			}
		default:
			return json_string(v);
	}
}

/* Returns row of res as a JSON object of every column. */
json_t *
output_row_json(const PGresult *res, int row)
{
	json_t	   *obj = json_object();

	for (int c = 0; c < PQnfields(res); c++)
		json_object_set_new(obj, PQfname(res, c), value_json(res, row, c));
	return obj;
}

/* Returns every row of res as a JSON array of objects. */
json_t *
output_rows_json(const PGresult *res)
{
	json_t	   *rows = json_array();

	for (int r = 0; r < PQntuples(res); r++)
		json_array_append_new(rows, output_row_json(res, r));
	return rows;
}

/* Prints value (stolen) as indented JSON on stdout; EXIT_OK or EXIT_ERROR. */
int
output_json(json_t *value)
{
	int			rc = json_dumpf(value, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) == 0 ? EXIT_OK : EXIT_ERROR;

	json_decref(value);
	fputc('\n', stdout);
	if (rc != EXIT_OK)
		ctl_error("could not print JSON");
	return rc;
}

/* Prints one table cell padded to width, the state column in colour. */
static void
print_cell(const Ctl *ctl, const char *v, int width, int is_state, int last)
{
	const char *color = ctl->color && is_state ? output_state_color(v) : NULL;

	if (color)
		fputs(color, stdout);
	output_safe(stdout, v, strlen(v), 0);
	if (color)
		fputs(ANSI_RESET, stdout);
	if (!last)
		printf("%*s", width - display_width(v) + 2, "");
}

/* Prints the columns of res as an aligned table (NULL shown as "-"); none: one line. */
void
output_table(const Ctl *ctl, const PGresult *res, const Column *columns)
{
	int			ncols = 0;
	int			idx[32];
	int			width[32];
	int			rows = PQntuples(res);

	for (; columns[ncols].name && ncols < 32; ncols++)
	{
		idx[ncols] = column_of(res, columns[ncols].name);
		width[ncols] = display_width(columns[ncols].header);
		for (int r = 0; r < rows && idx[ncols] >= 0; r++)
		{
			const char *v = PQgetisnull(res, r, idx[ncols]) ? "-" : PQgetvalue(res, r, idx[ncols]);
			int			w = display_width(v);

			width[ncols] = w > width[ncols] ? w : width[ncols];
		}
	}
	if (ctl->color)
		fputs(ANSI_BOLD, stdout);
	for (int c = 0; c < ncols; c++)
		print_cell(ctl, columns[c].header, width[c], 0, c == ncols - 1);
	if (ctl->color)
		fputs(ANSI_RESET, stdout);
	fputc('\n', stdout);
	for (int r = 0; r < rows; r++)
	{
		for (int c = 0; c < ncols; c++)
		{
			const char *v = idx[c] < 0 || PQgetisnull(res, r, idx[c]) ? "-" : PQgetvalue(res, r, idx[c]);

			print_cell(ctl, v, width[c], strcmp(columns[c].name, "state") == 0, c == ncols - 1);
		}
		fputc('\n', stdout);
	}
}

/* Prints row of res as "Header: value" lines, for one object shown whole. */
void
output_record(const Ctl *ctl, const PGresult *res, int row, const Column *columns)
{
	int			width = 0;

	for (const Column *c = columns; c->name; c++)
		width = (int) strlen(c->header) > width ? (int) strlen(c->header) : width;
	for (const Column *c = columns; c->name; c++)
	{
		int			i = column_of(res, c->name);
		const char *v = i < 0 || PQgetisnull(res, row, i) ? "-" : PQgetvalue(res, row, i);

		printf("%-*s  ", width + 1, c->header);
		print_cell(ctl, v, 0, strcmp(c->name, "state") == 0, 1);
		fputc('\n', stdout);
	}
}

/* Prints res as JSON (every column) or as a table of columns; returns the exit code. */
int
output_result(const Ctl *ctl, const PGresult *res, const Column *columns)
{
	if (ctl->json)
		return output_json(output_rows_json(res));
	output_table(ctl, res, columns);
	return EXIT_OK;
}
