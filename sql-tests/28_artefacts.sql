-- Artefacts (sql/src/76_artefacts.sql .. 82_artefact_graph.sql), driven by hand:
-- workspaces and rules with every error, what a watching agent reports, the
-- stale set of a change, a rebuild planned in dependency order with a LaTeX-like
-- cycle as one iterated job, its inputs fetched from and outputs handed to the
-- store, a build that did not store an output, request_build, the graph.  Build
-- jobs need the type "handart", which no node offers, so only this script runs
-- them; the scheduler starts the rebuilds.
\set SHOW_CONTEXT never
\set VERBOSITY default
-- (errors that name a job: shown without their detail, which has its id)
\i sql-tests/include/wait_until.sql
-- A changed event for path with content c.
CREATE FUNCTION pg_temp.changed(ws text, path text, c text) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('workspace', ws, 'path', path, 'kind', 'changed',
                              'size', octet_length(c), 'mtime_ns', 1700000000000000000,
                              'sha256', encode(sha256(convert_to(c, 'UTF8')), 'hex'))
$$;
CREATE FUNCTION pg_temp.sha(c text) RETURNS text
LANGUAGE sql AS $$ SELECT encode(sha256(convert_to(c, 'UTF8')), 'hex') $$;
-- The rebuild of ws the scheduler starts once ws has been quiet for
-- dispatch.rebuild_delay (its tick, 79_rebuilds.sql).
CREATE FUNCTION pg_temp.rebuild(ws text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_temp.wait_until(format(
        'SELECT rebuild IS NOT NULL AND changed_at IS NULL FROM dispatch.workspaces WHERE workspace = %L', ws));
    RETURN (SELECT rebuild FROM dispatch.workspaces WHERE workspace = ws);
END
$$;
-- Whether the scheduler saw the rebuild of ws end.
CREATE FUNCTION pg_temp.rebuild_over(ws text) RETURNS boolean
LANGUAGE sql AS $$
    SELECT pg_temp.wait_until(format('SELECT rebuild IS NULL FROM dispatch.workspaces WHERE workspace = %L', ws))
$$;
CREATE FUNCTION pg_temp.job(jl bigint, name text) RETURNS bigint
LANGUAGE sql AS $$ SELECT job_id FROM dispatch.jobs j WHERE j.joblist_id = jl AND j.name = job.name $$;
CREATE FUNCTION pg_temp.status(ws text)
RETURNS TABLE (path text, state text, reason text, rule text, stored boolean, sha text)
LANGUAGE sql AS $$
    SELECT path, state, reason, rule, stored, left(sha256, 8) FROM dispatch.artefact_status
     WHERE workspace = ws ORDER BY path
$$;
SELECT dispatch.agent_register('ar1', '{"resources": [{"type": "cpu", "ident": "0"}]}') IS NOT NULL AS registered;
CREATE ROLE ar_alice IN ROLE dispatch_user;
CREATE ROLE ar_bob IN ROLE dispatch_user;

-- Workspaces: an admin's, bound to a node
SELECT dispatch.create_workspace('bad name', 'ar_alice');
SELECT dispatch.create_workspace('paper', 'nobody_here');
SELECT dispatch.create_workspace('paper', 'ar_alice', 'ghost');
SELECT dispatch.create_workspace('paper', 'ar_alice', 'ar1');
SELECT dispatch.create_workspace('paper', 'ar_bob');
SELECT dispatch.create_workspace('other', 'ar_bob');
SELECT dispatch.bind_workspace('other', 'ghost');
SELECT dispatch.bind_workspace('nowhere', 'ar1');
SELECT dispatch.bind_workspace('other', NULL);
SET ROLE ar_alice;
SELECT dispatch.create_workspace('mine', 'ar_alice');
SELECT dispatch.drop_workspace('other');
SELECT dispatch.bind_workspace('paper', 'ar1');

-- Rules: every error, then a LaTeX paper (latex and bibtex read each other's
-- outputs, latex its own .aux) and a word count of every .tex
SELECT dispatch.create_rule('bad name', '{}');
SELECT dispatch.create_rule('r', '[]');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "outputs": ["a"], "job": {"command": "c"}, "colour": 1}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "inputs": ["a"], "job": {"command": "c"}}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "outputs": [], "job": {"command": "c"}}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "outputs": ["*.pdf"], "job": {"command": "c"}}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "outputs": ["a", "a"], "job": {"command": "c"}}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "inputs": ["../etc/passwd"], "outputs": ["a"], "job": {"command": "c"}}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "outputs": ["/abs"], "job": {"command": "c"}}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "outputs": ["a"], "job": {"command": "c", "after": ["x"]}}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "outputs": ["a"], "job": {}}');
SELECT dispatch.create_rule('r', '{"workspace": "paper", "outputs": ["a"], "job": {"command": "c"}, "max_passes": 0}');
SELECT dispatch.create_rule('r', '{"workspace": "other", "outputs": ["a"], "job": {"command": "c"}}');
SELECT dispatch.create_rule('r', '{"workspace": "nowhere", "outputs": ["a"], "job": {"command": "c"}}');
SELECT dispatch.create_rule('latex', '{"workspace": "paper", "inputs": ["paper.tex", "paper.aux", "paper.bbl"],
  "outputs": ["paper.pdf", "paper.aux"], "max_passes": 5,
  "job": {"command": "latex paper.tex", "needs": {"handart": 1}, "timeout": "1 minute"}}') > 0 AS latex;
