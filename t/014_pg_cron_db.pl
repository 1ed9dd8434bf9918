# pg_cron's jobs in any database: a job scheduled with schedule_in_database runs in
# another database (one without pg_dispatch) as its user, who needs nothing but
# USAGE on the schema, as in pg_cron, and records its runs in job_run_details with
# pg_cron's texts (the command tag, "ERROR:  division by zero").  A run never stays
# 'running': a worker that is terminated, a scheduler restarted mid-run and a server
# restarted mid-run each end it; a run that gets no worker, or whose command no longer
# fits, fails at once.  Finally DROP EXTENSION and CREATE EXTENSION, 20
# times while the scheduler, the monitor and SQL job workers are busy, always work
# and leave nothing behind (no schema, no grant: DROP ROLE of a user succeeds).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server('dispatch.monitor_interval' => '1s');

# Runs sql in database db as role user; returns its output.
sub as_user
{
	my ($user, $db, $sql) = @_;
	return $node->safe_psql($db, $sql, extra_params => ['-U', $user]);
}

# Returns "status|return_message" of the latest run of job name that ended.
sub last_outcome
{
	my ($name) = @_;
	return query($node, qq{SELECT d.status || '|' || d.return_message
	                         FROM dispatch.job_run_details d JOIN dispatch.job j USING (jobid)
	                        WHERE j.jobname = '$name' AND d.end_time IS NOT NULL
	                        ORDER BY d.runid DESC LIMIT 1});
}

query($node, q{CREATE DATABASE otherdb;
               CREATE ROLE cronner LOGIN;
               GRANT USAGE ON SCHEMA dispatch TO cronner;});
$node->safe_psql('otherdb', q{CREATE TABLE ticks (who name, db name, at timestamptz DEFAULT now());
                              GRANT INSERT ON ticks TO cronner;});

# --- a job in another database, as its user -------------------------------------------
as_user('cronner', 'postgres', q{
  SELECT dispatch.schedule_in_database('tick', '1 second',
           'INSERT INTO ticks VALUES (current_user, current_database())', 'otherdb');
  SELECT dispatch.schedule_in_database('boom', '1 second', 'SELECT 1/0', 'otherdb');});
wait_for($node, q{SELECT count(*) FILTER (WHERE status = 'succeeded') >= 2
                     AND count(*) FILTER (WHERE status = 'failed') >= 1
                    FROM dispatch.job_run_details}, 'runs in otherdb ended');
is($node->safe_psql('otherdb', 'SELECT DISTINCT who || \'@\' || db FROM ticks'),
	'cronner@otherdb', 'the job ran in otherdb as cronner');
is(last_outcome('tick'), 'succeeded|INSERT 0 1', 'a success records the command tag');
is(last_outcome('boom'), 'failed|ERROR:  division by zero',
	'a failure records the error as pg_cron does');
is(query($node, q{SELECT count(*) FROM dispatch.job_run_details
                   WHERE end_time IS NOT NULL AND (job_pid IS NULL OR database <> 'otherdb'
                         OR username <> 'cronner' OR start_time IS NULL OR end_time < start_time)}),
	'0', 'every ended run has its pid, database, user and times');

# Row-level security: cronner sees its own jobs and runs only, the superuser all.
query($node, q{SELECT dispatch.schedule('mine', '0 0 1 1 *', 'SELECT 1')});
is(as_user('cronner', 'postgres', q{SELECT string_agg(jobname, ',' ORDER BY jobname) FROM dispatch.job}),
	'boom,tick', 'a user sees only their own jobs');
is(as_user('cronner', 'postgres', q{SELECT count(*) FROM dispatch.job_run_details WHERE username <> 'cronner'}),
	'0', 'a user sees only their own runs');
is(query($node, q{SELECT count(*) FROM dispatch.job}), '3', 'the superuser sees every job');
as_user('cronner', 'postgres', q{SELECT dispatch.unschedule('boom')});

# --- a run never stays 'running' ---------------------------------------------------------
# A terminated worker: the FATAL message is its outcome.
as_user('cronner', 'postgres', q{SELECT dispatch.unschedule('tick');
  SELECT dispatch.schedule_in_database('nap', '2 seconds', 'SELECT pg_sleep(60)', 'otherdb');});
wait_for($node, q{SELECT pg_terminate_backend(job_pid) FROM dispatch.job_run_details
                   WHERE status = 'running' AND job_pid IS NOT NULL}, 'a running nap has a pid');
wait_for($node, q{SELECT count(*) > 0 FROM dispatch.job_run_details
                   WHERE return_message = 'FATAL:  terminating background worker "pg_dispatch SQL job" due to administrator command'},
	'a terminated run fails with its FATAL message');
as_user('cronner', 'postgres', q{SELECT dispatch.unschedule('nap')});
wait_for($node, q{SELECT count(*) = 0 FROM dispatch.job_run_details WHERE status IN ('starting', 'running')},
	'no run is left running');

# A role that can no longer log in: the run fails with the login error.
as_user('cronner', 'postgres', q{SELECT dispatch.schedule_in_database('locked', '1 second', 'SELECT 1', 'otherdb')});
query($node, q{ALTER ROLE cronner NOLOGIN});
wait_for($node, q{SELECT count(*) > 0 FROM dispatch.job_run_details
                   WHERE return_message = 'FATAL:  role "cronner" is not permitted to log in'},
	'a run whose role may not log in fails with the login error');
query($node, q{ALTER ROLE cronner LOGIN});
as_user('cronner', 'postgres', q{SELECT dispatch.unschedule('locked')});

