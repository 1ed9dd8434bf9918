------------------------------------------------------------------------------
-- Spec validation: the JSON toolkit every validator is built from
------------------------------------------------------------------------------
--
-- Specs (joblists, goals, alert rules, agent registrations) are checked by small
-- functions that each test one value and raise the one standard error: errcode
-- invalid_parameter_value, a message in PostgreSQL's style and a detail naming the
-- JSON path ("The error is at stages[0].jobs[1].needs.gpu.").  A validator passes
-- the path of the value down to them, so the first error found names its place.
-- _path() is the one SQL quoting of JSON keys (src/template.c key_path() is the C one;
-- sql-tests/05_templates checks that they agree).

CREATE FUNCTION dispatch._raise_invalid(message text, detail text, hint text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF coalesce(detail, '') = '' AND coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = message;
    ELSIF coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = message,
            DETAIL = detail;
    ELSIF coalesce(detail, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = message,
            HINT = hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = message,
        DETAIL = detail, HINT = hint;
END
$$;
COMMENT ON FUNCTION dispatch._raise_invalid(text, text, text) IS
    'Raises invalid_parameter_value with message, detail and hint (each NULL or empty: none)';

CREATE FUNCTION dispatch._check_not_null(v anyelement, what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF v IS NULL THEN
        PERFORM dispatch._raise_invalid(format('%s must not be null', what), NULL, NULL);
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_not_null(anyelement, text) IS
    'Fails with "what must not be null" when the argument v is NULL';

CREATE FUNCTION dispatch._spec_error(path text, message text, hint text DEFAULT NULL)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch._raise_invalid(message,
        format('The error is at %s.', coalesce(nullif(path, ''), 'the top level')), hint)
$$;
COMMENT ON FUNCTION dispatch._spec_error(text, text, text) IS
    'Raises the standard spec error: message plus the JSON path in the detail '
    '(an empty path is the top level)';

CREATE FUNCTION dispatch._path(path text, key text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT concat_ws('.', nullif(path, ''),
                     CASE WHEN key ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN key
                          ELSE to_jsonb(key)::text END)
$$;
COMMENT ON FUNCTION dispatch._path(text, text) IS
    'Appends a key to a JSON path, quoting keys that are not plain identifiers';

CREATE FUNCTION dispatch._json_typed(type text, v jsonb, path text, what text,
                                    if_empty text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(v) IS DISTINCT FROM type THEN
        PERFORM dispatch._spec_error(path, format('%s must be %s', what,
            CASE type WHEN 'boolean' THEN 'a boolean' ELSE 'a JSON ' || type END));
    END IF;
    IF if_empty IS NOT NULL AND v IN ('[]', '{}') THEN
        PERFORM dispatch._spec_error(path, if_empty);
    END IF;
    RETURN v;
END
$$;
COMMENT ON FUNCTION dispatch._json_typed(text, jsonb, text, text, text) IS
    'Returns v when it is of JSON type type (object, array, boolean), else raises; when '
    'if_empty is given, an empty array or object raises it';

CREATE FUNCTION dispatch._json_choice(v jsonb, allowed text[], path text, message text)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR NOT v #>> '{}' = ANY (allowed) THEN
        PERFORM dispatch._spec_error(path, message);
    END IF;
    RETURN v #>> '{}';
END
$$;
COMMENT ON FUNCTION dispatch._json_choice(jsonb, text[], text, text) IS
    'Returns v when it is one of the allowed JSON strings, else raises message';

CREATE FUNCTION dispatch._require_key(obj jsonb, key text, path text, what text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT obj ? key THEN
        PERFORM dispatch._spec_error(path, format('%s has no "%s"', what, key));
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._require_key(jsonb, text, text, text) IS
    'Fails unless object obj (called what, at path) has key';

CREATE FUNCTION dispatch._json_items(obj jsonb, key text, path text, what text,
                                    required boolean, if_empty text DEFAULT NULL,
                                    at_most int DEFAULT NULL)
RETURNS TABLE (item jsonb, idx int, item_path text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    list_path text := dispatch._path(path, key);
BEGIN
    IF required THEN
        PERFORM dispatch._require_key(obj, key, path, what);
    END IF;
    IF NOT obj ? key THEN
        RETURN;
    END IF;
    PERFORM dispatch._json_typed('array', obj -> key, list_path, key, if_empty);
    IF jsonb_array_length(obj -> key) > at_most THEN
        PERFORM dispatch._spec_error(list_path,
                                     format('a %s has more than %s %s', what, at_most, key));
    END IF;
    RETURN QUERY SELECT e, (o - 1)::int, format('%s[%s]', list_path, o - 1)
                   FROM jsonb_array_elements(obj -> key) WITH ORDINALITY AS x(e, o);
END
$$;
COMMENT ON FUNCTION dispatch._json_items(jsonb, text, text, text, boolean, text, int) IS
    'The elements of array obj.key (object what at path), each with its index and path; '
    'raises unless it is an array (required: present; if_empty: not empty; at most at_most)';

CREATE FUNCTION dispatch._check_spec_name(name text, what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL OR name = '' OR length(name) > 200 THEN
        PERFORM dispatch._spec_error('the ' || what, format('%s must be 1 to 200 characters', what));
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_spec_name(text, text) IS
    'Fails unless the name given next to a spec (called what) is 1 to 200 characters';

CREATE FUNCTION dispatch._check_keys(obj jsonb, allowed text[], path text, what text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
BEGIN
    FOR k IN SELECT jsonb_object_keys(obj) LOOP
        IF NOT k = ANY (allowed) THEN
            PERFORM dispatch._spec_error(dispatch._path(path, k),
                format('unknown key "%s" in %s', k, what),
                format('Valid keys are: %s.', array_to_string(allowed, ', ')));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._check_keys(jsonb, text[], text, text) IS
    'Fails unless every key of obj is in allowed';

CREATE FUNCTION dispatch._json_int(v jsonb, lo bigint, hi bigint, path text, what text)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF jsonb_typeof(v) <> 'number' THEN
        PERFORM dispatch._spec_error(path, format('%s must be an integer', what));
    END IF;
    IF v::text::numeric <> trunc(v::text::numeric) THEN
        PERFORM dispatch._spec_error(path, format('%s must be an integer', what));
    END IF;
    IF v::text::numeric < lo OR v::text::numeric > hi THEN
        PERFORM dispatch._spec_error(path,
            format('%s must be between %s and %s', what, lo, hi));
    END IF;
    RETURN v::text::bigint;
END
$$;
COMMENT ON FUNCTION dispatch._json_int(jsonb, bigint, bigint, text, text) IS
    'Returns v as a bigint when it is a JSON integer in [lo, hi], else raises';

CREATE FUNCTION dispatch._json_text(v jsonb, path text, what text, max_len int DEFAULT 200)
RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF v IS NULL OR jsonb_typeof(v) <> 'string' THEN
        PERFORM dispatch._spec_error(path, format('%s must be a string', what));
    END IF;
    IF v #>> '{}' = '' THEN
        PERFORM dispatch._spec_error(path, format('%s must not be empty', what));
    END IF;
    IF length(v #>> '{}') > max_len THEN
        PERFORM dispatch._spec_error(path,
            format('%s is longer than %s characters', what, max_len));
    END IF;
    RETURN v #>> '{}';
END
$$;
COMMENT ON FUNCTION dispatch._json_text(jsonb, text, text, int) IS
    'Returns v as text when it is a non-empty JSON string, else raises';

CREATE FUNCTION dispatch._json_string_map(v jsonb, key_re text, path text, what text,
                                          key_hint text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
BEGIN
    FOR e IN SELECT * FROM jsonb_each(dispatch._json_typed('object', v, path, what)) LOOP
        IF e.key !~ key_re THEN
            PERFORM dispatch._spec_error(dispatch._path(path, e.key),
                format('invalid key "%s" in %s', e.key, what), key_hint);
        END IF;
        IF jsonb_typeof(e.value) <> 'string' THEN
            PERFORM dispatch._spec_error(dispatch._path(path, e.key),
                format('value of "%s" in %s must be a string', e.key, what));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._json_string_map(jsonb, text, text, text, text) IS
    'Fails unless v is a JSON object whose values are all strings';

-- No SET clause, so that it is inlined into its callers' queries (their search_path is safe).
CREATE FUNCTION dispatch._interval_of(v jsonb) RETURNS interval
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN make_interval(secs => v::text::numeric)
                ELSE (v #>> '{}')::interval END
$$;
COMMENT ON FUNCTION dispatch._interval_of(jsonb) IS
    'A duration given as a JSON number of seconds or an interval string (raises when it is '
    'neither); _json_interval checks it';

CREATE FUNCTION dispatch._json_interval(v jsonb, path text, what text) RETURNS interval
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t interval;
BEGIN
    IF jsonb_typeof(v) NOT IN ('number', 'string') THEN
        PERFORM dispatch._spec_error(path, format('%s must be a string or a number', what));
    END IF;
    IF jsonb_typeof(v) = 'number' AND v::text::numeric > 315360000 THEN
        PERFORM dispatch._spec_error(path, format('%s is longer than 10 years', what));
    END IF;
    BEGIN
        t := dispatch._interval_of(v);
    EXCEPTION WHEN data_exception THEN
        PERFORM dispatch._spec_error(path,
            format('invalid %s %s', what, v::text),
            'Write an interval such as "10 minutes" or a number of seconds.');
    END;
    IF t <= interval '0' THEN
        PERFORM dispatch._spec_error(path, format('%s must be positive', what));
    END IF;
    IF t > interval '10 years' THEN
        PERFORM dispatch._spec_error(path, format('%s is longer than 10 years', what));
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION dispatch._json_interval(jsonb, text, text) IS
    'Parses a duration (interval string or seconds) called what and returns it, or raises';

CREATE FUNCTION dispatch._setting_bytes(guc text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_size_bytes(regexp_replace(current_setting(guc), '([0-9])B$', '\1 bytes'))
$$;
COMMENT ON FUNCTION dispatch._setting_bytes(text) IS
    'A size setting in bytes (SHOW prints units such as 10B or 1MB)';

CREATE FUNCTION dispatch._check_size(content text, guc text, path text, what text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF octet_length(content) > dispatch._setting_bytes(guc) THEN
        PERFORM dispatch._spec_error(path,
            format('%s is %s bytes, more than %s = %s allows', what, octet_length(content),
                   guc, current_setting(guc)),
            format('Make it smaller, or raise %s.', guc));
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_size(text, text, text, text) IS
    'Fails when content is larger than the size setting guc allows';

CREATE FUNCTION dispatch._check_count(n bigint, guc text, path text, owner text, what text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF n > current_setting(guc)::bigint THEN
        PERFORM dispatch._spec_error(path,
            format('%s has %s %s, more than %s = %s allows', owner, n, what, guc,
                   current_setting(guc)),
            format('Send fewer, or raise %s.', guc));
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_count(bigint, text, text, text, text) IS
    'Fails when owner has n items (what) at JSON path path, more than the count setting guc allows';