SELECT dispatch.create_rule('bibtex', '{"workspace": "paper", "inputs": ["paper.aux", "refs.bib"],
  "outputs": ["paper.bbl"], "job": {"command": "bibtex paper", "needs": {"handart": 1}, "timeout": "1 minute"}}') > 0 AS bibtex;
SELECT dispatch.create_rule('wc', '{"workspace": "paper", "inputs": ["**/*.tex"], "outputs": ["count.txt"],
  "job": {"command": "cat *.tex | wc -w > count.txt", "needs": {"handart": 1}}}') > 0 AS wc;
SELECT dispatch.create_rule('latex', '{"workspace": "paper", "outputs": ["x"], "job": {"command": "c"}}');
SELECT dispatch.create_rule('again', '{"workspace": "paper", "outputs": ["paper.pdf"], "job": {"command": "c"}}');
RESET ROLE;
SET dispatch.max_rules_per_workspace = 3;
SET ROLE ar_alice;
SELECT dispatch.create_rule('fourth', '{"workspace": "paper", "outputs": ["x"], "job": {"command": "c"}}');
RESET ROLE;
RESET dispatch.max_rules_per_workspace;
SET ROLE ar_alice;
SELECT * FROM pg_temp.status('paper');
RESET ROLE;
SET ROLE ar_bob;
SELECT dispatch.alter_rule('latex', '{"workspace": "paper", "outputs": ["x"], "job": {"command": "c"}}');
SELECT dispatch.drop_rule('latex');
SELECT dispatch.request_build('paper', 'paper.pdf');
RESET ROLE;
SELECT dispatch.drop_rule('nope');
SELECT dispatch.request_build('paper', 'paper.tex');

-- The graph: the cycle's edges marked
SELECT e ->> 'from' AS "from", e ->> 'to' AS "to", e ->> 'rule' AS rule, e ? 'cycle' AS cycle
  FROM jsonb_array_elements(dispatch.artefact_graph('paper') -> 'edges') e;
SELECT dispatch.artefact_graph('nowhere');

-- What the watching agent reports: errors refuse the batch, events for a
-- workspace not bound to the node are rejected one by one
SELECT dispatch.agent_file_events('ar1', '{}');
SELECT dispatch.agent_file_events('ar1', '[{"workspace": "paper", "kind": "moved", "path": "a"}]');
-- (a path no workspace file may have is refused alone, not the batch)
SELECT dispatch.agent_file_events('ar1', jsonb_build_array(pg_temp.changed('paper', '../x', 'x'),
                                                            pg_temp.changed('paper', E'new\nline', 'x')));
SELECT dispatch.agent_file_events('ar1', '[{"workspace": "paper", "kind": "changed", "path": "a", "size": 1, "mtime_ns": 1, "sha256": "00"}]');
SELECT dispatch.agent_file_events('ar1', '[{"workspace": "paper", "kind": "changed", "path": "a", "size": -1, "mtime_ns": 1}]');
SELECT dispatch.agent_file_events('ar1', '[{"workspace": "paper", "kind": "append", "path": "a", "offset": 0}]');
SELECT dispatch.agent_file_events('ghost', '[]');
SELECT dispatch.agent_file_events('ar1', jsonb_build_array(pg_temp.changed('other', 'x.tex', 'x'),
                                                            pg_temp.changed('nowhere', 'x.tex', 'x')));
-- sources arrive: the store wants what rules read (not notes.txt)
SELECT dispatch.agent_file_events('ar1', jsonb_build_array(
    pg_temp.changed('paper', 'paper.tex', '\cite{knuth}'), pg_temp.changed('paper', 'refs.bib', '@book{knuth}'),
    pg_temp.changed('paper', 'notes.txt', 'todo'), '{"workspace": "paper", "kind": "rescanned"}'::jsonb))
    AS answer \gset