# A scheduler restarted while a run goes on finds its outcome in shared memory.
# (Each job is unscheduled once its run is under way: the run goes on.)
as_user('cronner', 'postgres', q{SELECT dispatch.schedule_in_database('slow', '1 second', 'SELECT pg_sleep(4)', 'otherdb')});
wait_for($node, q{SELECT count(*) > 0 FROM dispatch.job_run_details WHERE status = 'running' AND job_pid IS NOT NULL},
	'the slow run is running');
my $run = query($node, q{SELECT runid FROM dispatch.job_run_details WHERE status = 'running'});
as_user('cronner', 'postgres', q{SELECT dispatch.unschedule('slow')});
my $old = query($node, 'SELECT pid FROM dispatch.scheduler_stats()');
query($node, "SELECT pg_terminate_backend($old)");
wait_for($node, "SELECT pid IS NOT NULL AND pid <> $old FROM dispatch.scheduler_stats()", 'a new scheduler runs');
wait_for($node, "SELECT status = 'succeeded' AND return_message = 'SELECT 1' FROM dispatch.job_run_details WHERE runid = $run",
	'the new scheduler records the outcome of the run its predecessor started');

# A server that stops dead while a run goes on (immediate mode: nobody records
# anything): after the restart the run is lost, and says so.
as_user('cronner', 'postgres', q{SELECT dispatch.schedule_in_database('slower', '1 second', 'SELECT pg_sleep(60)', 'otherdb')});
wait_for($node, "SELECT count(*) > 0 FROM dispatch.job_run_details WHERE status = 'running' AND runid > $run",
	'the slower run is running');
$run = query($node, q{SELECT runid FROM dispatch.job_run_details WHERE status = 'running'});
as_user('cronner', 'postgres', q{SELECT dispatch.unschedule('slower')});
$node->stop('immediate');
$node->start;
wait_for($node, "SELECT status = 'failed' AND return_message LIKE '%lost%' FROM dispatch.job_run_details WHERE runid = $run",
	'a run cut off by a server restart fails');

# --- limits: no free worker, a command longer than the slots ---------------------------
# With five worker processes, four are taken (pg_dispatch's launcher, scheduler and
# monitor, the logical replication launcher): a second SQL run at once gets none.  A
# command scheduled before dispatch.max_sql_command_size was lowered no longer fits.
as_user('cronner', 'postgres', q{SELECT dispatch.schedule_in_database('long', '1 second',
  'SELECT 1 ' || repeat('-', 2000) || chr(10) || ';', 'otherdb')});
$node->append_conf('postgresql.conf', "max_worker_processes = 5\ndispatch.max_sql_command_size = '1kB'\n");
$node->restart;
wait_for($node, q{SELECT count(*) > 0 FROM dispatch.job_run_details
                   WHERE return_message = 'the command is longer than dispatch.max_sql_command_size (1024 bytes)'},
	'a command longer than the slots fails at once');
as_user('cronner', 'postgres', q{SELECT dispatch.unschedule('long');
  SELECT dispatch.schedule_in_database('busy' || i, '1 second', 'SELECT pg_sleep(3)', 'otherdb')
    FROM generate_series(1, 3) i;});
wait_for($node, q{SELECT count(*) > 0 FROM dispatch.job_run_details
                   WHERE return_message = 'could not start a background worker (raise max_worker_processes)'},
	'a run that finds no free worker fails with a message saying so');
as_user('cronner', 'postgres', q{SELECT dispatch.unschedule('busy' || i) FROM generate_series(1, 3) i});
$node->append_conf('postgresql.conf', "max_worker_processes = 8\ndispatch.max_sql_command_size = '64kB'\n");
$node->restart;

# --- DROP EXTENSION / CREATE EXTENSION under load, 20 times --------------------------------
query($node, q{CREATE ROLE loader LOGIN});
$node->safe_psql('otherdb', q{GRANT INSERT ON ticks TO loader});
for my $i (1 .. 20)
{
	query($node, 'DROP EXTENSION pg_dispatch CASCADE');
	query($node, q{CREATE EXTENSION pg_dispatch;
	               GRANT USAGE ON SCHEMA dispatch TO loader;
	               SELECT dispatch.submit_joblist($${"name": "load", "stages": [{"jobs": [{"name": "j", "command": "true"}]}]}$$);});
	as_user('loader', 'postgres', q{
	  SELECT dispatch.schedule('here', '1 second', 'SELECT pg_sleep(0.3)');
	  SELECT dispatch.schedule_in_database('there', '1 second', 'INSERT INTO ticks VALUES (current_user, current_database())', 'otherdb');});
	$node->poll_query_until('postgres',
		q{SELECT count(*) >= 2 FROM dispatch.job_run_details WHERE status IN ('running', 'succeeded')})
	  or die "no SQL run started in round $i";
}
query($node, 'DROP EXTENSION pg_dispatch CASCADE');
pass('20 rounds of DROP EXTENSION / CREATE EXTENSION under load');
is(query($node, q{SELECT count(*) FROM pg_namespace WHERE nspname = 'dispatch'}), '0',
	'DROP EXTENSION drops the dispatch schema');
$node->safe_psql('otherdb', q{REVOKE ALL ON ticks FROM loader, cronner});
query($node, 'DROP ROLE loader; DROP ROLE cronner');
pass('the roles that had grants on the schema can be dropped');
query($node, 'CREATE EXTENSION pg_dispatch');
wait_for($node, 'SELECT pid IS NOT NULL FROM dispatch.scheduler_stats()', 'the scheduler runs after all that');
unlike(slurp_file($node->logfile), qr/deadlock detected/, 'no deadlock was ever detected');
done_testing();
