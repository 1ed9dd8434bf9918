------------------------------------------------------------------------------
-- Job files: validation, template rendering and storage
------------------------------------------------------------------------------
--
-- A job carries configuration files; a file or the command can be a template whose
-- patterns are replaced verbatim (dispatch.render_template) by the job-wide map and
-- the file's own map (the file's wins).  Files are rendered at submit time (their
-- sizes checked before anything is stored) and stored in job_files; the agent writes
-- them into the job's work directory.
-- Sizes are bounded by dispatch.max_file_size and dispatch.max_job_files_size.

CREATE TABLE dispatch.job_files (
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    path            text NOT NULL,
    mode            text NOT NULL CHECK (mode ~ '^0[0-7]{3}$'),
    template        boolean NOT NULL,
    content         text NOT NULL,
    bytes           bigint GENERATED ALWAYS AS (pg_catalog.octet_length(content)) STORED,
    PRIMARY KEY (job_id, path)
);
COMMENT ON TABLE dispatch.job_files IS
    'Files of each job as rendered at submit time; the agent writes them into the work directory';
-- A job's files may carry secrets: only its submitter and admins read them.
ALTER TABLE dispatch.job_files ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_files_read ON dispatch.job_files FOR SELECT
    USING (dispatch._caller_may_read_job(job_id));

CREATE FUNCTION dispatch._check_file_path(path text, at text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF octet_length(path) > 1024 THEN
        PERFORM dispatch._spec_error(at, 'file path is longer than 1024 bytes');
    ELSIF path LIKE '/%' THEN
        PERFORM dispatch._spec_error(at, format('file path "%s" is absolute', path),
            'A file path is relative to the job''s work directory.');
    ELSIF path ~ '[\x01-\x1f\x7f]' THEN
        PERFORM dispatch._spec_error(at, 'file path contains a control character');
    ELSIF '..' = ANY (string_to_array(path, '/')) OR '.' = ANY (string_to_array(path, '/')) THEN
        PERFORM dispatch._spec_error(at, format('file path "%s" contains "." or ".."', path),
            'A file path names a place inside the job''s work directory, without "." or ".." components.');
    ELSIF '' = ANY (string_to_array(path, '/')) THEN
        PERFORM dispatch._spec_error(at, format('file path "%s" has an empty component', path),
            'Separate directories with a single "/" and do not end a path with "/".');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._check_file_path(text, text) IS
    'Fails unless path is a safe relative file path';

CREATE FUNCTION dispatch._validate_file(file jsonb, path text, paths text[]) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text;
    other int;
BEGIN
    PERFORM dispatch._json_typed('object', file, path, 'file');
    PERFORM dispatch._check_keys(file, ARRAY['path', 'content', 'mode', 'template',
        'replacements'], path, 'file');
    PERFORM dispatch._require_key(file, 'path', path, 'file');
    name := dispatch._json_text(file -> 'path', dispatch._path(path, 'path'), 'file path', 1024);
    PERFORM dispatch._check_file_path(name, dispatch._path(path, 'path'));
    other := array_position(paths, name);
    IF other IS NULL THEN
        SELECT o INTO other FROM unnest(paths) WITH ORDINALITY AS x(p, o)
         WHERE starts_with(name, p || '/') OR starts_with(p, name || '/');
    END IF;
    IF other IS NOT NULL THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'path'),
            format('file path "%s" collides with files[%s] ("%s")', name, other - 1,
                   paths[other]),
            'Two files of a job cannot have the same path, and a file cannot be a directory of another.');
    END IF;
    PERFORM dispatch._require_key(file, 'content', path, 'file');
    IF jsonb_typeof(file -> 'content') <> 'string' THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'content'),
                                     'file content must be a string');
    END IF;
    PERFORM dispatch._check_size(file ->> 'content', 'dispatch.max_file_size',
                                 dispatch._path(path, 'content'), 'file content');
    IF file ? 'mode' AND (jsonb_typeof(file -> 'mode') <> 'string'
                          OR file ->> 'mode' !~ '^0?[0-7]{3}$') THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'mode'),
            'file mode must be an octal string from "0000" to "0777"',
            'Write the mode as a string such as "0755"; setuid, setgid and sticky bits are not allowed.');
    END IF;
    IF file ? 'template' THEN
        PERFORM dispatch._json_typed('boolean', file -> 'template',
                                     dispatch._path(path, 'template'), 'template');
    END IF;
    IF file ? 'replacements' THEN
        IF file -> 'template' = 'false' THEN
            PERFORM dispatch._spec_error(dispatch._path(path, 'replacements'),
                'file has replacements but "template" is false');
        END IF;
        PERFORM dispatch._render_template('', file -> 'replacements',
                                          dispatch._path(path, 'replacements'));
    END IF;
    RETURN name;
