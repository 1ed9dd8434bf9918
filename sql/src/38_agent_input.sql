------------------------------------------------------------------------------
-- Agent input: the limits on what a registration and a metrics sample may carry
------------------------------------------------------------------------------
--
-- An agent may be hostile to other nodes (docs/security.md, "Hostile agents"), so
-- every size and count it controls has a bound, checked before anything is written:
-- amounts at most 2^40 (the allocator's sums of them stay exact), resources, labels
-- and the info object bounded by dispatch.max_node_* settings; a metrics batch,
-- a sample's size, its metrics and their names, its nesting and how far ahead of
-- the server's clock it may be stamped by dispatch.metrics_* settings and the
-- constants below.  Every refusal is the standard spec error (invalid_parameter_value,
-- SQLSTATE class 22), which tells the agent that retrying the same data cannot help.

CREATE FUNCTION dispatch._agent_limit(what text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE what
        WHEN 'amount' THEN 1099511627776          -- 2^40: mem_mb up to an exabyte
        WHEN 'label value' THEN 255               -- characters
        WHEN 'info text' THEN 255                 -- characters of hostname, arch, os, version
        WHEN 'metric name' THEN 255               -- bytes, plugin labels included
        WHEN 'finish detail' THEN 4096            -- characters of a job's end detail
        WHEN 'sample depth' THEN 8 END            -- levels of nesting below a sample
$$;
COMMENT ON FUNCTION dispatch._agent_limit(text) IS
    'The fixed limits on agent input (what: amount, label value, info text, metric name, '
    'finish detail, sample depth); the others are dispatch.max_node_* and dispatch.metrics_* settings';

CREATE FUNCTION dispatch._check_node_info(info jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    k text;
BEGIN
    PERFORM dispatch._json_typed('object', info, '', 'node info');
    PERFORM dispatch._check_size(info::text, 'dispatch.max_node_info_size', 'the top level',
                                 'node info');
    PERFORM dispatch._check_keys(info, ARRAY['hostname', 'arch', 'os', 'cpus', 'memory_mb',
        'labels', 'version', 'pid', 'resources', 'amounts', 'jobs'], '', 'node info');
    FOREACH k IN ARRAY ARRAY['hostname', 'arch', 'os', 'version'] LOOP
        IF info ? k AND (jsonb_typeof(info -> k) <> 'string'
                         OR length(info ->> k) > dispatch._agent_limit('info text')) THEN
            PERFORM dispatch._spec_error(k, format('%s must be a string of at most %s characters',
                                                   k, dispatch._agent_limit('info text')));
        END IF;
    END LOOP;
    FOR r IN SELECT * FROM (VALUES ('cpus', 1048576), ('memory_mb', dispatch._agent_limit('amount')),
                                   ('pid', 2147483647)) AS x(key, hi)
              WHERE info ? x.key LOOP
        PERFORM dispatch._json_int(info -> r.key, 0, r.hi, r.key, r.key);
    END LOOP;

    PERFORM dispatch._check_labels(coalesce(info -> 'labels', '{}'), 'labels',
        '^(?!(arch|os|hostname|node)$)[A-Za-z0-9_.-]{1,63}$',
        'A label key is 1 to 63 letters, digits, "_", "." or "-"; arch, os, hostname and node are reserved.');

    PERFORM dispatch._json_typed('array', coalesce(info -> 'resources', '[]'), 'resources',
                                 'resources');
    PERFORM dispatch._json_typed('object', coalesce(info -> 'amounts', '{}'), 'amounts', 'amounts');
    PERFORM dispatch._check_count(
        jsonb_array_length(coalesce(info -> 'resources', '[]'))
            + (SELECT count(*) FROM jsonb_object_keys(coalesce(info -> 'amounts', '{}'))),
        'dispatch.max_node_resources', 'resources', 'the node', 'resources and amounts');
    FOR r IN SELECT e, o - 1 AS i FROM jsonb_array_elements(coalesce(info -> 'resources', '[]'))
             WITH ORDINALITY AS x(e, o) LOOP
        IF jsonb_typeof(r.e) <> 'object' OR NOT r.e ? 'type' OR NOT r.e ? 'ident' THEN
            PERFORM dispatch._spec_error(format('resources[%s]', r.i),
                'resource must be an object with "type" and "ident"');
        END IF;
        PERFORM dispatch._check_resource_name(r.e ->> 'type', r.e ->> 'ident');
    END LOOP;
    FOR r IN SELECT * FROM jsonb_each(coalesce(info -> 'amounts', '{}')) LOOP
        PERFORM dispatch._check_resource_name(r.key, r.key);
        PERFORM dispatch._json_int(r.value, 1, dispatch._agent_limit('amount'),
            dispatch._path('amounts', r.key), format('amount of "%s"', r.key));
    END LOOP;

    PERFORM dispatch._json_typed('array', coalesce(info -> 'jobs', '[]'), 'jobs', 'jobs');
    FOR r IN SELECT e, o - 1 AS i FROM jsonb_array_elements(coalesce(info -> 'jobs', '[]'))
             WITH ORDINALITY AS x(e, o) LOOP
        IF jsonb_typeof(r.e) <> 'object' THEN
            PERFORM dispatch._spec_error(format('jobs[%s]', r.i), 'job must be an object');
        END IF;
        PERFORM dispatch._json_int(coalesce(r.e -> 'job_id', 'null'), 1, 9223372036854775807,
                                   format('jobs[%s].job_id', r.i), 'job_id');
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._check_node_info(jsonb) IS
    'Fails unless info is a registration agent_register accepts: known keys of the right '
    'types, within the limits on labels, resources, amounts and size';

CREATE FUNCTION dispatch._check_sample(s jsonb, path text) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t numeric;
    at timestamptz;
    p record;
BEGIN
    PERFORM dispatch._json_typed('object', s, path, 'sample');
    PERFORM dispatch._check_size(s::text, 'dispatch.metrics_max_sample_size', path, 'sample');
    IF jsonb_path_exists(s, format('strict $.**{%s}', dispatch._agent_limit('sample depth') + 1)::jsonpath) THEN
        PERFORM dispatch._spec_error(path, format('sample is nested more than %s levels deep',
                                                  dispatch._agent_limit('sample depth')));
    END IF;
    t := dispatch._json_int(coalesce(s -> 't', 'null'), 0, 253402300799999, path || '.t', 'sample time');
    at := to_timestamp(t / 1000);
    IF at > now() + current_setting('dispatch.metrics_max_future')::interval THEN
        PERFORM dispatch._spec_error(path || '.t',
            format('sample time is ahead of the server''s clock by more than '
                   'dispatch.metrics_max_future = %s', current_setting('dispatch.metrics_max_future')),
            'Check the agent machine''s clock (NTP).');
    END IF;
    PERFORM dispatch._json_typed('array', coalesce(s -> 'plugins', '[]'), path || '.plugins',
                                 'plugins');
    FOR p IN SELECT e, o - 1 AS i FROM jsonb_array_elements(coalesce(s -> 'plugins', '[]'))
             WITH ORDINALITY AS x(e, o) LOOP
        PERFORM dispatch._json_typed('object', p.e, format('%s.plugins[%s]', path, p.i),
                                     'plugin metric');
        PERFORM dispatch._json_text(p.e -> 'name', format('%s.plugins[%s].name', path, p.i),
                                    'plugin metric name', dispatch._agent_limit('metric name')::int);
        PERFORM dispatch._json_string_map(coalesce(p.e -> 'labels', '{}'), '^.+$',
            format('%s.plugins[%s].labels', path, p.i), 'plugin labels',
            'A plugin label key is not empty.');
    END LOOP;
    RETURN at;
END
$$;
COMMENT ON FUNCTION dispatch._check_sample(jsonb, text) IS
    'Fails unless sample s (at JSON path path) is an object within the size, nesting, time '
    'and plugin rules; returns its time';

CREATE FUNCTION dispatch._check_sample_metrics(names text[], path text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    long text;
BEGIN
    PERFORM dispatch._check_count(cardinality(names), 'dispatch.metrics_max_per_sample', path,
                                  'the sample', 'metrics');
    SELECT n INTO long FROM unnest(names) n
     WHERE octet_length(n) > dispatch._agent_limit('metric name') LIMIT 1;
    IF FOUND THEN
        PERFORM dispatch._spec_error(path, format('metric name "%s..." is longer than %s bytes',
                                                  left(long, 40), dispatch._agent_limit('metric name')));
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_sample_metrics(text[], text) IS
    'Fails when a sample (at JSON path path) has more metrics than dispatch.metrics_max_per_sample '
    'allows or a metric name longer than the limit';
