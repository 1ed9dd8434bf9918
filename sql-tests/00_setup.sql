-- The extension, its roles and its objects.
\set SHOW_CONTEXT never
CREATE EXTENSION pg_dispatch;
SELECT rolname FROM pg_roles WHERE rolname LIKE 'dispatch\_%' ORDER BY 1;
SELECT pg_has_role('dispatch_admin', 'dispatch_user', 'MEMBER') AS admin_is_user,
       pg_has_role('dispatch_admin', 'dispatch_agent', 'MEMBER') AS admin_is_agent;
-- Every function, table and view has a comment.
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'dispatch'::regnamespace
   AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'dispatch'::regnamespace AND c.relkind IN ('r', 'v')
   AND obj_description(c.oid, 'pg_class') IS NULL;
-- The reporting views keep the columns of the contract (more are welcome).
SELECT table_name, string_agg(column_name::text, ', ' ORDER BY ordinal_position) AS columns
  FROM information_schema.columns
 WHERE table_schema = 'dispatch'
   AND table_name IN ('joblist_status', 'job_status', 'node_status', 'resource_status')
 GROUP BY table_name ORDER BY table_name;
-- GUCs exist with their defaults (node_timeout is set by the test configuration).
SELECT name, setting, unit FROM pg_settings WHERE name LIKE 'dispatch.%' ORDER BY name;
SET dispatch.no_such_setting = 1;
-- The tests' one way to wait for the scheduler: true as soon as the query cond
-- returns true, false after tries tenths of a second.
CREATE FUNCTION public.wait_for(cond text, tries int DEFAULT 300) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
BEGIN
    FOR i IN 1 .. tries LOOP
        EXECUTE cond INTO ok;
        IF ok THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN false;
END
$$;
-- The scheduler of this server runs (it is restarted by the launcher until the
-- database exists, so wait for it with a deadline).
SELECT wait_for('SELECT pid IS NOT NULL FROM dispatch.scheduler_stats()', 600) AS scheduler_runs;