END
$$;
COMMENT ON FUNCTION dispatch._validate_file(jsonb, text, text[]) IS
    'Validates one file spec at path (paths: those of the files before it); returns its path';

CREATE FUNCTION dispatch._validate_files(job jsonb, path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
    fp text;
    paths text[] := '{}';
    used boolean := false;
BEGIN
    IF job ? 'template' THEN
        used := dispatch._json_typed('boolean', job -> 'template',
                                     dispatch._path(path, 'template'), 'template')::boolean;
    END IF;
    IF job ? 'replacements' THEN
        PERFORM dispatch._render_template('', job -> 'replacements',
                                          dispatch._path(path, 'replacements'));
    END IF;
    FOR f, fp IN SELECT item, item_path
                   FROM dispatch._json_items(job, 'files', path, 'job', false, NULL, 1000) LOOP
        paths := paths || dispatch._validate_file(f, fp, paths);
        used := used OR coalesce((f ->> 'template')::boolean, f ? 'replacements');
    END LOOP;

    IF job ? 'replacements' AND NOT used THEN
        PERFORM dispatch._spec_error(dispatch._path(path, 'replacements'),
            'job has replacements but neither its command nor any of its files is a template',
            'Set "template": true on the job to render its command, or on a file to render it.');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._validate_files(jsonb, text) IS
    'Validates the files, replacements and template keys of a job spec (at path)';

-- Both below read the files of a validated spec through _spec_files, so the check and
-- the INSERT of _submit render the same content (templates are rendered twice: once to
-- check, once to store, and nothing is stored before every check has passed).
CREATE FUNCTION dispatch._spec_files(spec jsonb)
RETURNS TABLE (stage int, k int, n int, job_name text, job_path text, file_path text,
               path text, mode text, template boolean, content text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.stage, u.k, (o - 1)::int, u.job ->> 'name', u.job_path,
           format('%s.files[%s]', u.job_path, o - 1),
           f ->> 'path', lpad(coalesce(f ->> 'mode', '644'), 4, '0'), t.tpl,
           CASE WHEN t.tpl
                THEN dispatch._render_template(f ->> 'content',
                         coalesce(u.job -> 'replacements', '{}') || coalesce(f -> 'replacements', '{}'),
                         format('%s.files[%s].replacements', u.job_path, o - 1))
                ELSE f ->> 'content' END
      FROM dispatch._spec_jobs(spec) u,
           jsonb_array_elements(CASE WHEN u.job ? 'files' THEN u.job -> 'files' END)
               WITH ORDINALITY AS x(f, o),
           LATERAL (SELECT coalesce((f ->> 'template')::boolean, f ? 'replacements') AS tpl) t
$$;
COMMENT ON FUNCTION dispatch._spec_files(jsonb) IS
    'The files of every job of a validated joblist spec: the job (stage, index, name, JSON '
    'path), the '
    'file''s index and JSON path, and what is stored (templates rendered with the job''s map '
    'and the file''s over it)';

CREATE FUNCTION dispatch._spec_has_files(spec jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT spec @? '$.stages[*].jobs[*].files[*]'
$$;
COMMENT ON FUNCTION dispatch._spec_has_files(jsonb) IS
    'True when some job of validated joblist spec has a file (one jsonpath test, no row per job)';

CREATE FUNCTION dispatch._check_rendered_files(spec jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_file bigint := dispatch._setting_bytes('dispatch.max_file_size');
    bad record;
BEGIN
    IF NOT dispatch._spec_has_files(spec) THEN
        RETURN;
    END IF;
    -- In spec order, a job's files one by one and then their total, as one loop over the
    -- files would find them.
    SELECT * INTO bad
      FROM (SELECT f.*, octet_length(f.content) AS bytes,
                   sum(octet_length(f.content)) OVER w AS total, count(*) OVER w AS files
              FROM dispatch._spec_files(spec) f
            WINDOW w AS (PARTITION BY f.stage, f.k)) x
     WHERE x.template AND x.bytes > max_file
        OR x.n = x.files - 1
           AND x.total > dispatch._setting_bytes('dispatch.max_job_files_size')
     ORDER BY x.stage, x.k, x.n LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF bad.template THEN
        PERFORM dispatch._check_size(bad.content, 'dispatch.max_file_size', bad.file_path,
                                     'rendered file');
    END IF;
    PERFORM dispatch._spec_error(dispatch._path(bad.job_path, 'files'),
        format('the rendered files of the job total %s bytes, more than dispatch.max_job_files_size = %s allows',
               bad.total, current_setting('dispatch.max_job_files_size')),
        'Make them smaller, or raise dispatch.max_job_files_size.');
END
$$;
COMMENT ON FUNCTION dispatch._check_rendered_files(jsonb) IS
    'Fails at the first file of validated spec whose rendered content is larger than '
    'dispatch.max_file_size, or the first job whose files total more than '
    'dispatch.max_job_files_size';
