-- pg_cron compatibility: every statement of pg_cron 1.6's regression test
-- (sql/pg_cron-test.sql in citusdata/pg_cron), with the schema cron renamed
-- dispatch, then the checks pg_cron's test does not make.  The output agrees with
-- pg_cron's expected output except where a comment says why not.  Like pg_cron's
-- test this one drops and re-creates the extension (so job ids start at 1, as
-- there); it runs last and leaves the extension installed.
\set SHOW_CONTEXT never
DROP EXTENSION pg_dispatch CASCADE;	-- pg_cron's test begins without the extension

-- pg_dispatch has one version, 0.1, where pg_cron's test installs 1.0 and updates
-- to 1.3, then 1.4, then the newest: each of those statements names 0.1 here, and an
-- update to the installed version says so (a NOTICE pg_cron's output has not).
CREATE EXTENSION pg_dispatch VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname='pg_dispatch';
ALTER EXTENSION pg_dispatch UPDATE TO '0.1';
SELECT dispatch.schedule('test', '* * * * *', 'SELECT 1');
SELECT dispatch.unschedule('test');
ALTER EXTENSION pg_dispatch UPDATE TO '0.1';
-- pg_cron: could not find valid entry for job 'no_such_job'
SELECT dispatch.unschedule(job_name := 'no_such_job');
SELECT dispatch.schedule('testjob', '* * * * *', 'SELECT 1');
SELECT dispatch.unschedule('testjob');

-- Dropping and re-creating the extension (while the scheduler runs).
DROP EXTENSION pg_dispatch;
CREATE EXTENSION pg_dispatch VERSION '0.1';
ALTER EXTENSION pg_dispatch UPDATE;

SELECT dispatch.schedule('0 10 * * *', 'VACUUM');
SELECT dispatch.unschedule(1);

-- Invalid schedules: pg_cron's message and hint; the DETAIL, which pg_cron has
-- not, says what is wrong.
SELECT dispatch.schedule(repeat('a', 1000), '');
SELECT dispatch.schedule('* * * *', 'SELECT 1');
SELECT dispatch.schedule('5 secondc', 'SELECT 1');
SELECT dispatch.schedule('50 seconds c', 'SELECT 1');
SELECT dispatch.schedule('*/0 10 * * *', 'SELECT 1');
SELECT dispatch.schedule('-1 * * * *', 'SELECT 1');
SELECT dispatch.schedule('*/-1 10 * * *', 'SELECT 1');
SELECT dispatch.schedule('*/60 10 * * *', 'SELECT 1');
SELECT dispatch.schedule('* * * 13 *', 'SELECT 1');
SELECT dispatch.schedule('* * * 0 *', 'SELECT 1');
SELECT dispatch.schedule('*/5000000000 10 * * *', 'SELECT 1');
SELECT dispatch.schedule('-1 seconds', 'SELECT 1');
SELECT dispatch.schedule('0 seconds', 'SELECT 1');
SELECT dispatch.schedule('60 seconds', 'SELECT 1');
SELECT dispatch.schedule('10000000000 seconds', 'SELECT 1');

-- @restart is @reboot: it runs when the scheduler starts.
SELECT dispatch.schedule('@restar', 'ALTER EXTENSION pg_dispatch UPDATE');
SELECT dispatch.schedule('@restart', 'ALTER EXTENSION pg_dispatch UPDATE');

-- Scheduling again by name changes the job.
SELECT dispatch.schedule('myvacuum', '0 10 * * *', 'VACUUM');
SELECT jobid, jobname, schedule, command FROM dispatch.job ORDER BY jobid;
SELECT dispatch.schedule('myvacuum', '0 11 * * *', 'VACUUM');
SELECT jobid, jobname, schedule, command FROM dispatch.job ORDER BY jobid;
SELECT dispatch.schedule('myvacuum', '0 11 * * *', 'VACUUM FULL');
SELECT jobid, jobname, schedule, command FROM dispatch.job ORDER BY jobid;
SELECT dispatch.unschedule('myvacuum');
SELECT jobid, jobname, schedule, command FROM dispatch.job ORDER BY jobid;

-- alter_job and schedule_in_database, first as a superuser.
SELECT dispatch.alter_job(2);
select dispatch.alter_job(job_id:=2,database:='hopedoesnotexist');
create database pgcron_dbno;
revoke connect on database pgcron_dbno from public;
create user pgcron_cront with password 'pwd';
GRANT USAGE ON SCHEMA dispatch TO pgcron_cront;
-- pg_cron: User pgcron_cront does not have CONNECT privilege on pgcron_dbno.  Here:
-- PostgreSQL's own words for that check, the role in the detail.
SELECT dispatch.schedule_in_database(job_name:='can not connect', schedule:='0 11 * * *', command:='VACUUM',database:='pgcron_dbno',username:='pgcron_cront');
create database pgcron_dbyes;
SELECT dispatch.schedule_in_database(job_name:='user does not exist', schedule:='0 11 * * *', command:='VACUUM',database:='pgcron_dbyes',username:='pgcron_useraqwxszedc');
SELECT dispatch.alter_job(job_id:=2,database:='pgcron_dbno',username:='pgcron_cront');
-- The pg_cron API is executable by PUBLIC already; this changes nothing.
GRANT EXECUTE ON FUNCTION dispatch.alter_job(bigint,text,text,text,text,boolean) TO public;

-- Then as a user who has nothing but USAGE on the schema.  Job ids from here on are
-- two lower than pg_cron's (4 for its 6): pg_cron uses up a job id each time
-- schedule() changes a job by name, here changing a job takes none.
SET SESSION AUTHORIZATION pgcron_cront;
SELECT dispatch.schedule('My vacuum', '0 11 * * *', 'VACUUM');
-- pg_cron: permission denied for function schedule_in_database.  Here any user may
-- call it for themselves (in pg_cron a GRANT is needed); for another user it fails
-- with pg_cron's own message for that check.
SELECT dispatch.schedule_in_database(job_name:='his vacuum', schedule:='0 11 * * *', command:='VACUUM',database:=current_database(),username:='anotheruser');
select dispatch.alter_job(job_id:=4,username:='anotheruser');
-- pg_cron: Job 2 does not exist or you don't own it (the same, in PostgreSQL's style)
select dispatch.alter_job(job_id:=2,database:='pgcron_dbyes');
select dispatch.alter_job(job_id:=4,database:='pgcron_dbyes');
SELECT database FROM dispatch.job;
select dispatch.alter_job(job_id:=4,database:='pgcron_dbno');
SELECT database FROM dispatch.job;
RESET SESSION AUTHORIZATION;

