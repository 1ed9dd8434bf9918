/*
 * yamljson.h -- YAML or JSON text to a jansson value, and back from a JSON path to
 * the line and column it came from.
 *
 * Shared by dispatchctl and dispatch-web: each compiles $(YAMLJSON_SRCS) from
 * lib/lib.mk (yamljson.c builds values, yamlscalar.c resolves scalars, yamlpath.c
 * locates paths) and links -lyaml -ljansson.
 * Joblists, goals and alert rules are written in YAML by people and checked as JSON
 * by the server, whose errors name a JSON path (dispatch._path's notation,
 * "stages[0].jobs[2].needs"); yaml_json_locate() turns that path back into the
 * place in the file.  What a plain scalar becomes (numbers, booleans, null) is the
 * table in docs/cli.md, "YAML".
 */
#ifndef YAMLJSON_H
#define YAMLJSON_H

#include <stddef.h>
#include <jansson.h>

/* The limits on one document: text size, nesting, nodes after alias expansion. */
#define YAMLJSON_MAX_BYTES	(8 * 1024 * 1024)
#define YAMLJSON_MAX_DEPTH	64
#define YAMLJSON_MAX_NODES	100000

/* Where a YAML or JSON document failed to parse, or where a JSON path sits in it. */
typedef struct YamlJsonError
{
	int			line;			/* 1-based; 0 when the error has no place */
	int			column;			/* 1-based; 0 when the error has no place */
	char		message[256];
} YamlJsonError;

/* Parses text (len bytes; YAML 1.1 as libyaml reads it, JSON is a subset) into a new
   json_t, or NULL with *err filled (1-based line and column). */
json_t	   *yaml_to_json(const char *text, size_t len, YamlJsonError *err);

/* The source position (1-based line, column) of the node at a JSON path such as
   stages[0].jobs[2].needs (dispatch._path's notation), or 0 when unknown: lets a
   validation error from the server name the file's line and column. */
int			yaml_json_locate(const char *text, size_t len, const char *json_path,
							 int *line, int *column);

#endif
