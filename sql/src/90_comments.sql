-- Internal helpers carry their contract line as a comment too.
DO $comments$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT p.oid::regprocedure AS fn, d.text
               FROM (VALUES
        ('_check_stream', 'Fails unless stream names a job output stream'),
        ('_raise_invalid', 'Raises invalid_parameter_value with message, detail and hint (NULL or empty: none)'),
        ('_spec_error', 'Raises the standard spec error: message plus the JSON path in the detail'),
        ('_path', 'Appends a key to a JSON path, quoting keys that are not plain identifiers'),
        ('_check_keys', 'Fails unless every key of obj is in allowed'),
        ('_json_int', 'Returns v as a bigint when it is a JSON integer in [lo, hi], else raises'),
        ('_json_text', 'Returns v as text when it is a non-empty JSON string, else raises'),
        ('_json_string_map', 'Fails unless v is a JSON object whose values are all strings'),
        ('_json_interval', 'Parses a duration (interval string or seconds) called what and returns it, or raises'),
        ('_validate_spec', 'Validates a whole joblist spec; raises the first error found, returns nothing'),
        ('_caller_is_admin', 'True when the caller may act for everything (member of dispatch_admin)'),
        ('_check_may_cancel', 'Fails unless the caller submitted joblist jl or is an admin'),
        ('_release', 'Releases whatever job holds'),
        ('_finish_job', 'Ends a job in a final state with a reason and frees its resources'),
        ('_requeue_job', 'Puts a job back in the queue; a new attempt when it had started'),
        ('_end_attempt', 'Ends an attempt that did not succeed: retried while retries remain, else final'),
        ('_lose_jobs', 'Handles the active jobs of a node that went away, except those listed in keep'),
        ('_job_event', 'Records every job state change in job_events'),
        ('_stage_reason', 'The "waiting for stage" reason of a joblist''s later stages'),
        ('_cancel_jobs_of', 'Cancels every job of joblist jl that has not finished; running ones are signalled'),
        ('_cancel_one', 'Cancels one unfinished job: at once unless it runs, then asks its agent'),
        ('_check_resource_name', 'Fails unless type and ident are valid resource names'),
        ('_resource_place', 'Describes where a resource lives, for messages'),
        ('_check_node_name', 'Fails unless node is a valid node name'),
        ('_agent_node', 'Locks and returns the node row after checking that the caller acts for it'),
        ('_agent_job', 'Locks and returns a job after checking that (job, attempt) is active on node'),
        ('_offer', 'The resource instances and amounts an agent''s registration offers'),
        ('_setting_bytes', 'A size setting in bytes (SHOW prints units such as 10B or 1MB)'),
        ('_check_size', 'Fails when content is larger than the size setting guc allows'),
        ('_check_file_path', 'Fails unless path is a safe relative file path'),
        ('_validate_files', 'Validates the files, replacements and template keys of job j'),
        ('_store_files', 'Renders and stores the files of job j; returns their total size'),
        ('_cron_next', 'The next fire of schedule after a time in time zone tz, or NULL when none'),
        ('_goal_tz', 'The time zone of goal g: its own, else dispatch.timezone'),
        ('_check_schedule', 'Checks a schedule and time zone (at JSON paths sp and tp); raises like a spec error'),
        ('_validate_goal', 'Validates a goal spec; returns the joblist each instance submits'),
        ('_goal_changeable', 'Returns goal g when found and the caller owns it or is an admin; raises otherwise'),
        ('_goal_for_change', 'Locks and returns goal name for a change by the caller (its owner or an admin)'),
        ('_goal_next', 'The next fire of goal g after t (NULL: never, or @reboot)'),
        ('_goal_end_run', 'Stops the live instances of run r and ends it with outcome'),
        ('_goal_start_instance', 'Starts one more instance of goal g in run r; returns false when spread finds no node'),
        ('_goal_start_run', 'Starts run r of goal g now: its SQL command, or (through _goal_keep) its instances'),
        ('_goal_fire', 'Fires goal g for fire time at: starts a run, queues it, or skips it (overlap)'),
        ('_goal_keep', 'Keeps run r of goal g true: counts ended instances, replaces them, ends the run'),
        ('_goal_latest_fire', 'The latest fire of goal g in (after, now()], or NULL'),
        ('_goal_evaluate', 'Fires goal g when due and keeps its open runs true'),
        ('_goal_tick', 'Scheduler: evaluates every goal; returns seconds to the next goal deadline'),
        ('_goal_store', 'Stores a validated goal spec into a goal row (a new one when g is NULL); returns its id'),
        ('_sql_job_for_change', 'Returns the SQL job jobid after checking that the caller may change it'),
        ('_check_sql_job', 'Fails unless command is a non-empty SQL string and schedule a schedule that fires'),
        ('_sql_runs_to_launch', 'Scheduler: the SQL runs to start a background worker for'),
        ('_sql_run_claim', 'SQL run worker: claims a run; returns its command, or NULL when another took it'),
        ('_sql_run_finish', 'SQL run worker: records the end of a run, from the worker that claimed it'),
        ('_sql_run_unstarted', 'The scheduler could not start a worker for a run'),
        ('_metric_partition', 'The partition of a metrics table holding an instant, created when missing'),
        ('_series_id', 'The id of a metric name, numbered on first sight'),
        ('_layout_id', 'The id of the layout with these series, created on first sight'),
        ('_store_sample', 'Stores one sample of a node: metric names and values in the same order'),
        ('_flatten', 'The numeric leaves of a JSON value as (name, value)'),
        ('_sample_metrics', 'The metrics of one agent sample: its numeric values, plugins as name{labels}'),
        ('_rollup', 'Rolls samples or minute rollups of an interval up into the next resolution'),
        ('_metrics_maintain', 'Monitor: rollups, partitions ahead, expired partitions dropped'),
        ('_monitor_tick', 'Monitor: one round of alert evaluation, metric upkeep and presence'),
        ('_job_history', 'Trigger: copies a job attempt that just ended into job_history'),
        ('_joblist_history', 'Trigger: copies a joblist that just finished into joblist_history'),
        ('_record_presence', 'Monitor: adds the nodes'' states now to this minute''s record, forgets old records'),
        ('_node_union', 'The sorted union of two arrays of node names'),
        ('_rule_hold', 'How long the condition of an alert rule must hold before it fires'),
        ('_validate_alert_rule', 'Validates an alert rule spec; raises like a spec error'),
        ('_metric_now', 'The latest fresh value of a metric on every node (node.up from node state)'),
        ('_notify', 'Queues the notifications of an alert event'),
        ('_alert_event', 'Records an alert event and queues its notifications'),
        ('_evaluate_alerts', 'Monitor: evaluates every alert rule once'),
        ('_notifications_due', 'Monitor: claims notifications that are due'),
        ('_notification_done', 'Monitor: records the outcome of sending a notification'),
        ('_submit', 'Validates spec and queues it as a joblist of submitter; returns its id'),
        ('_render_template', 'render_template with the JSON path of the map, for spec errors'),
        ('_utf8_prefix', 'Returns the longest prefix of s that fits in max_bytes bytes'),
        ('_advance_joblist', 'Advances, finishes or fails one active joblist whose current stage changed')
                    ) AS d(name, text)
               JOIN pg_catalog.pg_proc p ON p.proname = d.name
                AND p.pronamespace = 'dispatch'::regnamespace LOOP
        EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', c.fn, c.text);
    END LOOP;
END
$comments$;
COMMENT ON VIEW dispatch._sched_nodes IS 'Scheduler input: online nodes';
COMMENT ON VIEW dispatch._sched_node_labels IS 'Scheduler input: node labels and pseudo-labels';
COMMENT ON VIEW dispatch._sched_free IS 'Scheduler input: resource units with their free amount';
COMMENT ON VIEW dispatch._sched_jobs IS 'Scheduler input: runnable pending jobs in FIFO order';
COMMENT ON VIEW dispatch._sched_job_needs IS 'Scheduler input: needs of runnable jobs';
COMMENT ON VIEW dispatch._sched_job_constraints IS 'Scheduler input: constraints of runnable jobs';