select dispatch.alter_job(job_id:=2,username:='pgcron_cront');
SELECT username FROM dispatch.job where jobid=2;
SELECT dispatch.schedule_in_database(job_name:='his vacuum', schedule:='0 11 * * *', command:='VACUUM',database:=current_database(), username:='pgcron_cront');
SELECT username FROM dispatch.job where jobid=5;

-- Ownership checks compare role names exactly (quoted names keep their case).
CREATE USER "CaseOwner";
CREATE USER caseowner;
GRANT USAGE ON SCHEMA dispatch TO "CaseOwner", caseowner;
SELECT dispatch.schedule_in_database(job_name:='mixed case owner', schedule:='0 11 * * *', command:='VACUUM',database:=current_database(), username:='CaseOwner');
SET SESSION AUTHORIZATION caseowner;
-- pg_cron: permission denied for table job.  Here the job is not caseowner's, and
-- caseowner cannot see it.
SELECT dispatch.unschedule(6);
RESET SESSION AUTHORIZATION;

-- The install script cannot be hijacked by objects in public: a type named like a
-- function the script calls, with an implicit cast that would log its use.
DROP EXTENSION IF EXISTS pg_dispatch cascade;
CREATE TABLE test (data text);
DROP TYPE IF EXISTS current_setting cascade;
CREATE TYPE current_setting AS ENUM ('dispatch.database');
CREATE OR REPLACE FUNCTION public.func1(text, current_setting) RETURNS text
    LANGUAGE sql volatile AS 'INSERT INTO test(data) VALUES (current_user); SELECT current_database()::text;';
CREATE OR REPLACE FUNCTION public.func1(current_setting) RETURNS text
    LANGUAGE sql volatile AS 'INSERT INTO test(data) VALUES (current_user); SELECT current_database()::text;';
CREATE CAST (current_setting AS text) WITH FUNCTION public.func1(current_setting) AS IMPLICIT;
CREATE EXTENSION pg_dispatch;
select * from public.test;

