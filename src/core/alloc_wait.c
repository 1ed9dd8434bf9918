/*
 * alloc_wait.c: what a job that cannot start now is told, and what it holds back
 * when it gets no reservation.
 *
 * A reason says what stands in the way, squeue-like: not enough free on any node
 * the job may use, or an earlier job that holds it (closed it, or has it promised
 * from a time this job would still be running at).  Looking for that job costs a
 * few nodes, not a scan of the cluster: the first EXPLAIN_SCAN nodes with
 * reservations, then the first EXPLAIN_SCAN candidates.
 *
 * A waiting job past dispatch.max_reservations (once that many have a reservation)
 * is only said to be behind earlier jobs, with what it needs (bf_behind).
 *
 * A waiting job past dispatch.max_reservations, or one that could not start even
 * at ALLOC_NEVER, closes the groups of the types it is short of (every type it
 * needs when it is short of none alone) to every later job: the strict FIFO rule
 * of old, kept where the future is not computed.
 */
#include "alloc_int.h"

#include <stdio.h>
#include <time.h>

/* Reserved nodes, then candidates, looked at for the job that holds one back. */
#define EXPLAIN_SCAN 32

static int	blocker(const Group *g, int64_t end);
static void format_utc(int64_t t, int64_t now, char *buf, size_t len);
static void blocked_reason(const State *st, int jobno, int who);
static int	node_blocker(const State *st, const AllocJob *job, int n, int64_t end);
static int	is_short(const State *st, const AllocJob *job, int i);
static void append(char *buf, size_t len, size_t *used, const char *text);
static void close_type(State *st, int type, int jobno, int nc);

/* Returns the job holding g back up to time end (closed it, or reserved first), or -1. */
static int
blocker(const Group *g, int64_t end)
{
	if (g->closed_by >= 0)
		return g->closed_by;
	for (int e = 0; e < g->nev && g->ev[e].t <= end; e++)
		if (g->ev[e].delta < 0 && g->ev[e].job >= 0)
			return g->ev[e].job;
	return -1;
}

/* Formats t as UTC "HH:MM", with the date when it is a day or more after now. */
static void
format_utc(int64_t t, int64_t now, char *buf, size_t len)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, t - now < 86400 ? "%H:%M" : "%Y-%m-%d %H:%M", &tm);
}

/* Explains that job jobno waits for job who, which holds what it could use. */
static void
blocked_reason(const State *st, int jobno, int who)
{
	const AllocJob *job = &st->p->jobs[jobno];
	const AllocJob *w = &st->p->jobs[who];
	AllocResult *r = &st->out->results[jobno];
	char		when[64];

	/*
	 * A later job holds it by the reservation it had from the last cycle (not
	 * given back yet): its start is that one; its result is not written yet.
	 */
	int64_t		at = who < jobno ? st->out->results[who].expected_start : w->reserved_start;

	if (at == ALLOC_NEVER && w->joblist_id != job->joblist_id)
		alloc_reason(r, "earlier joblist %lld holds the queue", (long long) w->joblist_id);
	else if (at == ALLOC_NEVER)
		alloc_reason(r, "earlier job %lld holds the queue", (long long) w->job_id);
	else if (job->limit <= 0)
		alloc_reason(r, "backfill: needs a time limit");
	else
	{
		(st->p->format_time ? st->p->format_time : format_utc) (at, st->p->now, when,
																sizeof(when));
		alloc_reason(r, "reserved for job %lld from %s", (long long) w->job_id, when);
	}
}

/*
 * Returns the earlier job that holds back what job could use on node now (enough is
 * free there, but closed or reserved up to end), or -1.
 */
static int
node_blocker(const State *st, const AllocJob *job, int n, int64_t end)
{
	int64_t		now = st->p->now;

	for (int i = 0; i < job->nneeds; i++)
		if ((Sum) alloc_group(st, st->need_type[i], n)->free +
			alloc_group(st, st->need_type[i], -1)->free < job->needs[i].count)
			return -1;
	for (int i = 0; i < job->nneeds; i++)
	{
		const Group *own = alloc_group(st, st->need_type[i], n);
		const Group *pool = alloc_group(st, st->need_type[i], -1);
		int			who;

		if (bf_spare(st, own, now, end) + bf_spare(st, pool, now, end) >= job->needs[i].count)
			continue;
		who = blocker(own, end);
		if (who < 0)
			who = blocker(pool, end);
		if (who >= 0)
			return who;
	}
	return -1;
}

/*
 * Explains why job jobno, which could run on an idle cluster, cannot start now:
 * what is free would do, but an earlier job holds it; or not enough is free.  The
 * holder is looked for on the first EXPLAIN_SCAN nodes with reservations, then on
 * the first EXPLAIN_SCAN candidates: a reason need not cost a scan of 10,000 nodes.
 */
