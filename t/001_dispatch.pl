# Staged joblists across two real agents: stage ordering, parallelism inside a stage,
# concrete resource IDs in the environment and never handed to two jobs at once,
# constraints, and output that can be read while the job still runs.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server();
my $dir = shared_dir();
my $a1 = start_agent($node, 'n1', '--resource', 'cpu=[0-3]', '--resource', 'gpu=[0-1]',
	'--label', 'zone=a');
my $a2 = start_agent($node, 'n2', '--resource', 'cpu=cpu[0-3]', '--label', 'zone=b');

is(query($node, "SELECT string_agg(ident, ',' ORDER BY ident) FROM dispatch.resource_status
                  WHERE node = 'n2' AND type = 'cpu'"),
	'cpu0,cpu1,cpu2,cpu3', 'Slurm-style ranges register concrete IDs');

# Stage "build" has two jobs that can only finish when both run at the same time
# (each waits for the other's file); stage "test" must start after both ended.
my $jl = submit($node, qq({"name": "nightly", "stages": [
  {"name": "build", "jobs": [
     {"name": "b1", "command": "touch $dir/b1; for i in \$(seq 600); do [ -f $dir/b2 ] && exit 0; sleep 0.1; done; exit 1"},
     {"name": "b2", "command": "touch $dir/b2; for i in \$(seq 600); do [ -f $dir/b1 ] && exit 0; sleep 0.1; done; exit 1"}]},
  {"name": "test", "jobs": [{"name": "t1", "command": "ls $dir"}]}]}));
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $jl",
	'staged joblist succeeds');
is(query($node, "SELECT count(*) FROM dispatch.job_status
                  WHERE joblist_id = $jl AND state = 'succeeded'"), '3',
	'both build jobs ran in parallel and every job succeeded');
is(query($node, "SELECT t.started_at >= max(b.finished_at)
                   FROM dispatch.job_status t, dispatch.job_status b
                  WHERE t.joblist_id = $jl AND t.name = 't1'
                    AND b.joblist_id = $jl AND b.stage = 'build' GROUP BY t.started_at"),
	't', 'stage test started only after every build job finished');

# Concrete IDs: every job takes one gpu and claims it with an atomic mkdir, so a GPU
# handed to two jobs at once makes a job fail.  The environment carries the IDs.
my @jobs = map {
	qq({"name": "g$_", "needs": {"gpu": 1}, "command": "mkdir $dir/lock-\$DISPATCH_RES_GPU || exit 9; echo gpu=\$DISPATCH_RES_GPU cuda=\$CUDA_VISIBLE_DEVICES node=\$DISPATCH_NODE job=\$DISPATCH_JOB_ID attempt=\$DISPATCH_ATTEMPT jl=\$DISPATCH_JOBLIST_ID; env | grep '^PG' ; test \$(pwd -P) = \$(cd \$DISPATCH_WORKDIR; pwd -P) || exit 8; sleep 0.5; rmdir $dir/lock-\$DISPATCH_RES_GPU"})
} 1 .. 6;
my $gl = submit($node, '{"name": "gpus", "stages": [{"jobs": [' . join(',', @jobs) . ']}]}');
wait_for($node, "SELECT state IN ('succeeded', 'failed') FROM dispatch.joblist_status
                  WHERE joblist_id = $gl", 'gpu joblist finished');
is(query($node, "SELECT state FROM dispatch.joblist_status WHERE joblist_id = $gl"),
	'succeeded', 'no GPU was handed to two jobs at once');
for my $row (split /\n/, query($node, "SELECT job_id || '|' || node || '|' || (resources->'gpu'->>0)
                                          || '|' || joblist_id
                                     FROM dispatch.job_status WHERE joblist_id = $gl"))
{
	my ($id, $n, $gpu, $l) = split /\|/, $row;
	is(query($node, "SELECT dispatch.job_log($id)"),
		"gpu=$gpu cuda=$gpu node=$n job=$id attempt=1 jl=$l\n",
		"job $id sees its concrete gpu $gpu and no PG* variable");
}
is(query($node, "SELECT count(*) FROM dispatch.job_status a JOIN dispatch.job_status b
                   ON a.job_id < b.job_id AND a.node = b.node
                  AND a.resources->'gpu' = b.resources->'gpu'
                  AND a.assigned_at < b.finished_at AND b.assigned_at < a.finished_at
                  WHERE a.joblist_id = $gl AND b.joblist_id = $gl"),
	'0', 'no two jobs held the same gpu in overlapping intervals');

# Constraints: zone=b runs on n2 only; zone=c waits and says why.
my $cl = submit($node, q({"name": "zones", "stages": [{"jobs": [
  {"name": "inb", "command": "true", "constraints": {"reported:zone": "b"}},
  {"name": "inc", "command": "true", "constraints": {"reported:zone": "c"}}]}]}));
my $inb = job_id_of($node, $cl, 'inb');
my $inc = job_id_of($node, $cl, 'inc');
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE job_id = $inb",
	'constrained job ran');
is(query($node, "SELECT node FROM dispatch.job_status WHERE job_id = $inb"), 'n2',
	'zone=b job ran on the zone=b node');
wait_for($node, "SELECT reason = 'no online node matches reported:zone=c'
                   FROM dispatch.job_status WHERE job_id = $inc",
	'unplaceable job shows why it waits');
query($node, "SELECT dispatch.cancel_joblist($cl)");

# Output is readable while the job runs.
my $ol = submit($node, qq({"name": "chatty", "stages": [{"jobs": [
  {"name": "talk", "command": "echo started; echo oops >&2; while [ ! -f $dir/go ]; do sleep 0.1; done; echo done"}]}]}));
my $talk = job_id_of($node, $ol, 'talk');
wait_for($node, "SELECT dispatch.job_log($talk) = E'started\\n'
                    AND (SELECT state FROM dispatch.job_status WHERE job_id = $talk) = 'running'",
	'output of a running job is stored before it ends');
is(query($node, "SELECT dispatch.job_log($talk, 'stderr')"), "oops\n", 'stderr is stored apart');
open(my $fh, '>', "$dir/go") or die;
close $fh;
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE job_id = $talk",
	'chatty job finished');
is(query($node, "SELECT dispatch.job_log($talk)"), "started\ndone\n", 'whole output kept');

is(stop_agent($a1), 0, 'agent n1 exits 0 on SIGTERM');
is(stop_agent($a2), 0, 'agent n2 exits 0 on SIGTERM');
is(query($node, "SELECT string_agg(state, ',' ORDER BY node) FROM dispatch.node_status"),
	'offline,offline', 'stopped agents leave their nodes offline');
$node->stop;
done_testing();