-- Seconds schedules and the last day of the month ($).
SELECT dispatch.schedule('1 second', 'SELECT 1');
SELECT dispatch.schedule(' 30 sEcOnDs ', 'SELECT 1');
SELECT dispatch.schedule('59 seconds', 'SELECT 1');
SELECT dispatch.schedule('17  seconds ', 'SELECT 1');
SELECT jobid, jobname, schedule, command FROM dispatch.job ORDER BY jobid;
SELECT dispatch.schedule('last-day-of-month-job1', '0 11 $ * *', 'SELECT 1');
SELECT jobid, jobname, schedule, command FROM dispatch.job ORDER BY jobid;
SELECT dispatch.schedule('bad-last-dom-job1', '0 11 $foo * *', 'VACUUM FULL');

-- Cleaning up: DROP EXTENSION drops the schema and its grants, so the users go.
DROP EXTENSION pg_dispatch;
drop user pgcron_cront;
drop user "CaseOwner";
drop user caseowner;
drop database pgcron_dbno;
drop database pgcron_dbyes;

------------------------------------------------------------------------------
-- Beyond pg_cron's test: the error paths of the pg_cron API here.
------------------------------------------------------------------------------
CREATE EXTENSION pg_dispatch;
SELECT count(*) FROM pg_namespace WHERE nspname = 'dispatch';
SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.classid = 'pg_namespace'::regclass AND d.objid = 'dispatch'::regnamespace
   AND d.deptype = 'e';
CREATE USER cron_ann;
CREATE USER cron_bob;
CREATE ROLE cron_nologin;
GRANT USAGE ON SCHEMA dispatch TO cron_ann, cron_bob;
CREATE DATABASE cron_closed ALLOW_CONNECTIONS false;

-- schedule_in_database: bad arguments, one per line.
SELECT dispatch.schedule_in_database('x', '* * * * *', 'SELECT 1', NULL);
SELECT dispatch.schedule_in_database('x', '* * * * *', 'SELECT 1', 'no_such_db');
SELECT dispatch.schedule_in_database('x', '* * * * *', 'SELECT 1', current_database(), 'no_such_role');
SELECT dispatch.schedule_in_database('x', '* * * * *', 'SELECT 1', current_database(), 'cron_nologin');
SELECT dispatch.schedule_in_database('x', '* * * * *', 'SELECT 1', 'cron_closed');
SELECT dispatch.schedule_in_database('x', '* * * * *', NULL, current_database());
SELECT dispatch.schedule_in_database('x', NULL, 'SELECT 1', current_database());
SELECT dispatch.schedule_in_database('x', '0 0 30 2 *', 'SELECT 1', current_database());
SELECT dispatch.schedule_in_database('x', '* * * * *', repeat('x', 70000), current_database());
SELECT dispatch.schedule_in_database('x', '* * * * *', 'SELECT 1', current_database(), active => NULL);
SELECT count(*) FROM dispatch.job;
-- active => false makes an inactive job; the user defaults to the caller.
SELECT dispatch.schedule_in_database('idle', '* * * * *', 'SELECT 1', 'postgres', active => false);
SELECT jobname, database, username = current_user AS mine, active FROM dispatch.job;

-- alter_job: bad arguments, one per line; nothing changes.
SELECT dispatch.alter_job(1, active => NULL);
SELECT dispatch.alter_job(NULL, active => true);
SELECT dispatch.alter_job(1, database => 'cron_closed');
SELECT dispatch.alter_job(1, username => 'cron_nologin');
SELECT dispatch.alter_job(1, username => 'no_such_role');
SELECT dispatch.alter_job(1, schedule => '* * *');
SELECT dispatch.alter_job(1, command => ' ');
SELECT jobname, schedule, command, database, active FROM dispatch.job;
SELECT dispatch.alter_job(1, database => current_database(), active => true);
SELECT jobname, database, active FROM dispatch.job;

-- Each user sees and changes only their own jobs; names are looked up among the
-- caller's own jobs, even for a superuser.
SET SESSION AUTHORIZATION cron_ann;
SELECT dispatch.schedule('ann-job', '0 0 1 1 *', 'SELECT 1') AS ann_job \gset
SELECT jobname, username FROM dispatch.job;
SELECT dispatch.schedule_in_database('ann-there', '0 0 1 1 *', 'SELECT 1', 'postgres', 'cron_bob');
SET SESSION AUTHORIZATION cron_bob;
SELECT jobname FROM dispatch.job;
SELECT dispatch.unschedule('ann-job');
SELECT dispatch.unschedule(:ann_job);
SELECT dispatch.alter_job(:ann_job, active => false);
RESET SESSION AUTHORIZATION;
SELECT dispatch.unschedule('ann-job');
SELECT jobname, username FROM dispatch.job ORDER BY jobid;
-- Names are per user: the superuser's own job of that name is the one it changes
-- and removes; a goal may have the same name, and goal functions refuse a SQL job.
SELECT dispatch.schedule('ann-job', '0 0 1 1 *', 'SELECT 2') <> :ann_job AS another_job;
SELECT jobname, username, command FROM dispatch.job ORDER BY jobid;
SELECT dispatch.create_goal('ann-job', '{"schedule": "@yearly", "command": "true"}') > 0 AS goal;
SELECT dispatch.pause_goal('idle');
SELECT dispatch.unschedule('ann-job');
SELECT dispatch.drop_goal('ann-job');
SELECT jobname, username, command FROM dispatch.job ORDER BY jobid;
SELECT dispatch.unschedule(NULL::text);
SELECT dispatch.unschedule(NULL::bigint);

