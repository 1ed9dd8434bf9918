/*
 * yamljson_int.h -- what the files of lib/yamljson* share: error filling and the
 * resolution of one scalar.  Not for the programs (they include yamljson.h).
 */
#ifndef YAMLJSON_INT_H
#define YAMLJSON_INT_H

#include <yaml.h>

#include "yamljson.h"

/* The prefix of YAML's standard tags (!!str is TAG_PREFIX "str"). */
#define TAG_PREFIX "tag:yaml.org,2002:"

/* Fills *err with a message at (line, column); 0, 0 for none. */
void		yamljson_fail(YamlJsonError *err, int line, int column, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

/* Fills *err with a message at a libyaml mark. */
#define FAIL_AT(err, mark, ...) \
	yamljson_fail((err), (int) (mark).line + 1, (int) (mark).column + 1, __VA_ARGS__)

/* Converts a scalar event to a JSON value following its style and tag; NULL with *err. */
json_t	   *yamljson_scalar(const yaml_event_t *ev, YamlJsonError *err);

#endif