SELECT :'answer'::jsonb - 'want' AS answer;
SELECT w ->> 'path' AS wanted, w ->> 'sha256' = pg_temp.sha(CASE w ->> 'path' WHEN 'paper.tex' THEN '\cite{knuth}' ELSE '@book{knuth}' END) AS sha_ok
  FROM jsonb_array_elements(:'answer'::jsonb -> 'want') w;
-- a workspace's files are limited; another node may not give the contents of this one's
SET dispatch.max_artefacts_per_workspace = 7;
SELECT dispatch.agent_file_events('ar1', jsonb_build_array(pg_temp.changed('paper', 'extra.txt', 'x'))) - 'want' AS answer;
RESET dispatch.max_artefacts_per_workspace;
SELECT dispatch.agent_register('ar2', '{"resources": [{"type": "cpu", "ident": "0"}]}') IS NOT NULL AS ar2_registered;
SELECT dispatch.agent_put_blob('ar2', 'paper', 'paper.tex', pg_temp.sha('\cite{knuth}'), convert_to('\cite{knuth}', 'UTF8'));
SELECT dispatch.agent_put_blob('ar1', 'paper', 'paper.tex', pg_temp.sha('\cite{knuth}'), convert_to('\cite{knuth}', 'UTF8'));
SELECT dispatch.agent_put_blob('ar1', 'paper', 'refs.bib', pg_temp.sha('@book{knuth}'), convert_to('@book{knuth} forged', 'UTF8'));
SELECT dispatch.agent_put_blob('ar1', 'paper', 'refs.bib', pg_temp.sha('old'), convert_to('old', 'UTF8'));
SELECT dispatch.agent_put_blob('ar1', 'paper', 'ghost.bib', pg_temp.sha('x'), convert_to('x', 'UTF8'));
SET dispatch.max_blob_size = '5B';
SELECT dispatch.agent_put_blob('ar1', 'paper', 'refs.bib', pg_temp.sha('@book{knuth}'), convert_to('@book{knuth}', 'UTF8'));
RESET dispatch.max_blob_size;
SELECT dispatch.agent_put_blob('ar1', 'paper', 'refs.bib', pg_temp.sha('@book{knuth}'), convert_to('@book{knuth}', 'UTF8'));
SELECT * FROM pg_temp.status('paper');
SELECT count(*) AS changes_waiting FROM dispatch.artefact_changes WHERE workspace = 'paper';

-- The rebuild: the cycle as one iterated job, the word count on its own
SELECT pg_temp.rebuild('paper') AS jl \gset
SELECT name, command, needs, after, builds FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
SELECT j.name, b.input_paths, b.input_globs, b.outputs FROM dispatch.build_jobs b JOIN dispatch.jobs j USING (job_id)
 WHERE j.joblist_id = :jl ORDER BY j.job_id;
SELECT * FROM pg_temp.status('paper');
SELECT count(*) AS changes_left FROM dispatch.artefact_changes WHERE workspace = 'paper';
SELECT pg_temp.job(:jl, 'latex+bibtex') AS cyc, pg_temp.job(:jl, 'wc') AS wc \gset
SELECT dispatch._assign(:cyc, 'ar1', '{}', '{}');
SELECT p.flow -> 'artefacts' ->> 'workspace' AS workspace,
       jsonb_path_query_array(p.flow, '$.artefacts.inputs[*].path') AS inputs,
       p.flow -> 'artefacts' -> 'outputs' AS outputs, p.flow -> 'artefacts' ->> 'max_blob_size' AS max_blob
  FROM dispatch.agent_poll('ar1') p WHERE p.action = 'run';
