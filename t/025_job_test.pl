# dispatch.max_job_test with a real agent: past the reservations a cycle looks at
# that many waiting jobs and stops, so a job behind them waits unlooked at (told it
# is behind earlier jobs) even where it could backfill; raising the bound lets the
# next cycle reach it.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server('dispatch.max_reservations' => '1', 'dispatch.max_job_test' => '1');
my $dir = shared_dir();
my $agent = start_agent($node, 'n1', '--resource', 'cpu=[0-3]');

# One stage, in FIFO order: hold takes 3 of the 4 cpus for up to an hour; big needs
# all 4 and gets the one reservation, from hold's end; none waits for a type no node
# offers (the one waiting job the cycle looks at past the reservation); short would
# backfill on the free cpu, but the cycle stops before it.
my $jl = submit($node, qq({"name": "bound", "stages": [{"jobs": [
  {"name": "hold", "needs": {"cpu": 3}, "timeout": "1h",
   "command": "while [ ! -f $dir/release ]; do sleep 0.1; done"},
  {"name": "big", "needs": {"cpu": 4}, "timeout": "10min", "command": "true"},
  {"name": "none", "needs": {"gpu": 1}, "command": "true"},
  {"name": "short", "timeout": "30s", "command": "true"}]}]}));

wait_for($node, "SELECT state = 'running' FROM dispatch.job_status
                  WHERE joblist_id = $jl AND name = 'hold'", 'hold runs');
wait_for($node, "SELECT reason = 'not enough cpu free (needs 4)' AND expected_node = 'n1'
                   FROM dispatch.job_status WHERE joblist_id = $jl AND name = 'big'",
	'big has the reservation');
is(query($node, "SELECT reason FROM dispatch.job_status WHERE joblist_id = $jl AND name = 'none'"),
	'no online node offers gpu', 'the cycle looks at one waiting job past the reservation');

# A few more cycles (each submission wakes the scheduler): short is never looked at.
my $cycles = query($node, 'SELECT cycles FROM dispatch.scheduler_stats()');
for my $i (1 .. 3)
{
	submit($node, qq({"name": "later$i", "stages": [{"jobs": [{"name": "x", "command": "true"}]}]}));
}
wait_for($node, "SELECT cycles >= $cycles + 3 FROM dispatch.scheduler_stats()",
	'three more cycles ran');
is(query($node, "SELECT state || ': ' || reason FROM dispatch.job_status
                  WHERE joblist_id = $jl AND name = 'short'"),
	'pending: behind earlier jobs (needs 1 cpu)',
	'the job past the bound waits, told it is behind earlier jobs, although a cpu is free');

# Raised, the bound reaches short: it backfills beside hold and ends.
query($node, "ALTER SYSTEM SET dispatch.max_job_test = 100");
query($node, "SELECT pg_reload_conf()");
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status
                  WHERE joblist_id = $jl AND name = 'short'",
	'with a higher bound the next cycle reaches short, which backfills');
is(query($node, "SELECT state FROM dispatch.job_status WHERE joblist_id = $jl AND name = 'big'"),
	'pending', 'big still waits for its reservation');

open(my $fh, '>', "$dir/release") or die;
close $fh;
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status
                  WHERE joblist_id = $jl AND name = 'big'", 'big runs once hold ends');

stop_agent($agent);
$node->stop;
done_testing();
