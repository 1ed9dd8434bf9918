------------------------------------------------------------------------------
-- Rebuilds: what a change makes stale, built in dependency order as one joblist
------------------------------------------------------------------------------
--
-- Changes wait in artefact_changes: a file that changed (78_rules.sql marked what
-- depends on it stale), a rule that changed, or a file someone asked for
-- (request_build).  Once a workspace has been quiet for dispatch.rebuild_delay and
-- no rebuild of it runs, _rebuild_tick() (the scheduler calls it each cycle) plans
-- one rebuild of everything the waiting changes need, so a burst of changes
-- coalesces into one rebuild; a change that comes while a rebuild runs waits for
-- it to end and then starts the next (queued, never cancelling a build half done;
-- what the newer change makes stale stays stale even if the running rebuild
-- rebuilds it).  The plan, over the rule graph (core/graph.c):
--   - a changed file or rule: the rules that read it (or the rule), and every rule
--     depending on those (the stale set);
--   - a requested file: the rule that makes it, and the rules it depends on whose
--     outputs are not fresh, with what lies between;
--   - the planned rules grouped by strongly connected component, each group one
--     job of the rebuild joblist, after the groups it reads from: a single rule is
--     its own job; a cycle (or a rule reading its own output) is one job running
--     its rules' commands in creation order, pass after pass, through
--     `dispatch-agent iterate` until a pass leaves every output as it was (a fixed
--     point), at most max_passes times (the largest of its rules'), and fails
--     clearly when it does not converge.
-- The rebuild runs as the workspace owner's joblist "rebuild <workspace>", its jobs
-- on any node that meets their needs: each gets its inputs from the store (the
-- agent fetches them with agent_blob into its work dir) and hands its outputs to
-- the store after a success (agent_store_output); a job that did not store every
-- output fails.  The outputs of a job that ends are fresh (built), failed, or
-- stale again (cancelled, skipped).

CREATE TABLE dispatch.artefact_changes (
    change_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace       text NOT NULL REFERENCES dispatch.workspaces ON DELETE CASCADE,
    kind            text NOT NULL DEFAULT 'changed' CHECK (kind IN ('changed', 'rule', 'request')),
    path            text,
    rule_id         bigint REFERENCES dispatch.rules ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    CHECK ((kind = 'rule') = (rule_id IS NOT NULL AND path IS NULL))
);
CREATE INDEX artefact_changes_ws_idx ON dispatch.artefact_changes (workspace, change_id);
COMMENT ON TABLE dispatch.artefact_changes IS
    'Changes of workspaces waiting for their next rebuild';

CREATE TABLE dispatch.build_jobs (
    job_id          bigint PRIMARY KEY REFERENCES dispatch.jobs ON DELETE CASCADE,
    workspace       text NOT NULL REFERENCES dispatch.workspaces ON DELETE CASCADE,
    rules           bigint[] NOT NULL,
    input_paths     text[] NOT NULL,
    input_globs     text[] NOT NULL,
    outputs         text[] NOT NULL
);
COMMENT ON TABLE dispatch.build_jobs IS 'The jobs of rebuilds: the rules each runs, what it reads and makes';

CREATE TABLE dispatch.build_outputs (
    job_id          bigint NOT NULL REFERENCES dispatch.build_jobs ON DELETE CASCADE,
    attempt         int NOT NULL,
    path            text NOT NULL,
    sha256          text NOT NULL REFERENCES dispatch.blobs,
    size            bigint NOT NULL,
    PRIMARY KEY (job_id, attempt, path)
);
COMMENT ON TABLE dispatch.build_outputs IS 'What each attempt of a build job stored of its outputs';

CREATE FUNCTION dispatch._queue_rebuild(ws text, rule bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO dispatch.artefact_changes (workspace, kind, rule_id) VALUES (ws, 'rule', rule);
    UPDATE dispatch.workspaces SET changed_at = now() WHERE workspace = ws;
    SELECT dispatch.wake_scheduler();
$$;
COMMENT ON FUNCTION dispatch._queue_rebuild(text, bigint) IS
    'Queues rule (of workspace ws) and what depends on it for the next rebuild';

-- A word for sh: single-quoted, its own single quotes spelled '\''.
CREATE FUNCTION dispatch._sh_quote(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '''' || replace(s, '''', '''\''''') || ''''
$$;
COMMENT ON FUNCTION dispatch._sh_quote(text) IS 'The text s as one word of a sh command line';

-- The job of one group of the plan: rules (in creation order) that form a cycle
-- when cyclic, else one rule; after: the names of the jobs it runs after.
CREATE FUNCTION dispatch._build_job(rules bigint[], cyclic boolean, after text[]) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r dispatch.rules;
    j jsonb;
BEGIN
    IF NOT cyclic THEN
        SELECT * INTO r FROM dispatch.rules x WHERE x.rule_id = rules[1];
        RETURN r.spec -> 'job' || jsonb_strip_nulls(jsonb_build_object('name', r.name, 'after', to_jsonb(nullif(after, '{}'))));
    END IF;
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'name', string_agg(x.name, '+' ORDER BY x.rule_id),
               'command', format('"$DISPATCH_AGENT" iterate --max-passes %s %s -- %s',
                   max(x.max_passes),
                   (SELECT string_agg('--output ' || dispatch._sh_quote(o), ' ' ORDER BY y.rule_id, o.n)
                      FROM dispatch.rules y, unnest(y.outputs) WITH ORDINALITY AS o(o, n)
                     WHERE y.rule_id = ANY (rules)),
                   string_agg(dispatch._sh_quote(dispatch._job_command(x.spec -> 'job', 'job')), ' '
                              ORDER BY x.rule_id)),
               'needs', (SELECT jsonb_object_agg(n.key, n.count) FROM (
                            SELECT e.key, max(e.value::text::bigint) AS count
                              FROM dispatch.rules y, jsonb_each(y.spec -> 'job' -> 'needs') e
                             WHERE y.rule_id = ANY (rules) GROUP BY e.key) n),
               'constraints', (SELECT jsonb_object_agg(c.key, c.value) FROM (
                            SELECT DISTINCT ON (e.key) e.key, e.value
                              FROM dispatch.rules y, jsonb_each(y.spec -> 'job' -> 'constraints') e
                             WHERE y.rule_id = ANY (rules) ORDER BY e.key, y.rule_id) c),
               'env', (SELECT jsonb_object_agg(c.key, c.value) FROM (
                            SELECT DISTINCT ON (e.key) e.key, e.value
                              FROM dispatch.rules y, jsonb_each(y.spec -> 'job' -> 'env') e
                             WHERE y.rule_id = ANY (rules) ORDER BY e.key, y.rule_id) c),
               'files', (SELECT jsonb_agg(f.x ORDER BY f.id, f.o) FROM (
                            SELECT DISTINCT ON (e.x ->> 'path') e.x, y.rule_id AS id, e.o
                              FROM dispatch.rules y,
                                   jsonb_array_elements(y.spec -> 'job' -> 'files') WITH ORDINALITY AS e(x, o)
                             WHERE y.rule_id = ANY (rules) ORDER BY e.x ->> 'path', y.rule_id) f),
               -- every pass runs every command: the limit is the passes' sum, or none
               'timeout', CASE WHEN bool_and(x.spec -> 'job' ? 'timeout') THEN
                               (max(x.max_passes) * sum(dispatch._interval_of(x.spec -> 'job' -> 'timeout')))::text END,
               'retries', max(coalesce((x.spec -> 'job' ->> 'retries')::int, 0)),
               'after', to_jsonb(nullif(after, '{}'))))
      INTO j
      FROM dispatch.rules x WHERE x.rule_id = ANY (rules);
    RETURN j;
END
$$;
COMMENT ON FUNCTION dispatch._build_job(bigint[], boolean, text[]) IS
    'The job spec that builds rules (a cycle, iterated to a fixed point, when cyclic; else '
    'one rule), after the jobs named in after';

-- The plan for workspace ws from the changes up to change_id upto: one row per
-- group, in build order: its rules, whether it is a cycle, the groups it runs after.
CREATE FUNCTION dispatch._rebuild_plan(ws text, upto bigint)
RETURNS TABLE (grp int, rules bigint[], cyclic boolean, after int[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record := dispatch._rule_graph(ws);
    n int := cardinality(g.rules);
    comp int[];
    down int[];
    planned int[] := '{}';
    target int;
    up int[];
    needy int[];
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    -- changed files and rules, and all that depends on them
    down := dispatch._graph_stale(g.froms, g.tos, n, ARRAY(
        SELECT (x.i - 1)::int FROM unnest(g.rules) WITH ORDINALITY AS x(id, i)
          JOIN dispatch.rules r ON r.rule_id = x.id
         WHERE EXISTS (SELECT FROM dispatch.artefact_changes c
                        WHERE c.workspace = ws AND c.change_id <= upto
                          AND (c.kind = 'rule' AND c.rule_id = r.rule_id
                               OR c.kind = 'changed'
                                  AND (c.path = ANY (r.input_paths)
                                       OR EXISTS (SELECT FROM unnest(r.input_globs) gl
                                                   WHERE c.path ~ dispatch._glob_regex(gl)))))));
    planned := down;
    -- requested files: their rule, and what it depends on that is not fresh
    FOR target IN SELECT DISTINCT (x.i - 1)::int FROM dispatch.artefact_changes c
                    JOIN dispatch.rules r ON r.workspace = ws AND c.path = ANY (r.outputs)
                    JOIN unnest(g.rules) WITH ORDINALITY AS x(id, i) ON x.id = r.rule_id
                   WHERE c.workspace = ws AND c.change_id <= upto AND c.kind = 'request' LOOP
        up := dispatch._graph_stale(g.tos, g.froms, n, ARRAY[target]);
        needy := ARRAY(SELECT u FROM unnest(up) u JOIN dispatch.rules r ON r.rule_id = g.rules[u + 1]
                        WHERE EXISTS (SELECT FROM unnest(r.outputs) o
                                       LEFT JOIN dispatch.artefacts a ON a.workspace = ws AND a.path = o
                                       WHERE a.sha256 IS NULL OR a.state <> 'fresh'));
        planned := planned || target || ARRAY(
            SELECT s FROM unnest(dispatch._graph_stale(g.froms, g.tos, n, needy)) s WHERE s = ANY (up));
    END LOOP;
    comp := dispatch._graph_components(g.froms, g.tos, n);
    RETURN QUERY
    WITH p AS (SELECT DISTINCT v, comp[v + 1] AS c FROM unnest(planned) v),
    e AS (SELECT x.f, x.t, pf.c AS cf, pt.c AS ct
            FROM unnest(g.froms, g.tos) AS x(f, t)
            JOIN p pf ON pf.v = x.f JOIN p pt ON pt.v = x.t)
    SELECT p.c, array_agg(g.rules[p.v + 1] ORDER BY p.v),
           count(*) > 1 OR bool_or(EXISTS (SELECT FROM e WHERE e.f = p.v AND e.t = p.v)),
           coalesce((SELECT array_agg(DISTINCT e.ct ORDER BY e.ct) FROM e
                      WHERE e.cf = p.c AND e.ct <> p.c), '{}')
      FROM p GROUP BY p.c ORDER BY 1;
END
$$;
COMMENT ON FUNCTION dispatch._rebuild_plan(text, bigint) IS
    'The groups (strongly connected components) of rules that the waiting changes of '
    'workspace ws (up to change upto) need rebuilt, in build order';

-- Plans and submits the rebuild of workspace w (locked, none running) for the
-- changes waiting up to now; a plan that cannot be submitted marks what it would
-- have built failed, with the reason.
CREATE FUNCTION dispatch._start_rebuild(w dispatch.workspaces) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    upto bigint := (SELECT max(c.change_id) FROM dispatch.artefact_changes c
                     WHERE c.workspace = w.workspace);
    jobs jsonb;
    outs text[];
    jl bigint;
    failure text;
BEGIN
    -- Whatever goes wrong with the plan (a rule's job that no longer validates, a
    -- limit) fails what it would have built, never the scheduler's cycle.
    BEGIN
        CREATE TEMP TABLE IF NOT EXISTS _plan (grp int, rules bigint[], cyclic boolean,
                                               after int[], name text) ON COMMIT DROP;
        TRUNCATE _plan;
        INSERT INTO _plan SELECT p.*, (SELECT string_agg(r.name, '+' ORDER BY r.rule_id)
                                         FROM dispatch.rules r WHERE r.rule_id = ANY (p.rules))
          FROM dispatch._rebuild_plan(w.workspace, upto) p;
        outs := ARRAY(SELECT o FROM _plan p, dispatch.rules r, unnest(r.outputs) o
                       WHERE r.rule_id = ANY (p.rules));
        IF cardinality(outs) > 0 THEN
            SELECT jsonb_agg(dispatch._build_job(p.rules, p.cyclic,
                                 ARRAY(SELECT q.name FROM _plan q WHERE q.grp = ANY (p.after) ORDER BY q.grp))
                             ORDER BY p.grp)
              INTO jobs FROM _plan p;
            jl := dispatch._submit(jsonb_build_object('name', 'rebuild ' || w.workspace, 'jobs', jobs),
                                   w.owner);
            INSERT INTO dispatch.build_jobs (job_id, workspace, rules, input_paths, input_globs, outputs)
            SELECT j.job_id, w.workspace, p.rules,
                   ARRAY(SELECT DISTINCT i FROM dispatch.rules r, unnest(r.input_paths) i WHERE r.rule_id = ANY (p.rules)),
                   ARRAY(SELECT DISTINCT i FROM dispatch.rules r, unnest(r.input_globs) i WHERE r.rule_id = ANY (p.rules)),
                   ARRAY(SELECT o FROM dispatch.rules r, unnest(r.outputs) o WHERE r.rule_id = ANY (p.rules))
              FROM _plan p JOIN dispatch.jobs j ON j.joblist_id = jl AND j.name = p.name;
            UPDATE dispatch.jobs SET builds = w.workspace WHERE joblist_id = jl;
            UPDATE dispatch.artefacts a SET state = 'building', reason = NULL
             WHERE a.workspace = w.workspace AND a.path = ANY (outs);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        failure := SQLERRM;
        jl := NULL;
    END;
    -- the changes are taken either way: a plan that failed is not tried again and again
    DELETE FROM dispatch.artefact_changes c WHERE c.workspace = w.workspace AND c.change_id <= upto;
    UPDATE dispatch.workspaces SET changed_at = NULL, rebuild = jl WHERE workspace = w.workspace;
    IF failure IS NOT NULL THEN
        UPDATE dispatch.artefacts a SET state = 'failed',
               reason = format('the rebuild could not be started: %s', failure)
         WHERE a.workspace = w.workspace AND a.state = 'stale'
           AND EXISTS (SELECT FROM dispatch.rules r
                        WHERE r.workspace = w.workspace AND a.path = ANY (r.outputs));
    END IF;
    RETURN jl;
END
$$;
COMMENT ON FUNCTION dispatch._start_rebuild(dispatch.workspaces) IS
    'Submits the rebuild the waiting changes of workspace w need; returns its joblist (NULL: '
    'nothing to build, or it could not be started, which fails the stale outputs with why)';

-- Whether workspace ws waits for the content of a changed file that a rule reads:
-- the agent uploads it right after the change's report (agent_put_blob), and a
-- rebuild started before would build from what the store held before.  After 30
-- seconds the rebuild goes ahead anyway (its job then fails for the missing input).
CREATE FUNCTION dispatch._content_pending(ws text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM dispatch.artefacts a
                    WHERE a.workspace = ws AND a.blob IS NULL AND a.sha256 IS NOT NULL
                      AND a.changed_at > now() - interval '30 seconds'
                      AND a.size <= dispatch._setting_bytes('dispatch.max_blob_size')
                      AND dispatch._rule_reads(ws, a.path))
$$;
COMMENT ON FUNCTION dispatch._content_pending(text) IS
    'Whether a changed file of workspace ws that a rule reads still waits for its content '
    '(for 30 seconds at most)';

-- The scheduler's call each cycle: ends finished rebuilds, starts those that are
-- due, collects unused blobs; returns the seconds to the next rebuild due (NULL:
-- none waits).
CREATE FUNCTION dispatch._rebuild_tick() RETURNS double precision
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    delay interval := current_setting('dispatch.rebuild_delay')::interval;
    w dispatch.workspaces;
BEGIN
    IF NOT EXISTS (SELECT FROM dispatch.workspaces x WHERE x.changed_at IS NOT NULL OR x.rebuild IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    UPDATE dispatch.workspaces x SET rebuild = NULL
      FROM dispatch.joblists l
     WHERE l.joblist_id = x.rebuild AND l.state NOT IN ('queued', 'running');
    FOR w IN SELECT * FROM dispatch.workspaces x
              WHERE x.rebuild IS NULL AND x.changed_at <= now() - delay
                AND NOT dispatch._content_pending(x.workspace)
              ORDER BY x.workspace FOR UPDATE SKIP LOCKED LOOP
        PERFORM dispatch._start_rebuild(w);
    END LOOP;
    PERFORM dispatch._collect_blobs();
    -- (one that waits for content looks again in a second, or when it comes: agent_put_blob)
    RETURN (SELECT min(greatest(extract(epoch FROM x.changed_at + delay - now()),
                                CASE WHEN dispatch._content_pending(x.workspace) THEN 1 ELSE 0.01 END))
              FROM dispatch.workspaces x WHERE x.rebuild IS NULL AND x.changed_at IS NOT NULL);
END
$$;
COMMENT ON FUNCTION dispatch._rebuild_tick() IS
    'Scheduler: ends finished rebuilds and starts due ones; seconds to the next due (NULL: none)';

CREATE FUNCTION dispatch.request_build(workspace text, path text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w dispatch.workspaces := dispatch._workspace_for_change(workspace);
BEGIN
    IF NOT EXISTS (SELECT FROM dispatch.rules r
                    WHERE r.workspace = w.workspace AND request_build.path = ANY (r.outputs)) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('no rule of workspace "%s" makes "%s"', w.workspace, path),
            HINT = 'Ask for a file a rule names among its outputs.';
    END IF;
    INSERT INTO dispatch.artefact_changes (workspace, kind, path) VALUES (w.workspace, 'request', path);
    -- due at once: a request is not a burst to wait out
    UPDATE dispatch.workspaces x SET changed_at = now() - current_setting('dispatch.rebuild_delay')::interval
     WHERE x.workspace = w.workspace;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.request_build(text, text) IS
    'Rebuild the file path of workspace and what it needs that is not fresh (after the '
    'running rebuild, if one runs)';

-- The "artefacts" part of a build job's flow (agent_poll): its inputs as the store
-- holds them, its outputs and the largest output the store takes.
CREATE FUNCTION dispatch._build_flow(job bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('workspace', b.workspace,
        'inputs', coalesce((SELECT jsonb_agg(jsonb_build_object('path', a.path, 'sha256', a.blob,
                                                                'size', a.size) ORDER BY a.path)
                              FROM dispatch.artefacts a
                             WHERE a.workspace = b.workspace AND a.blob IS NOT NULL
                               AND (a.path = ANY (b.input_paths)
                                    OR EXISTS (SELECT FROM unnest(b.input_globs) g
                                                WHERE a.path ~ dispatch._glob_regex(g)))), '[]'),
        'outputs', to_jsonb(b.outputs),
        'max_blob_size', dispatch._setting_bytes('dispatch.max_blob_size'))
      FROM dispatch.build_jobs b WHERE b.job_id = job
$$;
COMMENT ON FUNCTION dispatch._build_flow(bigint) IS
    'What build job job gets in its flow: its workspace, inputs (path, sha256, size), outputs '
    'and the store''s size limit';

CREATE FUNCTION dispatch.agent_blob(node text, job bigint, attempt int, sha256 text) RETURNS bytea
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs := dispatch._agent_job(node, job, attempt);
    content bytea;
BEGIN
    IF NOT coalesce((dispatch._build_flow(j.job_id) -> 'inputs') @> jsonb_build_array(
                        jsonb_build_object('sha256', agent_blob.sha256)), false) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('the job reads no file with SHA-256 %s', sha256),
            DETAIL = format('It is job %s, attempt %s.', job, attempt);
    END IF;
    UPDATE dispatch.blobs b SET used_at = now() WHERE b.sha256 = agent_blob.sha256
    RETURNING b.content INTO content;
    RETURN content;
END
$$;
COMMENT ON FUNCTION dispatch.agent_blob(text, bigint, int, text) IS
    'Agent: the content of an input of a build job running on the node';

CREATE FUNCTION dispatch.agent_store_output(node text, job bigint, attempt int, path text,
                                            sha256 text, content bytea) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j dispatch.jobs := dispatch._agent_job(node, job, attempt);
BEGIN
    IF NOT EXISTS (SELECT FROM dispatch.build_jobs b
                    WHERE b.job_id = j.job_id AND agent_store_output.path = ANY (b.outputs)) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('the job makes no output "%s"', path),
            DETAIL = format('It is job %s, attempt %s.', job, attempt);
    END IF;
    PERFORM dispatch._store_blob(sha256, content, format('output "%s"', path));
    INSERT INTO dispatch.build_outputs AS o (job_id, attempt, path, sha256, size)
    VALUES (j.job_id, j.attempt, path, sha256, octet_length(content))
    ON CONFLICT ON CONSTRAINT build_outputs_pkey DO UPDATE SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size;
END
$$;
COMMENT ON FUNCTION dispatch.agent_store_output(text, bigint, int, text, text, bytea) IS
    'Agent: an output a build job running on the node made, for the store (checked against '
    'its SHA-256)';

-- Why an attempt of build job j that exited well still failed (finish: the agent's
-- finish report): what the agent said of its outputs, or one it did not store.
CREATE FUNCTION dispatch._build_problem(j dispatch.jobs, finish jsonb) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(finish ->> 'outputs_error',
                    (SELECT format('output "%s" was not stored', o)
                       FROM dispatch.build_jobs b, unnest(b.outputs) WITH ORDINALITY AS x(o, n)
                      WHERE b.job_id = j.job_id
                        AND NOT EXISTS (SELECT FROM dispatch.build_outputs s
                                         WHERE s.job_id = j.job_id AND s.attempt = j.attempt
                                           AND s.path = x.o)
                      ORDER BY x.n LIMIT 1))
$$;
COMMENT ON FUNCTION dispatch._build_problem(dispatch.jobs, jsonb) IS
    'Why build job j''s attempt failed although its command succeeded, or NULL';

-- The build jobs among jobs have ended for good (_finish_jobs): their outputs are
-- what they stored (fresh), failed, or stale again; a newer change that made one
-- stale meanwhile keeps it stale.
CREATE FUNCTION dispatch._builds_ended(jobs bigint[]) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO dispatch.artefacts AS a (workspace, path, sha256, size, blob, built_by, nodes, mtime)
    SELECT j.builds, o.path, o.sha256, o.size, o.sha256, j.job_id, ARRAY[j.node], now()
      FROM dispatch.jobs j JOIN dispatch.build_outputs o ON o.job_id = j.job_id AND o.attempt = j.attempt
     WHERE j.job_id = ANY (jobs) AND j.state = 'succeeded'
    ON CONFLICT (workspace, path) DO UPDATE
       SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size, blob = EXCLUDED.blob,
           built_by = EXCLUDED.built_by, nodes = EXCLUDED.nodes, mtime = EXCLUDED.mtime,
           changed_at = CASE WHEN a.sha256 IS DISTINCT FROM EXCLUDED.sha256 THEN now() ELSE a.changed_at END,
           state = CASE WHEN a.state = 'stale' THEN 'stale' ELSE 'fresh' END,
           reason = CASE WHEN a.state = 'stale' THEN a.reason END;
    UPDATE dispatch.artefacts a
       SET state = CASE WHEN j.state IN ('failed', 'lost') THEN 'failed' ELSE 'stale' END,
           reason = CASE WHEN j.state = 'failed'
                         THEN format('job "%s" failed: %s', j.name, coalesce(j.reason, 'no reason given'))
                         ELSE format('job "%s" %s', j.name, j.state) END
      FROM dispatch.jobs j JOIN dispatch.build_jobs b USING (job_id)
     WHERE j.job_id = ANY (jobs) AND j.state <> 'succeeded'
       AND a.workspace = b.workspace AND a.path = ANY (b.outputs) AND a.state = 'building';
$$;
COMMENT ON FUNCTION dispatch._builds_ended(bigint[]) IS
    'Records what the build jobs among jobs, which ended for good, made of their outputs';
