-- Templates and job files: dispatch.render_template's exact semantics, every
-- malformed files/replacements spec, size limits, and what is stored and handed out.
\set SHOW_CONTEXT never
\set VERBOSITY default

-- One pass, left to right, the longest pattern at a position wins.
SELECT dispatch.render_template('host=@HOST@ port=@PORT@', '{"@HOST@": "db1", "@PORT@": "5432"}');
SELECT dispatch.render_template('@A @AB @ABC @ABCD', '{"@A": "1", "@AB": "2", "@ABC": "3"}');
SELECT dispatch.render_template('abcd', '{"bcd": "1", "abc": "2"}') AS leftmost;
SELECT dispatch.render_template('aaaaa', '{"aa": "X"}') AS overlapping;
SELECT dispatch.render_template('abx abc', '{"b": "B", "abc": "1"}') AS nested;
SELECT dispatch.render_template('abcc', '{"abc": "1", "c": "2"}') AS suffix;
SELECT dispatch.render_template('abcdx', '{"abcde": "1", "ab": "2", "cd": "3"}') AS fallback;
-- Replaced text is never scanned again.
SELECT dispatch.render_template('ab', '{"a": "b", "b": "c"}') AS no_recursion;
SELECT dispatch.render_template('@X@', '{"@X@": "@X@@X@"}') AS pattern_in_replacement;
SELECT dispatch.render_template('@XY@', '{"@X": "@", "Y@": "!"}') AS made_across_boundary;
SELECT dispatch.render_template('{{name}}', '{"{{name}}": "{{name}}"}') AS self;
-- Patterns are plain strings: no regex, escapes, $, {}, \ or % meaning.
SELECT dispatch.render_template('$1 .* \d [a] (x) ^$ a|b ? + %s %d ${X} $X {} \ \\',
  '{"$1": "one", ".*": "all", "\\d": "digit", "[a]": "set", "(x)": "group", "^$": "anchors",
    "a|b": "alt", "?": "q", "+": "plus", "%s": "S", "%d": "D", "${X}": "shell", "$X": "var",
    "{}": "braces", "\\": "bs"}');
SELECT dispatch.render_template('a.c abc', '{"a.c": "dot"}') AS dot_is_plain;
SELECT dispatch.render_template('x', '{"x": "$1\\0&\\\\"}') AS replacement_is_plain;
-- Any UTF-8, newlines included.
SELECT dispatch.render_template('été 10€ 東京 🚀', '{"été": "summer", "€": "EUR", "東京": "Tokyo", "🚀": "rocket"}');
SELECT dispatch.render_template('é e' || chr(769), '{"é": "1", "e": "2"}') AS composed_vs_decomposed;
SELECT dispatch.render_template(E'[a]\nkey=@V@\n[b]\nkey=@V@\n', '{"@V@": "line1\nline2"}');
SELECT dispatch.render_template(E'begin\nmiddle\nend', '{"begin\nmiddle": "BM"}') AS multiline_pattern;
-- Binary-looking text without NUL.
SELECT encode(convert_to(dispatch.render_template(E'\x01\x02@X@\x7f\x1b[0m',
  '{"@X@": "\u0001\u001f"}'), 'UTF8'), 'hex') AS control_bytes;
-- Nothing to do.
SELECT dispatch.render_template('', '{"@X@": "1"}') = '' AS empty_template;
SELECT dispatch.render_template('nothing here', '{"@X@": "1"}') AS no_match;
SELECT dispatch.render_template('text', '{}') AS empty_map;
SELECT dispatch.render_template('a@X@b', '{"@X@": ""}') AS deletes;
SELECT dispatch.render_template(NULL, '{}') IS NULL AS null_template,
       dispatch.render_template('x', NULL) IS NULL AS null_map;
-- Key order in the JSON does not matter (jsonb sorts keys; longest wins anyway).
SELECT dispatch.render_template('@ABC', '{"@ABC": "z", "@A": "x", "@AB": "y"}') =
       dispatch.render_template('@ABC', '{"@A": "x", "@AB": "y", "@ABC": "z"}') AS order_free;
-- Many patterns: 10,000 patterns, each replaced once, plus text around them.
SELECT md5(dispatch.render_template(string_agg('<' || i || '>', ' ' ORDER BY i),
                                    jsonb_object_agg('<' || i || '>', 'v' || i)))
     = md5(string_agg('v' || i, ' ' ORDER BY i)) AS ten_thousand
  FROM generate_series(1, 10000) i;
-- Patterns that are prefixes of each other, 1,000 deep: the longest wins everywhere.
SELECT dispatch.render_template(repeat('a', 2500), jsonb_object_agg(repeat('a', i), i::text))
  FROM generate_series(1, 1000) i;
-- A 10 MB template, 1,000 patterns, the same result as a plain reference.
SELECT length(r) AS chars, md5(r) = md5(repeat('value-7 and value-999 ', 455000)) AS same
  FROM (SELECT dispatch.render_template(repeat('@P7@ and @P999@ ', 455000),
                 jsonb_object_agg('@P' || i || '@', 'value-' || i)) AS r
          FROM generate_series(1, 1000) i) x;

-- Maps: an object of non-empty patterns and string replacements, else an error at its path.
SELECT dispatch.render_template('x', '[]');
SELECT dispatch.render_template('x', '"a"');
SELECT dispatch.render_template('x', '1');
SELECT dispatch.render_template('x', 'null');
SELECT dispatch.render_template('x', '{"": "a"}');
SELECT dispatch.render_template('x', '{"@P@": 8081}');
SELECT dispatch.render_template('x', '{"@P@": true}');
SELECT dispatch.render_template('x', '{"@P@": null}');
SELECT dispatch.render_template('x', '{"@P@": {"a": "b"}}');
SELECT dispatch.render_template('x', '{"@P@": ["a"]}');
SELECT dispatch.render_template('x', '{"plain_key": 1}');
SELECT dispatch.render_template('x', '{"say \"hi\"": 1}');