-- job_run_details: each user reads and deletes only their own ended runs.
-- (In one transaction, so that no scheduler cycle sees the made-up running run and
-- marks it lost before the checks; psql rolls back only a statement that fails.)
\set ON_ERROR_ROLLBACK on
BEGIN;
INSERT INTO dispatch.job_run_details (jobid, runid, database, username, command, status, end_time)
VALUES (:ann_job, -1, current_database(), 'cron_ann', 'SELECT 1', 'succeeded', now()),
       (:ann_job, -2, current_database(), 'cron_ann', 'SELECT 1', 'running', NULL),
       (:ann_job, -3, current_database(), 'cron_bob', 'SELECT 1', 'failed', now());
SET SESSION AUTHORIZATION cron_ann;
SELECT runid, status FROM dispatch.job_run_details ORDER BY runid;
DELETE FROM dispatch.job_run_details WHERE runid < 0;
SELECT runid, status FROM dispatch.job_run_details ORDER BY runid;
UPDATE dispatch.job_run_details SET status = 'failed';
-- Nothing else is open to a user with only USAGE on the schema.
SELECT count(*) FROM dispatch.goals;
SELECT dispatch.submit_joblist('{"stages": [{"jobs": [{"name": "x", "command": "true"}]}]}');
SELECT dispatch._sql_runs_to_launch();
RESET SESSION AUTHORIZATION;
SELECT runid, status FROM dispatch.job_run_details ORDER BY runid;
COMMIT;
\set ON_ERROR_ROLLBACK off
DELETE FROM dispatch.job_run_details WHERE runid < 0;

-- A job name is text, as in pg_cron 1.5 and later (1.4 had name), of at most 200
-- characters, as a goal's.
SELECT dispatch.schedule(repeat('n', 201), '0 0 1 1 *', 'SELECT 1');
SELECT dispatch.schedule(repeat('n', 200), '0 0 1 1 *', 'SELECT 1') > 0 AS ok;
SELECT pg_typeof(jobname), length(jobname) FROM dispatch.job WHERE jobname LIKE 'nnn%';

-- Issue 12, hole 2: once an admin makes a user's job run as the superuser, the job is
-- the superuser's.  Its former owner can neither rewrite its command (alter_job, or
-- schedule under the same name) nor run or drop it; the command stays what it was.
-- (cron_eve is a dispatch_user, so run_goal_now is open to her.)
CREATE USER cron_eve IN ROLE dispatch_user;
SET SESSION AUTHORIZATION cron_eve;
SELECT dispatch.schedule('eve-job', '0 0 1 1 *', 'SELECT 1') AS eve_job \gset
RESET SESSION AUTHORIZATION;
SELECT dispatch.alter_job(:eve_job, username => current_user);
SET SESSION AUTHORIZATION cron_eve;
SELECT dispatch.alter_job(:eve_job, command => 'SELECT 2');
SELECT dispatch.schedule('eve-job', '0 0 1 1 *', 'SELECT 3') = :eve_job AS same_job;
SELECT dispatch.unschedule(:eve_job);
SELECT dispatch.run_goal_now('eve-job');
SELECT jobname, command FROM dispatch.job ORDER BY jobid;
RESET SESSION AUTHORIZATION;
SELECT command, username = current_user AS runs_as_superuser FROM dispatch.job
 WHERE jobid = :eve_job;

-- Dropping the extension leaves nothing that keeps the users from going.
DROP EXTENSION pg_dispatch;
SELECT count(*) FROM pg_namespace WHERE nspname = 'dispatch';
DROP USER cron_ann;
DROP USER cron_bob;
DROP USER cron_eve;
DROP ROLE cron_nologin;
DROP DATABASE cron_closed;
CREATE EXTENSION pg_dispatch;