SELECT convert_from(dispatch.agent_blob('ar1', :cyc, 1, pg_temp.sha('\cite{knuth}')), 'UTF8') AS fetched;
\set VERBOSITY terse
SELECT dispatch.agent_blob('ar1', :cyc, 1, pg_temp.sha('todo'));
SELECT dispatch.agent_store_output('ar1', :cyc, 1, 'notes.txt', pg_temp.sha('x'), convert_to('x', 'UTF8'));
\set VERBOSITY default
SELECT dispatch.agent_store_output('ar1', :cyc, 1, 'paper.pdf', pg_temp.sha('x'), convert_to('y', 'UTF8'));
SELECT dispatch.agent_store_output('ar1', :cyc, 1, 'paper.pdf', pg_temp.sha('%PDF'), convert_to('%PDF', 'UTF8'));
SELECT dispatch.agent_store_output('ar1', :cyc, 1, 'paper.aux', pg_temp.sha('aux2'), convert_to('aux2', 'UTF8'));
SELECT dispatch.agent_store_output('ar1', :cyc, 1, 'paper.bbl', pg_temp.sha('bbl'), convert_to('bbl', 'UTF8'));
SELECT dispatch.agent_report('ar1', format('[{"job_id": %s, "attempt": 1, "finish": {"exit_code": 0, "result": {"passes": 2, "converged": true}}}]', :cyc)::jsonb) -> 0 ->> 'status' AS cycle_report;
-- the word count's build stores nothing: it fails, and says why
SELECT dispatch._assign(:wc, 'ar1', '{}', '{}');
SELECT count(*) AS claimed FROM dispatch.agent_poll('ar1') WHERE action = 'run';
SELECT dispatch.agent_report('ar1', format('[{"job_id": %s, "attempt": 1, "finish": {"exit_code": 0, "outputs_error": 5}}]', :wc)::jsonb);
SELECT dispatch.agent_report('ar1', format('[{"job_id": %s, "attempt": 1, "finish": {"exit_code": 0}}]', :wc)::jsonb) -> 0 ->> 'status' AS wc_report;
SELECT name, state, reason FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
SELECT * FROM pg_temp.status('paper');
SELECT pg_temp.rebuild_over('paper');

-- The same content again changes nothing; a new bibliography makes the cycle
-- stale, not the word count; request_build asks for the word count alone
SELECT dispatch.agent_file_events('ar1', jsonb_build_array(pg_temp.changed('paper', 'refs.bib', '@book{knuth}'))) ->> 'accepted' AS accepted;
SELECT count(*) AS changes_waiting FROM dispatch.artefact_changes WHERE workspace = 'paper';
SELECT dispatch.agent_file_events('ar1', jsonb_build_array(pg_temp.changed('paper', 'refs.bib', '@book{knuth2}'))) -> 'want' -> 0 ->> 'path' AS wanted;
SELECT * FROM pg_temp.status('paper');
-- no rebuild while the store waits for the new content (it would build from the old)
SELECT pg_sleep(1);
SELECT rebuild IS NULL AS not_yet, dispatch._content_pending('paper') AS content_pending
  FROM dispatch.workspaces WHERE workspace = 'paper';
SET dispatch.max_store_size = 0;
SELECT dispatch.agent_put_blob('ar1', 'paper', 'refs.bib', pg_temp.sha('@book{knuth2}'), convert_to('@book{knuth2}', 'UTF8'));
RESET dispatch.max_store_size;
SELECT dispatch.agent_put_blob('ar1', 'paper', 'refs.bib', pg_temp.sha('@book{knuth2}'), convert_to('@book{knuth2}', 'UTF8'));
SELECT pg_temp.rebuild('paper') AS jl \gset
SELECT name, after FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
-- a change during the rebuild waits for the next; what it makes stale stays stale
SELECT dispatch.agent_file_events('ar1', jsonb_build_array(pg_temp.changed('paper', 'paper.tex', '\cite{knuth2}'))) ->> 'accepted' AS accepted;
SELECT dispatch.agent_put_blob('ar1', 'paper', 'paper.tex', pg_temp.sha('\cite{knuth2}'), convert_to('\cite{knuth2}', 'UTF8'));
SELECT rebuild = :jl AS same_rebuild FROM dispatch.workspaces WHERE workspace = 'paper';
SELECT dispatch.cancel_joblist(:jl::bigint);
SELECT * FROM pg_temp.status('paper');
SELECT pg_temp.rebuild('paper') AS jl \gset
SELECT name, after FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
SELECT dispatch.cancel_joblist(:jl::bigint);
SELECT pg_temp.rebuild_over('paper');
SET ROLE ar_alice;
SELECT dispatch.request_build('paper', 'count.txt');
RESET ROLE;
SELECT pg_temp.rebuild('paper') AS jl \gset
SELECT name, after FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
SELECT dispatch.cancel_joblist(:jl::bigint);

-- A rebuild that cannot be started fails what it would build and says why, and takes
-- the change (shown in a transaction the scheduler cannot see, under a command limit
-- that no job meets)
BEGIN;
SET LOCAL dispatch.max_file_size = '4B';
INSERT INTO dispatch.artefact_changes (workspace, kind, rule_id)
SELECT 'paper', 'rule', rule_id FROM dispatch.rules WHERE name = 'wc';
SELECT dispatch._start_rebuild(w) IS NULL AS not_started FROM dispatch.workspaces w WHERE workspace = 'paper';
SELECT * FROM pg_temp.status('paper') WHERE rule = 'wc';
SELECT count(*) AS changes_left FROM dispatch.artefact_changes WHERE workspace = 'paper';
ROLLBACK;