-- Job files and replacement maps in a joblist spec: every error names its path.
CREATE FUNCTION pg_temp.job(extra jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('name', 'files', 'stages', jsonb_build_array(jsonb_build_object(
        'jobs', jsonb_build_array('{"name": "j", "command": "true", "needs": {"handdriven": 1}}'::jsonb || extra))))
$$;
SELECT count(*) AS joblists_before FROM dispatch.joblists \gset
SELECT dispatch.submit_joblist(pg_temp.job('{"files": {}}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": "a.txt"}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [1]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "owner": "me"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": 1, "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "/etc/passwd", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "../escape", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a/../../escape", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a/..", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "./a", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a//b", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a/", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a\nb", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job(jsonb_build_object('files', jsonb_build_array(
    jsonb_build_object('path', repeat('d/', 512) || 'f', 'content', '')))));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": ""}, {"path": "a", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "conf", "content": ""}, {"path": "conf/app.ini", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "conf/app.ini", "content": ""}, {"path": "conf", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a_b", "content": ""}, {"path": "a%b", "content": ""}, {"path": "a%b/c", "content": ""}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": 1}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": null}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "mode": 755}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "mode": "0999"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "mode": "4755"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "mode": "07777"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "mode": "rwx"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "template": "yes"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "template": false, "replacements": {"x": "y"}}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "replacements": []}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "replacements": {"": "y"}}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "", "replacements": {"@P@": 1}}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"template": 1}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"template": true, "replacements": "x"}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"template": true, "replacements": {"@H@": ["db1"]}}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"replacements": {"@H@": "db1"}}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"replacements": {"@H@": "db1"}, "files": [{"path": "a", "content": "@H@"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job(jsonb_build_object('files',
    (SELECT jsonb_agg(jsonb_build_object('path', 'f' || i, 'content', '')) FROM generate_series(1, 1001) i))));
-- Size limits: the content as given, the rendered file, the rendered command, the job's total.
SET dispatch.max_file_size = 10;
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "01234567890"}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "@@", "replacements": {"@": "0123456789"}}]}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"command": "echo @X@", "template": true, "replacements": {"@X@": "0123456789"}}'));
SELECT dispatch.submit_joblist(pg_temp.job('{"command": "echo 0123456789"}'));
RESET dispatch.max_file_size;
SET dispatch.max_job_files_size = 20;
SELECT dispatch.submit_joblist(pg_temp.job('{"files": [{"path": "a", "content": "0123456789"}, {"path": "b", "content": "0123456789x"}]}'));
RESET dispatch.max_job_files_size;
SELECT count(*) - :joblists_before AS joblists_added, (SELECT count(*) FROM dispatch.job_files) AS files
  FROM dispatch.joblists;

-- What is stored: the per-file map merged over the job's (the file wins), the command
-- rendered when the job is a template, modes normalised, non-templates kept as they are.
SELECT dispatch.submit_joblist(pg_temp.job('{
  "command": "sh run.sh @HOST@", "template": true,
  "replacements": {"@HOST@": "db1", "@PORT@": "5432"},
  "files": [
    {"path": "conf/app.ini", "content": "host=@HOST@\nport=@PORT@\n", "replacements": {"@PORT@": "8081"}},
    {"path": "conf/db.ini", "content": "port=@PORT@\n", "template": true, "mode": "0600"},
    {"path": "run.sh", "content": "cat conf/app.ini # @HOST@ kept\n", "mode": "755"},
    {"path": "empty", "content": ""}]}')) AS jl \gset
SELECT command FROM dispatch.jobs WHERE joblist_id = :jl;
SELECT f.path, f.mode, f.template, f.content, f.bytes
  FROM dispatch.job_files f JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY f.path;
-- The agent gets the rendered files with the job (as JSON, ordered by path).
SELECT dispatch.agent_register('tpl1', '{}') IS NOT NULL AS registered;
SELECT dispatch._assign(job_id, 'tpl1', '{}', '{}') FROM dispatch.jobs WHERE joblist_id = :jl;
SELECT action, command, jsonb_pretty(files) FROM dispatch.agent_poll('tpl1');
SELECT dispatch.cancel_joblist(:jl::bigint);
SELECT dispatch.agent_offline('tpl1');
-- JSON paths are quoted alike in C (render_template's errors, src/template.c) and in SQL
-- (dispatch._path): a plain identifier as it is, any other key as a JSON string.
CREATE FUNCTION pg_temp.c_path(path text, key text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    PERFORM dispatch._render_template('', jsonb_build_object(key, 1), path);
    RETURN NULL;
EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN substring(detail FROM '^The error is at (.*)\.$');
END
$$;
SELECT k AS key, dispatch._path('replacements', k) AS sql_path,
       pg_temp.c_path('replacements', k) = dispatch._path('replacements', k) AS agree,
       pg_temp.c_path('stages[0].jobs[1].files[2].replacements', k)
           = dispatch._path('stages[0].jobs[1].files[2].replacements', k) AS agree_nested
  FROM unnest(ARRAY['plain', '_x9', 'Key_2', 'with space', 'a.b', 'quo"te', 'back\slash',
                    'été', '東京', '', '9lives', 'x-y', '$1', 'a[0]']) WITH ORDINALITY AS x(k, o)
 ORDER BY o;