void
bf_explain(const State *st, int jobno, int nc)
{
	const AllocJob *job = &st->p->jobs[jobno];
	int64_t		end = bf_window_end(st->p->now, job->limit);
	int			may_fit = 1,
				who = -1;

	for (int i = 0; i < job->nneeds && may_fit; i++)
		may_fit = (Sum) idx_most_free(st, st->need_type[i], 1) +
			alloc_group(st, st->need_type[i], -1)->free >= job->needs[i].count;
	for (int r = 0; r < st->nreserved && r < EXPLAIN_SCAN && may_fit && who < 0; r++)
		if (idx_is_candidate(st, st->reserved_nodes[r]))
			who = node_blocker(st, job, st->reserved_nodes[r], end);
	for (int k = 0; k < nc && k < EXPLAIN_SCAN && may_fit && who < 0; k++)
		who = node_blocker(st, job, st->cand[k], end);
	if (who >= 0)
	{
		blocked_reason(st, jobno, who);
		return;
	}
	for (int i = 0; i < job->nneeds; i++)
	{
		Sum			most = idx_most_free(st, st->need_type[i], 1);
		int			exactly = most == INT64_MAX && job->needs[i].count > IDX_EXACT &&
			i < job->nneeds - 1;	/* the last need is named anyway */

		if (exactly)
			most = 0;			/* IDX_EXACT or more may not be enough: count */
		else
			most += alloc_group(st, st->need_type[i], -1)->free;
		for (int k = 0; k < nc && exactly; k++)
		{
			Sum			f = (Sum) alloc_group(st, st->need_type[i], st->cand[k])->free +
				alloc_group(st, st->need_type[i], -1)->free;

			most = f > most ? f : most;
		}
		if (most < job->needs[i].count || i == job->nneeds - 1)
		{
			alloc_reason(&st->out->results[jobno], "not enough %s free (needs %lld)",
						 job->needs[i].type, (long long) job->needs[i].count);
			return;
		}
	}
}

/* Appends text to buf (of len, used so far *used), cutting it at the end. */
static void
append(char *buf, size_t len, size_t *used, const char *text)
{
	while (*text && *used + 1 < len)
		buf[(*used)++] = *text++;
	buf[*used] = '\0';
}

/*
 * Writes "behind earlier jobs (needs 2 cpu, 1 lic)" for needs into buf (of len); by
 * hand, not printf: every job past the reservation depth gets it, every cycle,
 * and printf was 40 % of what such a job costs.
 */
void
bf_behind_text(const AllocNeed *needs, int nneeds, char *buf, size_t len)
{
	size_t		used = 0;

	append(buf, len, &used, "behind earlier jobs (needs ");
	for (int i = 0; i < nneeds; i++)
	{
		char		num[24],
				   *d = num + sizeof(num) - 1;
		uint64_t	v = needs[i].count < 0 ? -(uint64_t) needs[i].count :
			(uint64_t) needs[i].count;

		*d = '\0';
		do
			*--d = (char) ('0' + v % 10);
		while ((v /= 10) > 0);
		if (needs[i].count < 0)
			*--d = '-';
		append(buf, len, &used, i ? ", " : "");
		append(buf, len, &used, d);
		append(buf, len, &used, " ");
		append(buf, len, &used, needs[i].type);
	}
	append(buf, len, &used, ")");
}

/*
 * Explains that job jobno, which could run on an idle cluster, waits past the
 * reservation depth: "behind earlier jobs (needs 2 cpu, 1 lic)", Slurm's
 * "(Priority)".  The text names neither the jobs ahead nor what is free now, so it
 * stays the same from cycle to cycle while the job waits there: a queue of 20,000
 * costs no update of its reasons per cycle, and a cycle need not look at it.
 */
void
bf_behind(const State *st, int jobno)
{
	AllocResult *r = &st->out->results[jobno];

	bf_behind_text(st->p->jobs[jobno].needs, st->p->jobs[jobno].nneeds, r->reason,
				   sizeof(r->reason));
}

/*
 * Returns 1 when no candidate node (with the pool) has enough free and open for
 * need i of job now, by the node index: reservations are not counted, so a job is
 * short of a little less than it could be, and closes a little less.
 */
static int
is_short(const State *st, const AllocJob *job, int i)
{
	int			t = st->need_type[i];
	Sum			pool = bf_spare(st, alloc_group(st, t, -1), st->p->now,
							 bf_window_end(st->p->now, job->limit));

	return st->cand_entry->closed[t] || st->type_avail[t] < job->needs[i].count ||
		(Sum) idx_most_free(st, t, 0) + pool < job->needs[i].count;
}

/* Closes type's groups on the current candidate nodes and its pool to jobs after jobno. */
static void
close_type(State *st, int type, int jobno, int nc)
{
	if (st->cand_entry->closed[type])
		return;
	for (int k = -1; k < nc; k++)
	{
		Group	   *g = alloc_group(st, type, k < 0 ? -1 : st->cand[k]);

		if (g->closed_by >= 0)
			continue;
		idx_moved(st, type, k < 0 ? -1 : st->cand[k], g->free, 0, 0);
		g->closed_by = jobno;
		st->type_avail[type] -= g->free;
	}
	st->cand_entry->closed[type] = 1;
}

/*
 * For waiting job jobno without a reservation: closes the groups of every type it
 * is short of, or of all its types when it is short of none on its own.
 */
void
bf_close(State *st, int jobno, int nc)
{
	const AllocJob *job = &st->p->jobs[jobno];
	int			any = 0;

	for (int i = 0; i < job->nneeds; i++)
		any |= st->need_short[i] = (unsigned char) is_short(st, job, i);
	for (int i = 0; i < job->nneeds; i++)
		if (!any || st->need_short[i])
			close_type(st, st->need_type[i], jobno, nc);
}
