------------------------------------------------------------------------------
-- Artefacts: workspaces of files, their states, and the content-addressed store
------------------------------------------------------------------------------
--
-- A workspace is a tree of files that one node's agent watches (dispatch-agent
-- --watch WORKSPACE=DIR, docs/artefacts.md) and that rules (78_rules.sql) build
-- into more files.  An artefact is a file of a workspace, named by its relative
-- path: its size, mtime and SHA-256 as last reported or built, its state (fresh,
-- stale, building, failed), the job that last built it and the nodes that hold
-- it.  File content that builds need on other nodes lives in the store, blobs
-- keyed by SHA-256 (so the same content is kept once), within
-- dispatch.max_blob_size per file and dispatch.max_store_size in all; a blob no
-- artefact refers to is removed once it has not been used for a while (the
-- rebuild tick, 79_rebuilds.sql, collects them).
--
-- Only an admin binds a workspace to the node whose agent may report its files
-- (the files of a user's workspace reach whoever owns it: a workspace name an
-- agent was told to watch must not be squatted by another role); the workspace's
-- owner then writes its rules, and its rebuilds run as the owner's joblists.

CREATE TABLE dispatch.workspaces (
    workspace       text PRIMARY KEY CHECK (workspace ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    owner           name NOT NULL,
    node            text REFERENCES dispatch.nodes ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- the last change not yet in a rebuild, and the rebuild in flight (79_rebuilds.sql)
    changed_at      timestamptz,
    rebuild         bigint REFERENCES dispatch.joblists ON DELETE SET NULL,
    rescanned_at    timestamptz
);
COMMENT ON TABLE dispatch.workspaces IS
    'Workspaces: trees of files that one node watches and rules build, owned by a role';

CREATE TABLE dispatch.blobs (
    sha256          text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size            bigint NOT NULL CHECK (size >= 0),
    content         bytea NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    used_at         timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE dispatch.blobs IS
    'The artefact store: file contents by SHA-256, each kept once';

CREATE TABLE dispatch.artefacts (
    workspace       text NOT NULL REFERENCES dispatch.workspaces ON DELETE CASCADE,
    path            text NOT NULL,
    size            bigint,
    mtime           timestamptz,
    sha256          text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    state           text NOT NULL DEFAULT 'fresh'
                    CHECK (state IN ('fresh', 'stale', 'building', 'failed')),
    reason          text,
    built_by        bigint,
    nodes           text[] NOT NULL DEFAULT '{}',
    -- its content in the store (NULL: not stored)
    blob            text REFERENCES dispatch.blobs,
    changed_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (workspace, path)
);
CREATE INDEX artefacts_blob_idx ON dispatch.artefacts (blob) WHERE blob IS NOT NULL;
COMMENT ON TABLE dispatch.artefacts IS
    'Files of workspaces: what their node reported or a build made, and their state';

-- A path as a workspace names a file: relative, "/"-separated, no empty, "." or
-- ".." component, no control character, at most 1024 bytes.  The agent writes what
-- a path names into a job's work dir, so this is checked wherever a path comes in.
CREATE FUNCTION dispatch._artefact_path_problem(path text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN path IS NULL OR path = '' THEN 'a path must not be empty'
        WHEN octet_length(path) > 1024 THEN 'a path may have at most 1024 bytes'
        WHEN path ~ '[[:cntrl:]]' THEN 'a path must not contain control characters'
        WHEN path ~ '^/' THEN 'a path must be relative to its workspace'
        WHEN path ~ '(^|/)(\.\.?)?(/|$)' THEN 'a path must not have an empty, "." or ".." component'
    END
$$;
COMMENT ON FUNCTION dispatch._artefact_path_problem(text) IS
    'What is wrong with path as the path of a file in a workspace, or NULL';

-- A glob of a rule's inputs as a regular expression over paths: "*" and "?" stay
-- within a component, "**/" spans any number of them, everything else is literal.
CREATE FUNCTION dispatch._glob_regex(glob text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '^' || string_agg(CASE WHEN t = '**/' THEN '(.*/)?'
                                  WHEN t = '*' THEN '[^/]*'
                                  WHEN t = '?' THEN '[^/]'
                                  ELSE regexp_replace(t, '([^A-Za-z0-9_/-])', '\\\1', 'g') END,
                             '' ORDER BY o) || '$'
      FROM regexp_matches(glob, '\*\*/|\*|\?|[^*?]+', 'g') WITH ORDINALITY AS m(x, o),
           LATERAL (SELECT m.x[1] AS t) y
$$;
COMMENT ON FUNCTION dispatch._glob_regex(text) IS
    'The regular expression matching the paths glob names (*, ? within a component; **/ any depth)';

CREATE FUNCTION dispatch._workspace_for_change(name text) RETURNS dispatch.workspaces
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w dispatch.workspaces;
BEGIN
    SELECT * INTO w FROM dispatch.workspaces x WHERE x.workspace = name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('workspace "%s" does not exist', name);
    END IF;
    IF w.owner <> dispatch.current_caller() AND NOT dispatch._caller_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('workspace "%s" belongs to %s', name, w.owner),
            HINT = 'Only its owner or a member of dispatch_admin may change it.';
    END IF;
    RETURN w;
END
$$;
COMMENT ON FUNCTION dispatch._workspace_for_change(text) IS
    'Locks and returns workspace name for a change by the caller (its owner or an admin)';

CREATE FUNCTION dispatch.create_workspace(name text, owner name, node text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL OR name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid workspace name "%s"', name),
            HINT = 'A workspace name is 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = owner) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('role "%s" does not exist', owner);
    END IF;
    IF node IS NOT NULL AND NOT EXISTS (SELECT FROM dispatch.nodes n WHERE n.node = create_workspace.node) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('node "%s" does not exist', node),
            HINT = 'Register its agent first, or create the workspace without a node and bind it later.';
    END IF;
    INSERT INTO dispatch.workspaces (workspace, owner, node) VALUES (name, owner, node);
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
        MESSAGE = format('workspace "%s" already exists', name);
END
$$;
COMMENT ON FUNCTION dispatch.create_workspace(text, name, text) IS
    'Admin: create a workspace owned by owner whose files node''s agent watches';

CREATE FUNCTION dispatch.bind_workspace(name text, node text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w dispatch.workspaces := dispatch._workspace_for_change(name);
BEGIN
    IF node IS NOT NULL AND NOT EXISTS (SELECT FROM dispatch.nodes n WHERE n.node = bind_workspace.node) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('node "%s" does not exist', node);
    END IF;
    UPDATE dispatch.workspaces x SET node = bind_workspace.node WHERE x.workspace = w.workspace;
END
$$;
COMMENT ON FUNCTION dispatch.bind_workspace(text, text) IS
    'Admin: let node''s agent (NULL: none) report the files of workspace name';

CREATE FUNCTION dispatch.drop_workspace(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w dispatch.workspaces := dispatch._workspace_for_change(name);
BEGIN
    IF w.rebuild IS NOT NULL THEN
        PERFORM dispatch.cancel_joblist(w.rebuild);
    END IF;
    DELETE FROM dispatch.workspaces WHERE workspace = w.workspace;
END
$$;
COMMENT ON FUNCTION dispatch.drop_workspace(text) IS
    'Drop a workspace with its rules and artefacts, cancelling its rebuild';

-- Stores content as the blob sha256 unless the store has it; returns nothing, raises
-- when the content is not what sha256 says or does not fit the limits.
CREATE FUNCTION dispatch._store_blob(sha256 text, content bytea, what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    size bigint := octet_length(content);
BEGIN
    IF sha256 IS NULL OR encode(pg_catalog.sha256(content), 'hex') <> sha256 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('%s: the content does not have the SHA-256 it was sent with', what);
    END IF;
    IF size > dispatch._setting_bytes('dispatch.max_blob_size') THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
            MESSAGE = format('%s is %s bytes, more than dispatch.max_blob_size = %s allows',
                             what, size, current_setting('dispatch.max_blob_size'));
    END IF;
    UPDATE dispatch.blobs b SET used_at = now() WHERE b.sha256 = _store_blob.sha256;
    IF FOUND THEN
        RETURN;
    END IF;
    -- one store at a time, so that concurrent ones cannot pass the total together
    PERFORM pg_advisory_xact_lock(hashtext('dispatch.blobs'));
    IF (SELECT coalesce(sum(b.size), 0) FROM dispatch.blobs b) + size
       > dispatch._setting_bytes('dispatch.max_store_size') THEN
        RAISE EXCEPTION USING ERRCODE = 'configuration_limit_exceeded',
            MESSAGE = format('the artefact store is full: %s would pass dispatch.max_store_size = %s',
                             what, current_setting('dispatch.max_store_size')),
            HINT = 'Drop workspaces or rules you no longer need, or raise dispatch.max_store_size.';
    END IF;
    INSERT INTO dispatch.blobs (sha256, size, content) VALUES (sha256, size, content)
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION dispatch._store_blob(text, bytea, text) IS
    'Keeps content in the store under its SHA-256 (checked), within the size limits';

-- Blobs no artefact refers to and unused for ten minutes (a build claimed moments
-- ago may still fetch one whose artefact changed since).
CREATE FUNCTION dispatch._collect_blobs() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM dispatch.blobs b
     WHERE b.used_at < now() - interval '10 minutes'
       AND NOT EXISTS (SELECT FROM dispatch.artefacts a WHERE a.blob = b.sha256)
$$;
COMMENT ON FUNCTION dispatch._collect_blobs() IS
    'Removes the blobs of the store no artefact refers to (after ten idle minutes)';
