------------------------------------------------------------------------------
-- Job files: validation, template rendering and storage
------------------------------------------------------------------------------
--
-- A job carries configuration files; a file or the command can be a template whose
-- patterns are replaced verbatim (dispatch.render_template) by the job-wide map and
-- the file's own map (the file's wins).  Files are rendered once, at submit time,
-- and stored in job_files; the agent writes them into the job's work directory.
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

CREATE FUNCTION dispatch._validate_files(j jsonb, jp text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
    fi int;
    fp text;
    path text;
    paths text[] := '{}';
    other int;
    used boolean := false;
BEGIN
    IF j ? 'template' AND jsonb_typeof(j -> 'template') <> 'boolean' THEN
        PERFORM dispatch._spec_error(jp || '.template', 'template must be a boolean');
    END IF;
    used := coalesce((j ->> 'template')::boolean, false);
    IF j ? 'replacements' THEN
        PERFORM dispatch._render_template('', j -> 'replacements', jp || '.replacements');
    END IF;
    IF j ? 'files' AND jsonb_typeof(j -> 'files') <> 'array' THEN
        PERFORM dispatch._spec_error(jp || '.files', 'files must be a JSON array');
    END IF;
    IF jsonb_array_length(coalesce(j -> 'files', '[]')) > 1000 THEN
        PERFORM dispatch._spec_error(jp || '.files', 'a job has more than 1000 files');
    END IF;

    FOR f, fi IN SELECT e, o - 1 FROM jsonb_array_elements(coalesce(j -> 'files', '[]'))
                 WITH ORDINALITY AS x(e, o) LOOP
        fp := format('%s.files[%s]', jp, fi);
        IF jsonb_typeof(f) <> 'object' THEN
            PERFORM dispatch._spec_error(fp, 'file must be a JSON object');
        END IF;
        PERFORM dispatch._check_keys(f, ARRAY['path', 'content', 'mode', 'template',
            'replacements'], fp, 'file');
        IF NOT f ? 'path' THEN
            PERFORM dispatch._spec_error(fp, 'file has no "path"');
        END IF;
        path := dispatch._json_text(f -> 'path', fp || '.path', 'file path', 1024);
        PERFORM dispatch._check_file_path(path, fp || '.path');
        other := array_position(paths, path);
        IF other IS NULL THEN
            SELECT o INTO other FROM unnest(paths) WITH ORDINALITY AS x(p, o)
             WHERE starts_with(path, p || '/') OR starts_with(p, path || '/');
        END IF;
        IF other IS NOT NULL THEN
            PERFORM dispatch._spec_error(fp || '.path',
                format('file path "%s" collides with files[%s] ("%s")', path, other - 1,
                       paths[other]),
                'Two files of a job cannot have the same path, and a file cannot be a directory of another.');
        END IF;
        paths := paths || path;
        IF NOT f ? 'content' THEN
            PERFORM dispatch._spec_error(fp, 'file has no "content"');
        END IF;
        IF jsonb_typeof(f -> 'content') <> 'string' THEN
            PERFORM dispatch._spec_error(fp || '.content', 'file content must be a string');
        END IF;
        PERFORM dispatch._check_size(f ->> 'content', 'dispatch.max_file_size',
                                     fp || '.content', 'file content');
        IF f ? 'mode' AND (jsonb_typeof(f -> 'mode') <> 'string'
                           OR f ->> 'mode' !~ '^0?[0-7]{3}$') THEN
            PERFORM dispatch._spec_error(fp || '.mode',
                'file mode must be an octal string from "0000" to "0777"',
                'Write the mode as a string such as "0755"; setuid, setgid and sticky bits are not allowed.');
        END IF;
        IF f ? 'template' AND jsonb_typeof(f -> 'template') <> 'boolean' THEN
            PERFORM dispatch._spec_error(fp || '.template', 'template must be a boolean');
        END IF;
        IF f ? 'replacements' THEN
            IF f -> 'template' = 'false' THEN
                PERFORM dispatch._spec_error(fp || '.replacements',
                    'file has replacements but "template" is false');
            END IF;
            PERFORM dispatch._render_template('', f -> 'replacements', fp || '.replacements');
        END IF;
        used := used OR coalesce((f ->> 'template')::boolean, f ? 'replacements');
    END LOOP;

    IF j ? 'replacements' AND NOT used THEN
        PERFORM dispatch._spec_error(jp || '.replacements',
            'job has replacements but neither its command nor any of its files is a template',
            'Set "template": true on the job to render its command, or on a file to render it.');
    END IF;
END
$$;
COMMENT ON FUNCTION dispatch._validate_files(jsonb, text) IS
    'Validates the files, replacements and template keys of job j (at path jp)';

CREATE FUNCTION dispatch._store_files(job bigint, j jsonb, jp text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
    fi int;
    fp text;
    tpl boolean;
    content text;
    total bigint := 0;
BEGIN
    FOR f, fi IN SELECT e, o - 1 FROM jsonb_array_elements(coalesce(j -> 'files', '[]'))
                 WITH ORDINALITY AS x(e, o) LOOP
        fp := format('%s.files[%s]', jp, fi);
        tpl := coalesce((f ->> 'template')::boolean, f ? 'replacements');
        content := f ->> 'content';
        IF tpl THEN
            content := dispatch._render_template(content,
                coalesce(j -> 'replacements', '{}') || coalesce(f -> 'replacements', '{}'),
                fp || '.replacements');
            PERFORM dispatch._check_size(content, 'dispatch.max_file_size', fp,
                                         'rendered file');
        END IF;
        total := total + octet_length(content);
        INSERT INTO dispatch.job_files (job_id, path, mode, template, content)
        VALUES (job, f ->> 'path', lpad(coalesce(f ->> 'mode', '644'), 4, '0'), tpl, content);
    END LOOP;
    IF total > dispatch._setting_bytes('dispatch.max_job_files_size') THEN
        PERFORM dispatch._spec_error(jp || '.files',
            format('the rendered files of the job total %s bytes, more than dispatch.max_job_files_size = %s allows',
                   total, current_setting('dispatch.max_job_files_size')),
            'Make them smaller, or raise dispatch.max_job_files_size.');
    END IF;
    RETURN total;
END
$$;
COMMENT ON FUNCTION dispatch._store_files(bigint, jsonb, text) IS
    'Renders and stores the files of job j (its spec at path jp); returns their total size';
