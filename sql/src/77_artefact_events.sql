------------------------------------------------------------------------------
-- What watching agents report: file changes, content for the store, followed files
------------------------------------------------------------------------------
--
-- dispatch.agent_file_events(node, events) takes a batch of what a node's watcher
-- saw, in order (docs/artefacts.md, "Watching"):
--   {"workspace", "path", "kind": "changed", "size", "mtime_ns", "sha256"}
--   {"workspace", "path", "kind": "deleted"}
--   {"workspace", "path", "kind": "append", "offset", "data"}    (a followed file)
--   {"workspace", "kind": "rescanned"}                           (a full rescan ended)
-- A malformed batch is refused whole (22023, like agent_report's); an event for a
-- workspace that is not bound to the node, for a path no workspace file may have, or
-- beyond its limits, is rejected alone
-- and said so in the answer, {"accepted": n, "rejected": [{"index", "message"}],
-- "want": [{"workspace", "path", "sha256"}]}: the content the store should get,
-- of changed files that some rule reads and the store does not hold; the agent
-- sends it with agent_put_blob.  A change whose SHA-256 differs from what was known
-- marks what depends on the file stale and queues it for the next rebuild
-- (79_rebuilds.sql); a deletion does the same.

CREATE TABLE dispatch.followed_files (
    workspace       text NOT NULL REFERENCES dispatch.workspaces ON DELETE CASCADE,
    path            text NOT NULL,
    "offset"        bigint NOT NULL CHECK ("offset" >= 0),
    data            text NOT NULL,
    at              timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (workspace, path, "offset")
);
COMMENT ON TABLE dispatch.followed_files IS
    'The latest content of followed files (dispatch-agent --follow), as it was appended';

CREATE FUNCTION dispatch._check_file_events(events jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM dispatch._check_agent_batch(events, 'events');
    FOR r IN SELECT e, format('[%s]', o - 1) AS p
               FROM jsonb_array_elements(events) WITH ORDINALITY AS x(e, o) LOOP
        PERFORM dispatch._json_typed('object', r.e, r.p, 'an event');
        PERFORM dispatch._check_keys(r.e, ARRAY['workspace', 'path', 'kind', 'size', 'mtime_ns',
                                                'sha256', 'offset', 'data'], r.p, 'an event');
        PERFORM dispatch._require_key(r.e, 'workspace', r.p, 'an event');
        PERFORM dispatch._json_text(r.e -> 'workspace', dispatch._path(r.p, 'workspace'), 'workspace');
        PERFORM dispatch._require_key(r.e, 'kind', r.p, 'an event');
        PERFORM dispatch._json_choice(r.e -> 'kind', ARRAY['changed', 'deleted', 'append', 'rescanned'],
            dispatch._path(r.p, 'kind'), 'kind must be "changed", "deleted", "append" or "rescanned"');
        CONTINUE WHEN r.e ->> 'kind' = 'rescanned';
        PERFORM dispatch._require_key(r.e, 'path', r.p, 'an event');
        PERFORM dispatch._json_text(r.e -> 'path', dispatch._path(r.p, 'path'), 'path', 1024);
        IF r.e ->> 'kind' = 'changed' THEN
            PERFORM dispatch._require_key(r.e, 'size', r.p, 'a changed event');
            PERFORM dispatch._json_int(r.e -> 'size', 0, 9007199254740992,
                                       dispatch._path(r.p, 'size'), 'size');
            PERFORM dispatch._require_key(r.e, 'mtime_ns', r.p, 'a changed event');
            PERFORM dispatch._json_int(r.e -> 'mtime_ns', 0, 9223372036854775807,
                                       dispatch._path(r.p, 'mtime_ns'), 'mtime_ns');
            PERFORM dispatch._require_key(r.e, 'sha256', r.p, 'a changed event');
            IF NOT coalesce(r.e ->> 'sha256' ~ '^[0-9a-f]{64}$', false) THEN
                PERFORM dispatch._spec_error(dispatch._path(r.p, 'sha256'),
                    'sha256 must be 64 lower-case hex digits');
            END IF;
        ELSIF r.e ->> 'kind' = 'append' THEN
            PERFORM dispatch._require_key(r.e, 'offset', r.p, 'an append event');
            PERFORM dispatch._json_int(r.e -> 'offset', 0, 9223372036854775807,
                                       dispatch._path(r.p, 'offset'), 'offset');
            PERFORM dispatch._require_key(r.e, 'data', r.p, 'an append event');
            PERFORM dispatch._json_text(r.e -> 'data', dispatch._path(r.p, 'data'), 'data',
                                        65536);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._check_file_events(jsonb) IS
    'Fails unless events is a well-formed batch of file events of a watching agent';

-- A followed file's new text at offset; what lies past dispatch.max_follow_size
-- behind its end is dropped.  A write at an offset below what is kept means the
-- file was truncated: what was kept from there on goes.
CREATE FUNCTION dispatch._follow_append(ws text, path text, at_offset bigint, data text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keep bigint := dispatch._setting_bytes('dispatch.max_follow_size');
BEGIN
    DELETE FROM dispatch.followed_files f
     WHERE f.workspace = ws AND f.path = _follow_append.path AND f."offset" >= at_offset;
    INSERT INTO dispatch.followed_files (workspace, path, "offset", data)
    VALUES (ws, path, at_offset, data);
    DELETE FROM dispatch.followed_files f
     WHERE f.workspace = ws AND f.path = _follow_append.path
       AND f."offset" + octet_length(f.data) <= at_offset + octet_length(_follow_append.data) - keep;
END
$$;
COMMENT ON FUNCTION dispatch._follow_append(text, text, bigint, text) IS
    'Records text appended at offset to followed file path of workspace ws, keeping its latest';

CREATE FUNCTION dispatch.agent_file_events(node text, events jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
    r record;
    a dispatch.artefacts;
    accepted int := 0;
    rejected jsonb := '[]';
    want jsonb := '[]';
    changed text[] := '{}';
    changed_ws text[] := '{}';
    room bigint;
BEGIN
    PERFORM dispatch._check_file_events(events);
    FOR r IN SELECT x.e, (x.o - 1)::int AS i, w.workspace AS bound
               FROM jsonb_array_elements(events) WITH ORDINALITY AS x(e, o)
               LEFT JOIN dispatch.workspaces w ON w.workspace = x.e ->> 'workspace' AND w.node = n.node
              ORDER BY x.o LOOP
        IF r.bound IS NULL THEN
            rejected := rejected || jsonb_build_object('index', r.i, 'message',
                format('workspace "%s" is not watched by node "%s"', r.e ->> 'workspace', n.node));
            CONTINUE;
        END IF;
        -- a name no workspace path may have (a newline, say) is refused alone: a file
        -- someone named so must not stop the node's other reports
        IF r.e ->> 'kind' <> 'rescanned' AND dispatch._artefact_path_problem(r.e ->> 'path') IS NOT NULL THEN
            rejected := rejected || jsonb_build_object('index', r.i, 'message',
                format('path %s: %s', to_jsonb(r.e ->> 'path'), dispatch._artefact_path_problem(r.e ->> 'path')));
            CONTINUE;
        END IF;
        accepted := accepted + 1;
        CASE r.e ->> 'kind'
        WHEN 'rescanned' THEN
            UPDATE dispatch.workspaces SET rescanned_at = now() WHERE workspace = r.bound;
        WHEN 'append' THEN
            PERFORM dispatch._follow_append(r.bound, r.e ->> 'path', (r.e ->> 'offset')::bigint,
                                            r.e ->> 'data');
        WHEN 'deleted' THEN
            -- a file a rule makes stays known, to be made again; a source goes
            UPDATE dispatch.artefacts x
               SET sha256 = NULL, size = NULL, mtime = NULL, blob = NULL, nodes = '{}',
                   state = 'stale', reason = 'deleted', changed_at = now()
             WHERE x.workspace = r.bound AND x.path = r.e ->> 'path'
               AND EXISTS (SELECT FROM dispatch.rules u
                            WHERE u.workspace = r.bound AND x.path = ANY (u.outputs))
            RETURNING * INTO a;
            IF NOT FOUND THEN
                DELETE FROM dispatch.artefacts x WHERE x.workspace = r.bound AND x.path = r.e ->> 'path'
                RETURNING * INTO a;
            END IF;
            IF FOUND THEN
                changed := changed || (r.e ->> 'path');
                changed_ws := changed_ws || r.bound;
            END IF;
        ELSE
            SELECT * INTO a FROM dispatch.artefacts x
             WHERE x.workspace = r.bound AND x.path = r.e ->> 'path' FOR UPDATE;
            IF NOT FOUND THEN
                SELECT current_setting('dispatch.max_artefacts_per_workspace')::bigint - count(*)
                  INTO room FROM dispatch.artefacts x WHERE x.workspace = r.bound;
                IF room <= 0 THEN
                    accepted := accepted - 1;
                    rejected := rejected || jsonb_build_object('index', r.i, 'message',
                        format('workspace "%s" has dispatch.max_artefacts_per_workspace = %s files',
                               r.bound, current_setting('dispatch.max_artefacts_per_workspace')));
                    CONTINUE;
                END IF;
            END IF;
            INSERT INTO dispatch.artefacts AS x (workspace, path, size, mtime, sha256, nodes, blob)
            VALUES (r.bound, r.e ->> 'path', (r.e ->> 'size')::bigint,
                    to_timestamp((r.e ->> 'mtime_ns')::numeric / 1e9), r.e ->> 'sha256',
                    ARRAY[n.node],
                    (SELECT b.sha256 FROM dispatch.blobs b WHERE b.sha256 = r.e ->> 'sha256'))
            ON CONFLICT (workspace, path) DO UPDATE
               SET size = EXCLUDED.size, mtime = EXCLUDED.mtime, sha256 = EXCLUDED.sha256,
                   nodes = EXCLUDED.nodes, blob = EXCLUDED.blob,
                   changed_at = CASE WHEN x.sha256 IS DISTINCT FROM EXCLUDED.sha256 THEN now()
                                     ELSE x.changed_at END;
            IF a.sha256 IS DISTINCT FROM r.e ->> 'sha256' THEN
                changed := changed || (r.e ->> 'path');
                changed_ws := changed_ws || r.bound;
            END IF;
            IF NOT EXISTS (SELECT FROM dispatch.blobs b WHERE b.sha256 = r.e ->> 'sha256')
               AND dispatch._rule_reads(r.bound, r.e ->> 'path')
               AND (r.e ->> 'size')::bigint <= dispatch._setting_bytes('dispatch.max_blob_size') THEN
                want := want || jsonb_build_object('workspace', r.bound, 'path', r.e ->> 'path',
                                                   'sha256', r.e ->> 'sha256');
            END IF;
        END CASE;
    END LOOP;
    IF cardinality(changed) > 0 THEN
        PERFORM dispatch._files_changed(w, array_agg(c.path))
           FROM unnest(changed_ws, changed) AS c(w, path) GROUP BY c.w;
        PERFORM dispatch.wake_scheduler();
    END IF;
    RETURN jsonb_build_object('accepted', accepted, 'rejected', rejected, 'want', want);
END
$$;
COMMENT ON FUNCTION dispatch.agent_file_events(text, jsonb) IS
    'Agent: what the watcher saw (changed, deleted, appended files, rescans) in the '
    'workspaces bound to the node; answers which contents the store wants';

CREATE FUNCTION dispatch.agent_put_blob(node text, workspace text, path text, sha256 text,
                                        content bytea) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._agent_node(node);
    a dispatch.artefacts;
BEGIN
    SELECT x.* INTO a FROM dispatch.artefacts x JOIN dispatch.workspaces w USING (workspace)
     WHERE x.workspace = agent_put_blob.workspace AND x.path = agent_put_blob.path
       AND w.node = n.node
     FOR UPDATE OF x;
    IF NOT FOUND OR a.sha256 IS DISTINCT FROM agent_put_blob.sha256 THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('content of "%s" in workspace "%s" refused', path, workspace),
            DETAIL = CASE WHEN NOT FOUND
                          THEN format('Node "%s" reported no such file there.', n.node)
                          ELSE format('The file''s SHA-256 is %s now.', coalesce(a.sha256, 'unknown')) END;
    END IF;
    PERFORM dispatch._store_blob(sha256, content, format('file "%s"', path));
    UPDATE dispatch.artefacts x SET blob = agent_put_blob.sha256
     WHERE x.workspace = a.workspace AND x.path = a.path;
    PERFORM dispatch.wake_scheduler();      -- a rebuild may have waited for it
END
$$;
COMMENT ON FUNCTION dispatch.agent_put_blob(text, text, text, text, bytea) IS
    'Agent: the content of a watched file the store wants (agent_file_events said so), '
    'checked against its SHA-256';

CREATE FUNCTION dispatch.followed_text(workspace text, path text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w dispatch.workspaces;
BEGIN
    SELECT * INTO w FROM dispatch.workspaces x WHERE x.workspace = followed_text.workspace;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('workspace "%s" does not exist', workspace);
    END IF;
    IF NOT dispatch._caller_may_read(w.owner) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied for the files of workspace "%s"', workspace),
            HINT = 'Only its owner and members of dispatch_admin read them.';
    END IF;
    RETURN (SELECT string_agg(f.data, '' ORDER BY f."offset") FROM dispatch.followed_files f
             WHERE f.workspace = w.workspace AND f.path = followed_text.path);
END
$$;
COMMENT ON FUNCTION dispatch.followed_text(text, text) IS
    'What is kept of followed file path of workspace (its latest dispatch.max_follow_size '
    'bytes), for its owner and admins; NULL when nothing was streamed';
