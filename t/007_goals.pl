# Goals on a seconds schedule with a window and n=2 across two agents (spread): an
# instance that dies is replaced, the window's end stops the rest.  pg_cron-style SQL
# jobs run as their user in a background worker.  Fires missed while the server was
# down are caught up once (catch_up "once") or skipped, and a fire is never started
# twice across the restart.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(kill_grace => '1s', node_timeout => '10s');
my $dir = shared_dir();
my $n1 = start_agent($node, 'n1', '--resource', 'cpu=[0-1]');
my $n2 = start_agent($node, 'n2', '--resource', 'cpu=[0-1]');

# --- instances kept alive in a window ---------------------------------------------
query($node, qq{SELECT dispatch.create_goal('svc', '{"schedule": "30 seconds", "window": "14 seconds",
  "instances": 2, "spread": true,
  "command": "echo \$\$ > $dir/pid.\$DISPATCH_JOB_ID; while [ ! -e $dir/kill.\$DISPATCH_JOB_ID ]; do sleep 0.1; done; kill -KILL \$\$"}')});
wait_for($node, "SELECT instances_running = 2 AND count(j.*) = 2
                   FROM dispatch.goal_status s
                   LEFT JOIN dispatch.job_status j ON j.name = 'svc' AND j.state = 'running'
                  WHERE s.name = 'svc' GROUP BY instances_running", 'two instances run');
my $run = query($node, "SELECT run_id FROM dispatch.goal_runs WHERE state = 'active'");
is(query($node, "SELECT count(DISTINCT node) FROM dispatch.job_status WHERE name = 'svc' AND state = 'running'"),
	'2', 'spread: one instance per node');

# Kill one instance: it fails, and the goal starts a third joblist to keep two alive.
my $victim = query($node, "SELECT min(job_id) FROM dispatch.job_status WHERE name = 'svc' AND state = 'running'");
wait_until(sub { -s "$dir/pid.$victim" }, 'the instance wrote its pid');
# the job runs as the job user, whom the test may not signal: it kills itself on a sign
open(my $kill, '>', "$dir/kill.$victim") or die;
close $kill;
wait_for($node, "SELECT count(*) = 3 AND count(*) FILTER (WHERE l.state = 'running') = 2
                   FROM dispatch.goal_instances i JOIN dispatch.joblists l USING (joblist_id)
                  WHERE i.run_id = $run", 'the dead instance is replaced');
is(query($node, "SELECT state FROM dispatch.job_status WHERE job_id = $victim"), 'failed',
	'the killed instance failed');
is(query($node, "SELECT failures FROM dispatch.goal_status WHERE name = 'svc'"), '1',
	'goal_status counts the failure');

# The window ends: the remaining instances are stopped (SIGTERM, grace, SIGKILL).
wait_for($node, "SELECT state = 'ended' FROM dispatch.goal_runs WHERE run_id = $run",
	'the run ends with its window');
is(query($node, "SELECT outcome FROM dispatch.goal_runs WHERE run_id = $run"),
	'window ended; 1 instance(s) failed', 'the run says how it ended');
wait_for($node, "SELECT bool_and(l.state = 'cancelled') FROM dispatch.goal_instances i
                   JOIN dispatch.joblists l USING (joblist_id)
                  WHERE i.run_id = $run AND l.joblist_id <> (SELECT joblist_id FROM dispatch.jobs
                                                                WHERE job_id = $victim)",
	'the instances still running at the window end are cancelled');
wait_for($node, "SELECT count(*) = 0 FROM dispatch.jobs WHERE name = 'svc' AND state IN ('assigned', 'running')",
	'no instance runs after the window');
my @pids = map { my $p = slurp_file($_); chomp $p; $p } glob("$dir/pid.*");
wait_until(sub { !grep { process_exists($_) } @pids }, 'every instance process is gone');
query($node, "SELECT dispatch.drop_goal('svc')");

# --- pg_cron-style SQL jobs -------------------------------------------------------------
query($node, q{CREATE TABLE ticks (at timestamptz, who name);
               CREATE TABLE locked (x int);
               CREATE ROLE cronuser LOGIN IN ROLE dispatch_user;
               GRANT INSERT ON ticks TO cronuser;});
$node->safe_psql('postgres', q{SET ROLE cronuser;
  SELECT dispatch.schedule('tick', '1 seconds', 'INSERT INTO ticks VALUES (now(), current_user); INSERT INTO ticks VALUES (now(), session_user)');
  SELECT dispatch.schedule('denied', '2 seconds', 'INSERT INTO locked VALUES (1)');});
query($node, q{SELECT dispatch.schedule('vacuum', '2 seconds', 'VACUUM ticks')});
wait_for($node, q{SELECT count(*) FILTER (WHERE status = 'succeeded' AND jobid = (SELECT jobid FROM dispatch.job WHERE jobname = 'tick')) >= 2
                     AND count(*) FILTER (WHERE status = 'failed') >= 1
                     AND count(*) FILTER (WHERE return_message = 'VACUUM') >= 1
                    FROM dispatch.job_run_details}, 'SQL jobs ran');
is(query($node, "SELECT DISTINCT who FROM ticks"), 'cronuser', 'a SQL job runs as the user who scheduled it');
is(query($node, "SELECT DISTINCT return_message FROM dispatch.job_run_details d JOIN dispatch.job j USING (jobid)
                  WHERE j.jobname = 'tick' AND status = 'succeeded'"), 'INSERT 0 1',
	'the command tag is recorded');
is(query($node, "SELECT DISTINCT status || ': ' || return_message FROM dispatch.job_run_details d
                  JOIN dispatch.job j USING (jobid) WHERE j.jobname = 'denied'"),
	'failed: ERROR:  permission denied for table locked', 'a failing command is recorded with its error');
$node->safe_psql('postgres', q{SET ROLE cronuser; SELECT dispatch.unschedule('tick'); SELECT dispatch.unschedule('denied');});
query($node, q{SELECT dispatch.unschedule('vacuum')});
wait_for($node, "SELECT count(*) = 0 FROM dispatch.job_run_details WHERE status IN ('starting', 'running')",
	'no SQL run is left running');

# --- catch-up after a restart, and no double fire -------------------------------------
query($node, q{SELECT dispatch.create_goal('once', '{"schedule": "3 seconds", "catch_up": "once", "command": "true", "overlap": "queue"}');
               SELECT dispatch.create_goal('skip', '{"schedule": "3 seconds", "command": "true", "overlap": "queue"}');});
wait_for($node, "SELECT count(DISTINCT goal_id) = 2 FROM dispatch.goal_runs", 'both goals fired');
stop_agent($n1);
stop_agent($n2);
my $before = query($node, "SELECT count(*) FROM dispatch.goal_runs");
$node->stop;
sleep 7;    # fires come due while no server runs
$node->start;
wait_for($node, "SELECT count(*) > 0 FROM dispatch.goal_runs r JOIN dispatch.goals g USING (goal_id)
                  WHERE g.name = 'once' AND r.cause = 'catch_up'", 'missed fires are caught up once');
is(query($node, "SELECT count(*) FROM dispatch.goal_runs r JOIN dispatch.goals g USING (goal_id)
                  WHERE r.cause = 'catch_up'"), '1', 'only the catch_up "once" goal caught up, once');
is(query($node, "SELECT count(*) FROM (SELECT goal_id, fire_at FROM dispatch.goal_runs
                  GROUP BY 1, 2 HAVING count(*) > 1) x"), '0', 'no fire was started twice');
query($node, "SELECT dispatch.drop_goal('once'); SELECT dispatch.drop_goal('skip')");
done_testing();
