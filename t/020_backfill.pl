# Backfill with real agents: a job that cannot start is promised its units from
# the running job's time limit; a short job runs at once on what is free, longer
# ones wait with squeue-like reasons, and when the holder ends, the promised job
# starts before every later one.  Then a cycle fails, and the scheduler goes on.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server();
my $dir = shared_dir();
my $agent = start_agent($node, 'n1', '--resource', 'cpu=[0-1]');

# The holder takes one of the two cpus for at most an hour (+ kill_grace, 2s here).
my $hold = submit($node, qq({"name": "hold", "stages": [{"jobs": [
  {"name": "h", "timeout": "1h", "command": "while [ ! -f $dir/release ]; do sleep 0.1; done"}]}]}));
wait_for($node, "SELECT state = 'running' FROM dispatch.job_status WHERE joblist_id = $hold",
	'holder runs');

# big needs both cpus: it waits for the holder's limit.  long would still run then,
# nolimit might: both wait.  short ends long before: it runs now, beside the holder.
my $big = submit($node, q({"name": "big", "stages": [{"jobs": [
  {"name": "b", "needs": {"cpu": 2}, "timeout": "10min", "command": "true"}]}]}));
my $long = submit($node, q({"name": "long", "stages": [{"jobs": [
  {"name": "l", "timeout": "2h", "command": "true"}]}]}));
my $nolimit = submit($node, q({"name": "nolimit", "stages": [{"jobs": [
  {"name": "n", "command": "true"}]}]}));
my $short = submit($node, q({"name": "short", "stages": [{"jobs": [
  {"name": "s", "timeout": "30s", "command": "true"}]}]}));

wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $short",
	'the short job backfills beside the holder');
my $big_job = query($node, "SELECT job_id FROM dispatch.job_status WHERE joblist_id = $big");
wait_for($node, "SELECT reason = 'not enough cpu free (needs 2)'
                        AND expected_start = to_timestamp(floor(extract(epoch FROM
                              (SELECT assigned_at FROM dispatch.job_status
                                WHERE joblist_id = $hold))) - 1 + 3602)
                        AND expected_node = 'n1'
                   FROM dispatch.job_status WHERE joblist_id = $big",
	'big is promised the cpus from the end of the holder\'s limit');
like(query($node, "SELECT reason FROM dispatch.job_status WHERE joblist_id = $long"),
	qr/^reserved for job $big_job from \d\d:\d\d$/, 'long waits for big\'s reservation');
is(query($node, "SELECT reason FROM dispatch.job_status WHERE joblist_id = $nolimit"),
	'backfill: needs a time limit', 'a job without a limit may not backfill');
is(query($node, "SELECT count(*) FROM dispatch.job_status
                  WHERE joblist_id IN ($long, $nolimit) AND state = 'pending'
                    AND expected_start = (SELECT expected_start + interval '10min 2s'
                                            FROM dispatch.job_status WHERE joblist_id = $big)"),
	'2', 'both are promised the cpus from the end of big\'s limit');

open(my $fh, '>', "$dir/release") or die;
close $fh;
wait_for($node, "SELECT bool_and(state = 'succeeded') FROM dispatch.joblist_status
                  WHERE joblist_id IN ($hold, $big, $long, $nolimit)", 'the queue drains');
is(query($node, "SELECT (SELECT started_at FROM dispatch.job_status WHERE joblist_id = $big)
                        < ALL (SELECT started_at FROM dispatch.job_status
                                WHERE joblist_id IN ($long, $nolimit))"),
	't', 'the promised job started before the later ones');
is(query($node, "SELECT count(*) FROM dispatch.job_status
                  WHERE joblist_id IN ($hold, $big, $long, $nolimit, $short)
                    AND (expected_start IS NOT NULL OR expected_node IS NOT NULL)"),
	'0', 'no reservation is shown once the jobs ran');

# A failing cycle is logged and retried: the scheduler keeps its process, and the
# failed cycle leaves nothing behind.
my $pid = query($node, "SELECT pid FROM dispatch.scheduler_stats()");
my $tick = query($node, "SELECT pg_get_functiondef('dispatch._goal_tick()'::regprocedure)");
my $offset = -s $node->logfile;
query($node, q{CREATE OR REPLACE FUNCTION dispatch._goal_tick() RETURNS double precision
               LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'injected cycle failure'; END$$});
my $after = submit($node, q({"name": "after", "stages": [{"jobs": [
  {"name": "a", "timeout": "1min", "command": "true"}]}]}));
$node->wait_for_log(qr/injected cycle failure/, $offset);
$node->wait_for_log(qr/pg_dispatch scheduling cycle failed, retrying in 1000 ms/, $offset);
is(query($node, "SELECT pid FROM dispatch.scheduler_stats()"), $pid,
	'the scheduler survives a failed cycle');
is(query($node, "SELECT state FROM dispatch.job_status WHERE joblist_id = $after"), 'pending',
	'the failed cycle assigned nothing');
query($node, $tick);
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $after",
	'a later cycle runs the job once the failure is gone');
is(query($node, "SELECT pid FROM dispatch.scheduler_stats()"), $pid, 'still the same scheduler');

stop_agent($agent);
$node->stop;
done_testing();
