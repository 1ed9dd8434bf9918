------------------------------------------------------------------------------
-- Rules: how a workspace's files are built from others, and the graph they make
------------------------------------------------------------------------------
--
-- dispatch.create_rule(name, spec) with spec {"workspace", "inputs": [path or
-- glob], "outputs": [path], "job": {...}, "max_passes"}: the job (command, files,
-- needs, constraints, env, timeout, retries, template, replacements, as a job of a
-- joblist) makes the outputs from the inputs.  Rules are named uniquely and owned
-- like goals: by their workspace's owner, who alone (or an admin) changes them.
-- A rule B depends on a rule A when an output of A is one of B's inputs (or
-- matches one of its globs); these dependencies may form cycles (LaTeX: the .aux
-- a run writes is read by the next, and by bibtex, whose .bbl latex reads).
-- src/core/graph.c answers every question about the graph: the stale set of a
-- change, its strongly connected components (a cycle is built as one unit,
-- 79_rebuilds.sql) and their order.  The graph is derived when asked, from the
-- rules' inputs split into literal paths (matched by equality) and globs.

CREATE TABLE dispatch.rules (
    rule_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    workspace       text NOT NULL REFERENCES dispatch.workspaces ON DELETE CASCADE,
    spec            jsonb NOT NULL,
    input_paths     text[] NOT NULL,
    input_globs     text[] NOT NULL,
    outputs         text[] NOT NULL,
    max_passes      int NOT NULL CHECK (max_passes BETWEEN 1 AND 100),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX rules_workspace_idx ON dispatch.rules (workspace, rule_id);
COMMENT ON TABLE dispatch.rules IS
    'Build rules of workspaces: the job that makes outputs from inputs';

CREATE FUNCTION dispatch._validate_rule(name text, spec jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
    seen text[] := '{}';
BEGIN
    IF name IS NULL OR name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid rule name "%s"', name),
            HINT = 'A rule name is 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit.';
    END IF;
    PERFORM dispatch._json_typed('object', spec, '', 'rule spec');
    PERFORM dispatch._check_keys(spec, ARRAY['workspace', 'inputs', 'outputs', 'job', 'max_passes'],
                                 '', 'rule spec');
    PERFORM dispatch._require_key(spec, 'workspace', '', 'rule spec');
    PERFORM dispatch._json_text(spec -> 'workspace', 'workspace', 'workspace');
    FOR e IN SELECT * FROM dispatch._json_items(spec, 'inputs', '', 'rule spec', false, NULL, 1000) LOOP
        PERFORM dispatch._json_text(e.item, e.item_path, 'an input', 1024);
        IF dispatch._artefact_path_problem(e.item #>> '{}') IS NOT NULL THEN
            PERFORM dispatch._spec_error(e.item_path, dispatch._artefact_path_problem(e.item #>> '{}'));
        END IF;
    END LOOP;
    FOR e IN SELECT * FROM dispatch._json_items(spec, 'outputs', '', 'rule spec', true, 'a rule makes at least one output', 1000) LOOP
        PERFORM dispatch._json_text(e.item, e.item_path, 'an output', 1024);
        IF dispatch._artefact_path_problem(e.item #>> '{}') IS NOT NULL THEN
            PERFORM dispatch._spec_error(e.item_path, dispatch._artefact_path_problem(e.item #>> '{}'));
        ELSIF e.item #>> '{}' ~ '[*?]' THEN
            PERFORM dispatch._spec_error(e.item_path, 'an output is a path, not a glob',
                'A rule names every file it makes, so that its builds can be stored and checked.');
        ELSIF e.item #>> '{}' = ANY (seen) THEN
            PERFORM dispatch._spec_error(e.item_path, format('output "%s" is named twice', e.item #>> '{}'));
        END IF;
        seen := seen || (e.item #>> '{}');
    END LOOP;
    PERFORM dispatch._require_key(spec, 'job', '', 'rule spec');
    PERFORM dispatch._json_typed('object', spec -> 'job', 'job', 'job');
    IF spec -> 'job' ?| ARRAY['name', 'after', 'when', 'matrix', 'array', 'for_each', 'group'] THEN
        PERFORM dispatch._spec_error(dispatch._path('job', (SELECT k FROM jsonb_object_keys(spec -> 'job') k
                 WHERE k IN ('name', 'after', 'when', 'matrix', 'array', 'for_each', 'group') ORDER BY k LIMIT 1)),
            'a rule''s job has no name or data-flow keys',
            'The rule''s name names its job; the order of builds follows from inputs and outputs.');
    END IF;
    PERFORM dispatch._validate_job(spec -> 'job' || jsonb_build_object('name', name), 'job');
    IF spec ? 'max_passes' THEN
        PERFORM dispatch._json_int(spec -> 'max_passes', 1, 100, 'max_passes', 'max_passes');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._validate_rule(text, jsonb) IS
    'Fails unless spec is a valid rule spec for a rule called name';

-- Stores rule name (a new one when id is NULL) in the caller's workspace; its
-- outputs that no file stands for yet are recorded stale (they were never built).
CREATE FUNCTION dispatch._rule_store(name text, spec jsonb, id bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w dispatch.workspaces;
    inputs text[];
    clash record;
BEGIN
    PERFORM dispatch._validate_rule(name, spec);
    w := dispatch._workspace_for_change(spec ->> 'workspace');
    inputs := ARRAY(SELECT jsonb_array_elements_text(coalesce(spec -> 'inputs', '[]')));
    SELECT r.name, o INTO clash
      FROM dispatch.rules r, jsonb_array_elements_text(_rule_store.spec -> 'outputs') o
     WHERE r.workspace = w.workspace AND r.rule_id IS DISTINCT FROM id AND o = ANY (r.outputs)
     ORDER BY r.rule_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('rule "%s" makes "%s" already', clash.name, clash.o),
            HINT = 'A file is made by one rule.';
    END IF;
    IF id IS NULL THEN
        IF EXISTS (SELECT FROM dispatch.rules r WHERE r.name = _rule_store.name) THEN
            RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
                MESSAGE = format('rule "%s" already exists', name),
                HINT = 'Use dispatch.alter_rule() to change it.';
        END IF;
        IF (SELECT count(*) FROM dispatch.rules r WHERE r.workspace = w.workspace)
           >= current_setting('dispatch.max_rules_per_workspace')::bigint THEN
            RAISE EXCEPTION USING ERRCODE = 'configuration_limit_exceeded',
                MESSAGE = format('workspace "%s" has dispatch.max_rules_per_workspace = %s rules',
                                 w.workspace, current_setting('dispatch.max_rules_per_workspace'));
        END IF;
        INSERT INTO dispatch.rules (name, workspace, spec, input_paths, input_globs, outputs,
                                    max_passes)
        VALUES (name, w.workspace, '{}', '{}', '{}', '{}', 1) RETURNING rule_id INTO id;
    END IF;
    UPDATE dispatch.rules r
       SET spec = _rule_store.spec,
           input_paths = ARRAY(SELECT i FROM unnest(inputs) i WHERE i !~ '[*?]'),
           input_globs = ARRAY(SELECT i FROM unnest(inputs) i WHERE i ~ '[*?]'),
           outputs = ARRAY(SELECT jsonb_array_elements_text(_rule_store.spec -> 'outputs')),
           max_passes = coalesce((_rule_store.spec ->> 'max_passes')::int, 10)
     WHERE r.rule_id = id;
    INSERT INTO dispatch.artefacts (workspace, path, state, reason)
    SELECT w.workspace, o, 'stale', 'never built'
      FROM jsonb_array_elements_text(spec -> 'outputs') o
    ON CONFLICT DO NOTHING;
    RETURN id;
END
$$;
COMMENT ON FUNCTION dispatch._rule_store(text, jsonb, bigint) IS
    'Stores a validated rule spec into rule id (a new rule when NULL); returns its id';

CREATE FUNCTION dispatch._rule_for_change(name text) RETURNS dispatch.rules
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r dispatch.rules;
BEGIN
    SELECT * INTO r FROM dispatch.rules x WHERE x.name = _rule_for_change.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('rule "%s" does not exist', name);
    END IF;
    PERFORM dispatch._workspace_for_change(r.workspace);
    RETURN r;
END
$$;
COMMENT ON FUNCTION dispatch._rule_for_change(text) IS
    'Locks and returns rule name for a change by the caller (its workspace''s owner or an admin)';

CREATE FUNCTION dispatch.create_rule(name text, spec jsonb) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._rule_store(name, spec, NULL)
$$;
COMMENT ON FUNCTION dispatch.create_rule(text, jsonb) IS
    'Create a rule of a workspace the caller owns: the job that makes outputs from inputs';

CREATE FUNCTION dispatch.alter_rule(name text, spec jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r dispatch.rules := dispatch._rule_for_change(name);
BEGIN
    IF spec ->> 'workspace' IS DISTINCT FROM r.workspace THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('rule "%s" belongs to workspace "%s"', name, r.workspace),
            HINT = 'A rule stays in its workspace; drop it and create it in the other.';
    END IF;
    PERFORM dispatch._rule_store(name, spec, r.rule_id);
    -- what it makes must be made again
    PERFORM dispatch._queue_rebuild(r.workspace, r.rule_id);
END
$$;
COMMENT ON FUNCTION dispatch.alter_rule(text, jsonb) IS
    'Replace the spec of a rule; its outputs and what depends on them are rebuilt';

CREATE FUNCTION dispatch.drop_rule(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r dispatch.rules := dispatch._rule_for_change(name);
BEGIN
    DELETE FROM dispatch.rules WHERE rule_id = r.rule_id;
    -- what it made stays as it is, a file nothing makes any more
    UPDATE dispatch.artefacts a SET reason = NULL,
           state = CASE WHEN a.sha256 IS NULL THEN a.state ELSE 'fresh' END
     WHERE a.workspace = r.workspace AND a.path = ANY (r.outputs) AND a.state <> 'building';
    DELETE FROM dispatch.artefacts a
     WHERE a.workspace = r.workspace AND a.path = ANY (r.outputs) AND a.sha256 IS NULL;
END
$$;
COMMENT ON FUNCTION dispatch.drop_rule(text) IS
    'Drop a rule; the files it made stay';

-- Whether some rule of workspace ws reads path.
CREATE FUNCTION dispatch._rule_reads(ws text, path text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM dispatch.rules r
                    WHERE r.workspace = ws
                      AND (path = ANY (r.input_paths)
                           OR EXISTS (SELECT FROM unnest(r.input_globs) g
                                       WHERE path ~ dispatch._glob_regex(g))))
$$;
COMMENT ON FUNCTION dispatch._rule_reads(text, text) IS
    'Whether a rule of workspace ws has path among its inputs';

-- The rule graph of workspace ws: its rules (node i is rules[i + 1], in creation
-- order) and edges froms[k] -> tos[k], "rule froms[k] reads what rule tos[k] makes".
CREATE FUNCTION dispatch._rule_graph(ws text, OUT rules bigint[], OUT froms int[], OUT tos int[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH r AS (
        SELECT x.*, (row_number() OVER (ORDER BY x.rule_id) - 1)::int AS i
          FROM dispatch.rules x WHERE x.workspace = ws),
    e AS (
        SELECT b.i AS reader, a.i AS maker FROM r a, r b
         WHERE a.outputs && b.input_paths
            OR EXISTS (SELECT FROM unnest(a.outputs) o, unnest(b.input_globs) g
                        WHERE o ~ dispatch._glob_regex(g)))
    SELECT (SELECT coalesce(array_agg(r.rule_id ORDER BY r.i), '{}') FROM r),
           (SELECT array_agg(e.reader ORDER BY e.reader, e.maker) FROM e),
           (SELECT array_agg(e.maker ORDER BY e.reader, e.maker) FROM e)
$$;
COMMENT ON FUNCTION dispatch._rule_graph(text) IS
    'The rules of workspace ws and which reads what which makes, as a graph for core/graph.c';

-- Files of workspace ws changed (paths): the outputs of every rule that reads one
-- of them, and of every rule depending on those, are stale, and the change waits
-- for the next rebuild (79_rebuilds.sql).
CREATE FUNCTION dispatch._files_changed(ws text, paths text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record := dispatch._rule_graph(ws);
    readers int[];
BEGIN
    readers := ARRAY(SELECT (i - 1)::int FROM unnest(g.rules) WITH ORDINALITY AS x(id, i)
                       JOIN dispatch.rules r ON r.rule_id = x.id
                      WHERE r.input_paths && paths
                         OR EXISTS (SELECT FROM unnest(r.input_globs) gl, unnest(paths) p
                                     WHERE p ~ dispatch._glob_regex(gl)));
    INSERT INTO dispatch.artefact_changes (workspace, path) SELECT ws, p FROM unnest(paths) p;
    UPDATE dispatch.workspaces SET changed_at = now() WHERE workspace = ws;
    IF cardinality(readers) = 0 THEN
        RETURN;
    END IF;
    UPDATE dispatch.artefacts a SET state = 'stale', reason = 'an input changed'
      FROM unnest(dispatch._graph_stale(g.froms, g.tos, cardinality(g.rules), readers)) s
      JOIN dispatch.rules r ON r.rule_id = g.rules[s + 1]
     WHERE a.workspace = ws AND a.path = ANY (r.outputs);
END
$$;
COMMENT ON FUNCTION dispatch._files_changed(text, text[]) IS
    'Marks what depends on the changed files (paths) of workspace ws stale and queues the '
    'change for a rebuild';
