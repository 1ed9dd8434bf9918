------------------------------------------------------------------------------
-- Reporting views
------------------------------------------------------------------------------
--
-- Users see all, read their own: every dispatch_user sees every joblist, job and
-- node, but a job's command and env and a joblist's spec only when the caller
-- submitted it or is an admin (_caller_may_read; NULL otherwise).  The views run
-- with their owner's rights, so the filter is here, not in a table privilege.

CREATE VIEW dispatch.joblist_status AS
    SELECT l.joblist_id, l.name, l.state, l.submitted_by, l.submitted_at, l.started_at,
           l.finished_at, s.name AS current_stage,
           c.total AS jobs_total, c.pending AS jobs_pending, c.running AS jobs_running,
           c.succeeded AS jobs_succeeded, c.failed AS jobs_failed, l.reason,
           CASE WHEN dispatch._caller_may_read(l.submitted_by) THEN l.spec END AS spec,
           c.skipped AS jobs_skipped, l.timeout, l.failure
      FROM dispatch.joblists l
      JOIN dispatch.stages s ON s.joblist_id = l.joblist_id AND s.stage = l.current_stage
      CROSS JOIN LATERAL (
          SELECT count(*) AS total,
                 count(*) FILTER (WHERE j.state = 'pending') AS pending,
                 count(*) FILTER (WHERE j.state IN ('assigned', 'running')) AS running,
                 count(*) FILTER (WHERE j.state = 'succeeded') AS succeeded,
                 count(*) FILTER (WHERE j.state IN ('failed', 'lost')) AS failed,
                 count(*) FILTER (WHERE j.state = 'skipped') AS skipped
            FROM dispatch.jobs j WHERE j.joblist_id = l.joblist_id) c;
COMMENT ON VIEW dispatch.joblist_status IS
    'One row per joblist with job counts; spec only for its submitter and admins';

CREATE VIEW dispatch.job_status AS
    SELECT j.job_id, j.joblist_id, s.name AS stage, j.name, j.state, j.node, j.attempt,
           j.exit_code, j.signal, j.resources,
           CASE WHEN j.waiting_signal IS NOT NULL AND j.state = 'running'
                THEN format('waiting for signal "%s"', j.waiting_signal) ELSE j.reason END AS reason,
           j.assigned_at, j.started_at,
           j.finished_at, l.name AS joblist, j.stage AS stage_no,
           CASE WHEN dispatch._caller_may_read(l.submitted_by) THEN j.command END AS command,
           j.needs, j.constraints, j.timeout, j.retries, j.timed_out, j.cancel_requested,
           j.output_bytes, j.output_truncated,
           CASE WHEN dispatch._caller_may_read(l.submitted_by) THEN j.env END AS env,
           CASE WHEN j.state = 'pending' THEN j.expected_start END AS expected_start,
           CASE WHEN j.state = 'pending' THEN j.expected_node END AS expected_node,
           coalesce(j.task, j.name) AS task, j.after, j.condition AS "when",
           -- a for_each cell's item comes from a result: private like the result
           CASE WHEN dispatch._caller_may_read(l.submitted_by) THEN j.cell
                ELSE j.cell - 'item' END AS cell,
           j.group_name AS "group", j.held,
           CASE WHEN j.waiting_signal IS NOT NULL
                THEN format('waiting for signal "%s"', j.waiting_signal) END AS waiting,
           CASE WHEN dispatch._caller_may_read(l.submitted_by) THEN j.result END AS result
      FROM dispatch.jobs j
      JOIN dispatch.joblists l USING (joblist_id)
      JOIN dispatch.stages s ON s.joblist_id = j.joblist_id AND s.stage = j.stage;
COMMENT ON VIEW dispatch.job_status IS
    'One row per job; reason says why a pending job waits, why a job ended or which signal a '
    'running job waits for; its graph (task, after, when, cell, group, held); command, env, '
    'result and a for_each cell''s item only for its submitter and admins';

CREATE VIEW dispatch.node_status AS
    SELECT n.node, n.state, n.last_heartbeat, n.labels,
           (SELECT count(*) FROM dispatch.jobs j
             WHERE j.node = n.node AND j.state IN ('assigned', 'running')) AS running_jobs,
           n.hostname, n.arch, n.os, n.cpus, n.memory_mb, n.owner, n.agent_version,
           n.registered_at, n.state_changed_at, n.admin_labels
      FROM dispatch.nodes n;
COMMENT ON VIEW dispatch.node_status IS
    'One row per node with its liveness and load; labels are what its agent reports, '
    'admin_labels what plain job constraints match';

CREATE VIEW dispatch.resource_status AS
    SELECT r.type, r.ident, r.node, a.job_id, coalesce(a.amount, 0) AS amount,
           r.capacity, r.resource_id, a.lent_by
      FROM dispatch.resources r
      LEFT JOIN dispatch.allocations a USING (resource_id);
COMMENT ON VIEW dispatch.resource_status IS
    'One row per resource instance and holder (job_id NULL: free); lent_by: the group '
    'reservation that lent the holder this share of its own';