-- A changed rule: it stays in its workspace; its outputs (and what depends on them)
-- are rebuilt; the agent's word on an output that was not made fails the job with it
SELECT pg_temp.rebuild_over('paper');
SET ROLE ar_alice;
SELECT dispatch.alter_rule('wc', '{"workspace": "other", "outputs": ["count.txt"], "job": {"command": "c"}}');
SELECT dispatch.alter_rule('wc', '{"workspace": "paper", "inputs": ["**/*.tex"], "outputs": ["count.txt"],
  "job": {"command": "wc -w paper.tex > count.txt", "needs": {"handart": 1}}}');
RESET ROLE;
SELECT pg_temp.rebuild('paper') AS jl \gset
SELECT name, command FROM dispatch.jobs WHERE joblist_id = :jl ORDER BY job_id;
SELECT pg_temp.job(:jl, 'wc') AS wc \gset
SELECT dispatch._assign(:wc, 'ar1', '{}', '{}');
SELECT count(*) AS claimed FROM dispatch.agent_poll('ar1') WHERE action = 'run';
SELECT dispatch.agent_report('ar1', format('[{"job_id": %s, "attempt": 1, "finish": {"exit_code": 0, "outputs_error": "output \"count.txt\" was not made"}}]', :wc)::jsonb) -> 0 ->> 'status' AS wc_report;
SELECT * FROM pg_temp.status('paper') WHERE rule = 'wc';

-- A deleted source; a followed file; the DOT picture
SELECT dispatch.agent_file_events('ar1', '[{"workspace": "paper", "path": "notes.txt", "kind": "deleted"},
  {"workspace": "paper", "path": "build.log", "kind": "append", "offset": 0, "data": "pass 1\n"},
  {"workspace": "paper", "path": "build.log", "kind": "append", "offset": 7, "data": "pass 2\n"}]') ->> 'accepted' AS accepted;
SELECT count(*) AS notes FROM dispatch.artefacts WHERE workspace = 'paper' AND path = 'notes.txt';
-- a deleted output stays known, stale, to be made again
SELECT dispatch.agent_file_events('ar1', '[{"workspace": "paper", "path": "paper.pdf", "kind": "deleted"}]') ->> 'accepted' AS accepted;
SELECT * FROM pg_temp.status('paper') WHERE path = 'paper.pdf';
SELECT dispatch.followed_text('paper', 'build.log');
SELECT dispatch.followed_text('nowhere', 'build.log');
-- only the latest dispatch.max_follow_size bytes are kept; a write below the end
-- (the file was truncated) replaces what was kept from there
SET dispatch.max_follow_size = '10B';
SELECT dispatch.agent_file_events('ar1', '[{"workspace": "paper", "path": "build.log", "kind": "append", "offset": 14, "data": "pass 3\n"},
  {"workspace": "paper", "path": "build.log", "kind": "append", "offset": 21, "data": "done\n"}]') ->> 'accepted' AS accepted;
RESET dispatch.max_follow_size;
SELECT dispatch.followed_text('paper', 'build.log');
SELECT dispatch.agent_file_events('ar1', '[{"workspace": "paper", "path": "build.log", "kind": "append", "offset": 0, "data": "again\n"}]') ->> 'accepted' AS accepted;
SELECT dispatch.followed_text('paper', 'build.log');
SET ROLE ar_bob;
SELECT dispatch.followed_text('paper', 'build.log');
RESET ROLE;
SELECT dispatch.artefact_graph_dot('paper');
SELECT dispatch._glob_regex(g) AS regex, 'a/b/c.tex' ~ dispatch._glob_regex(g) AS deep, 'c.tex' ~ dispatch._glob_regex(g) AS top
  FROM unnest(ARRAY['**/*.tex', '*.tex', 'a/?/c.tex', 'a.b+c']) g;

-- Dropping: a rule's outputs stay, the workspace goes with everything
SET ROLE ar_alice;
SELECT dispatch.drop_rule('wc');
SELECT dispatch.drop_workspace('paper');
RESET ROLE;
SELECT count(*) AS artefacts_left FROM dispatch.artefacts WHERE workspace = 'paper';
UPDATE dispatch.blobs SET used_at = now() - interval '1 hour';
SELECT dispatch._collect_blobs();
SELECT count(*) AS blobs_left FROM dispatch.blobs;
DROP ROLE ar_alice;
DROP ROLE ar_bob;
