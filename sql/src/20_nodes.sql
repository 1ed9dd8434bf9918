------------------------------------------------------------------------------
-- Nodes and resources: the machines and the typed instances they offer
------------------------------------------------------------------------------
--
-- Nodes are registered by their agents (40_agent.sql); resources are node-local
-- instances (gpu 1, cpu 3) or cluster-wide pools (node NULL, e.g. licences), and
-- amount resources (mem_mb) have a capacity.  Admins add and remove resources here;
-- agents offer theirs at registration.
--
-- Labels come in two kinds (docs/security.md, "Labels and node names"): the labels
-- an agent reports are its claims (any agent may claim zone=secure); the admin
-- labels, set with set_node_labels(), are what a plain job constraint matches.  A
-- node name belongs to the role that registered it first, or to the role an admin
-- bound it to beforehand (bind_node), so it cannot be squatted.

CREATE FUNCTION dispatch._name_pattern(kind text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE kind
        WHEN 'node' THEN '^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$'
        WHEN 'resource type' THEN '^[a-z][a-z0-9_]{0,62}$'
        WHEN 'resource ident' THEN '^[^\s,]{1,200}$' END
$$;
COMMENT ON FUNCTION dispatch._name_pattern(text) IS
    'The one definition of each naming rule, as a regular expression: of a node, a resource '
    'type or a resource ident (kind); the table CHECKs and the checks that raise the API''s '
    'errors all use it';

CREATE TABLE dispatch.nodes (
    node            text PRIMARY KEY
                    CHECK (node ~ dispatch._name_pattern('node')),
    state           text NOT NULL DEFAULT 'online'
                    CHECK (state IN ('online', 'offline', 'draining')),
    owner           name NOT NULL,
    hostname        text,
    arch            text,
    os              text,
    cpus            int,
    memory_mb       bigint,
    labels          jsonb NOT NULL DEFAULT '{}'
                    CHECK (pg_catalog.jsonb_typeof(labels) = 'object'),
    admin_labels    jsonb NOT NULL DEFAULT '{}'
                    CHECK (pg_catalog.jsonb_typeof(admin_labels) = 'object'),
    agent_version   text,
    agent_pid       int,
    registered_at   timestamptz,        -- NULL: bound by an admin, never registered
    last_heartbeat  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    state_changed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE dispatch.nodes IS
    'Worker machines, registered by their agents (labels: what the agent reports) or bound '
    'by an admin beforehand; admin_labels are the ones plain job constraints match';

CREATE TABLE dispatch.resources (
    resource_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type            text NOT NULL CHECK (type ~ dispatch._name_pattern('resource type')),
    ident           text NOT NULL
                    CHECK (ident ~ dispatch._name_pattern('resource ident')),
    node            text REFERENCES dispatch.nodes ON DELETE CASCADE,
    capacity        bigint NOT NULL DEFAULT 1 CHECK (capacity > 0),
    is_amount       boolean NOT NULL DEFAULT false,
    from_agent      boolean NOT NULL DEFAULT false,
    added_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE NULLS NOT DISTINCT (type, ident, node),
    CHECK (is_amount OR capacity = 1)
);
COMMENT ON TABLE dispatch.resources IS
    'Resource instances: node-local (node set) or cluster-wide pools (node NULL); amount resources have a capacity';

CREATE FUNCTION dispatch._check_name(kind text, v text, what text, path text, hint text)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF v IS NULL OR v !~ dispatch._name_pattern(kind) THEN
        PERFORM dispatch._raise_invalid(format('invalid %s "%s"', what, v),
                                        'The error is at ' || path || '.', hint);
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_name(text, text, text, text, text) IS
    'Fails with "invalid what", hint and JSON path path (NULL: none) unless v follows the '
    'naming rule of kind';

CREATE FUNCTION dispatch._check_node_name(node text) RETURNS void
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._check_name('node', node, 'node name', NULL,
        'A node name is 1 to 48 letters, digits, ".", "_" or "-", starting with a letter or digit.')
$$;
COMMENT ON FUNCTION dispatch._check_node_name(text) IS
    'Fails unless node is a valid node name';

CREATE FUNCTION dispatch._check_resource_type(type text, path text) RETURNS void
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._check_name('resource type', type, 'resource type', path,
        'A resource type is a lower-case letter followed by lower-case letters, digits or underscores.')
$$;
COMMENT ON FUNCTION dispatch._check_resource_type(text, text) IS
    'Fails unless type is a valid resource type; the error names JSON path path unless it is NULL';

CREATE FUNCTION dispatch._check_resource_name(type text, ident text) RETURNS void
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._check_resource_type(type, NULL);
    SELECT dispatch._check_name('resource ident', ident, 'resource ident', NULL,
        'A resource ident is 1 to 200 characters without white space or commas.')
$$;
COMMENT ON FUNCTION dispatch._check_resource_name(text, text) IS
    'Fails unless type and ident are valid resource names';

CREATE FUNCTION dispatch._resource_place(node text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN node IS NULL THEN 'in the cluster-wide pool'
                ELSE format('on node "%s"', node) END
$$;
COMMENT ON FUNCTION dispatch._resource_place(text) IS
    'Describes where a resource lives, for messages';

CREATE FUNCTION dispatch.add_resource(type text, ident text, node text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM dispatch._check_resource_name(type, ident);
    IF node IS NOT NULL AND NOT EXISTS (SELECT 1 FROM dispatch.nodes n WHERE n.node = add_resource.node) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('node "%s" is not registered', node);
    END IF;
    INSERT INTO dispatch.resources (type, ident, node)
    VALUES (type, ident, node)
    ON CONFLICT DO NOTHING
    RETURNING resource_id INTO id;
    IF id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('resource %s "%s" already exists %s', type, ident,
                             dispatch._resource_place(node));
    END IF;
    PERFORM dispatch.wake_scheduler();
    RETURN id;
END
$$;
COMMENT ON FUNCTION dispatch.add_resource(text, text, text) IS
    'Add a resource instance: cluster-wide when node is NULL (licences), else on that node';

CREATE FUNCTION dispatch.remove_resource(type text, ident text, node text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r dispatch.resources;
    holder bigint;
BEGIN
    SELECT * INTO r FROM dispatch.resources x
     WHERE x.type = remove_resource.type AND x.ident = remove_resource.ident
       AND x.node IS NOT DISTINCT FROM remove_resource.node
     FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('resource %s "%s" does not exist %s', type, ident,
                             dispatch._resource_place(node));
    END IF;
    SELECT min(job_id) INTO holder FROM dispatch.allocations WHERE resource_id = r.resource_id;
    IF holder IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_in_use',
            MESSAGE = format('resource %s "%s" is in use by job %s', type, ident, holder),
            HINT = 'Wait for the job to finish or cancel it.';
    END IF;
    DELETE FROM dispatch.resources WHERE resource_id = r.resource_id;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.remove_resource(text, text, text) IS
    'Remove an idle resource instance';

CREATE FUNCTION dispatch._check_labels(labels jsonb, path text, key_re text, key_hint text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM dispatch._json_string_map(labels, key_re, path, 'labels', key_hint);
    PERFORM dispatch._check_count((SELECT count(*) FROM jsonb_object_keys(labels)),
                                  'dispatch.max_node_labels', path, 'the node', 'labels');
    FOR r IN SELECT * FROM jsonb_each_text(labels)
              WHERE length(value) > dispatch._agent_limit('label value') LOOP
        PERFORM dispatch._spec_error(dispatch._path(path, r.key),
            format('value of label "%s" is longer than %s characters', r.key,
                   dispatch._agent_limit('label value')));
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._check_labels(jsonb, text, text, text) IS
    'Fails unless labels (at JSON path path) is an object of string values whose keys match '
    'key_re (key_hint says the rule), within dispatch.max_node_labels and the value length';

CREATE FUNCTION dispatch._lock_node(node text, hint text) RETURNS dispatch.nodes
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes;
BEGIN
    PERFORM dispatch._check_node_name(node);
    SELECT * INTO n FROM dispatch.nodes x WHERE x.node = _lock_node.node FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('node "%s" is not registered', node), HINT = hint;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION dispatch._lock_node(text, text) IS
    'Locks and returns the row of node (registered or bound); fails with hint when there '
    'is none';

CREATE FUNCTION dispatch.bind_node(node text, agent name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes;
BEGIN
    PERFORM dispatch._check_node_name(node);
    PERFORM dispatch._check_not_null(agent, 'agent');
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = agent) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('role "%s" does not exist', agent);
    END IF;
    IF NOT pg_has_role(agent, 'dispatch_agent', 'MEMBER') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('role "%s" is not a member of dispatch_agent', agent),
            HINT = 'Bind a node to the role its agent logs in with.';
    END IF;
    INSERT INTO dispatch.nodes (node, owner, state) VALUES (node, agent, 'offline')
    ON CONFLICT ON CONSTRAINT nodes_pkey DO NOTHING;
    n := dispatch._lock_node(node, NULL);
    IF n.owner = agent THEN
        RETURN;
    END IF;
    -- Handing the name to another role: the old role's agent is refused from now
    -- on, so what it was running is lost (and retried elsewhere) at once.
    UPDATE dispatch.nodes x SET owner = agent, state = 'offline',
           state_changed_at = CASE WHEN x.state = 'offline' THEN x.state_changed_at
                                   ELSE now() END
     WHERE x.node = n.node;
    PERFORM dispatch._lose_jobs(n.node);
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.bind_node(text, name) IS
    'Admin: reserve a node name for the agent role agent (before its first registration), '
    'or hand a registered node to another role (it goes offline, its jobs are lost)';

CREATE FUNCTION dispatch.set_node_labels(node text, labels jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n dispatch.nodes := dispatch._lock_node(node,
        'An admin binds a node name to its agent''s role with dispatch.bind_node().');
BEGIN
    PERFORM dispatch._check_labels(labels, '', '^(?!node$)[A-Za-z0-9_.-]{1,63}$',
        'A label key is 1 to 63 letters, digits, "_", "." or "-"; node is reserved.');
    UPDATE dispatch.nodes x SET admin_labels = set_node_labels.labels WHERE x.node = n.node;
    PERFORM dispatch.wake_scheduler();
END
$$;
COMMENT ON FUNCTION dispatch.set_node_labels(text, jsonb) IS
    'Admin: set the labels of a node that plain job constraints match (replacing the '
    'previous ones; {} removes them); the agent cannot change them';
