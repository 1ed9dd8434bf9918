/*
 * model.h: the scheduler's in-memory model of the tables (model.c), how a cycle
 * places jobs with it (alloc.c) and how it is checked against the tables
 * (model_check.c).
 *
 * The model is a core AllocSession (core/alloc_session.h), kept by the scheduler
 * between cycles: loaded whole by model_load(), then changed by model_apply() with
 * what the change queue (dispatch._sched_changes) named since.  All of these run
 * inside a worker_begin() transaction; the session itself lives in malloc'd memory
 * and survives it.
 */
#ifndef PG_DISPATCH_MODEL_H
#define PG_DISPATCH_MODEL_H

#include "postgres.h"

#include "alloc_session.h"

/* A growing array of Datums, in the current transaction's memory. */
typedef struct DatumList
{
	Datum	   *v;
	int			n;
	int			room;
} DatumList;

/* What the change queue named (starts zeroed). */
typedef struct ModelChanges
{
	DatumList	jobs;			/* job ids (int8) */
	DatumList	joblists;		/* joblists whose runnable jobs to reload */
	DatumList	stage_joblists; /* joblists whose stages to look at: the above and the jobs' */
	DatumList	nodes;			/* node names (text) */
	bool		pool;			/* the pool's units changed */
} ModelChanges;

/* model.c */
extern void model_changes_read(ModelChanges *c, bool take, bool keep_others);
extern AllocSession *model_load(void);
extern void model_apply(AllocSession *s, const ModelChanges *c);
extern void model_reload_jobs(AllocSession *s, const DatumList *jobs);
extern void model_add(DatumList *l, Datum d);
extern void model_check_memory(int rc);
extern Datum model_int8_array(Datum *values, int n);
extern Datum model_text_array(Datum *values, int n);

/* alloc.c */
extern int	alloc_assign(AllocSession *s, int *nskipped);

/* model_check.c */
extern bool model_check_due(TimestampTz now, long *sleep_ms);
extern void model_check_run(AllocSession **s);

#endif							/* PG_DISPATCH_MODEL_H */
