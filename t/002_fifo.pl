# FIFO without overtaking: a later joblist never takes resources that an earlier,
# still waiting joblist can use, but may use resources the waiting job cannot use.
# Cluster-wide pools combine with node-local resources.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server();
my $dir = shared_dir();
my $agent = start_agent($node, 'n1', '--resource', 'cpu=[0-1]', '--resource', 'gpu=[0-1]');

# Joblist 1 holds one gpu until released.
my $hold = submit($node, qq({"name": "hold", "stages": [{"jobs": [
  {"name": "h", "needs": {"gpu": 1}, "command": "while [ ! -f $dir/release ]; do sleep 0.1; done"}]}]}));
wait_for($node, "SELECT state = 'running' FROM dispatch.joblist_status WHERE joblist_id = $hold",
	'holder runs');

# Joblist 2 needs both gpus: it must wait.  Joblist 3 needs one gpu, which is free,
# but taking it would overtake joblist 2.  Joblist 4 needs only a cpu, which joblist 2
# cannot use, so it may start at once.
my $big = submit($node, q({"name": "big", "stages": [{"jobs": [
  {"name": "both", "needs": {"gpu": 2}, "command": "echo $DISPATCH_RES_GPU"}]}]}));
my $small = submit($node, q({"name": "small", "stages": [{"jobs": [
  {"name": "one", "needs": {"gpu": 1}, "command": "true"}]}]}));
my $cpu = submit($node, q({"name": "cpuonly", "stages": [{"jobs": [
  {"name": "c", "command": "true"}]}]}));

wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $cpu",
	'cpu-only joblist runs beside the waiting gpu joblist');
wait_for($node, "SELECT reason = 'not enough gpu free (needs 2)' FROM dispatch.job_status
                  WHERE joblist_id = $big", 'big job says why it waits');
wait_for($node, "SELECT reason = 'earlier joblist $big holds the queue' FROM dispatch.job_status
                  WHERE joblist_id = $small", 'small job waits behind big, not overtaking');
is(query($node, "SELECT state FROM dispatch.job_status WHERE joblist_id = $small"), 'pending',
	'the free gpu was not given to the later joblist');

open(my $fh, '>', "$dir/release") or die;
close $fh;
wait_for($node, "SELECT bool_and(state = 'succeeded') FROM dispatch.joblist_status
                  WHERE joblist_id IN ($hold, $big, $small)", 'queue drains in order');
is(query($node, "SELECT dispatch.job_log(job_id) FROM dispatch.job_status WHERE joblist_id = $big"),
	"0,1\n", 'big job got both concrete gpus');
is(query($node, "SELECT (SELECT started_at FROM dispatch.joblist_status WHERE joblist_id = $big)
                     <= (SELECT started_at FROM dispatch.joblist_status WHERE joblist_id = $small)"),
	't', 'joblists started in submission order');

# A cluster-wide licence pool combines with node-local cpus; a job needing a licence
# that does not exist yet waits until an admin adds one.
my $lic = submit($node, q({"name": "lic", "stages": [{"jobs": [
  {"name": "m", "needs": {"cpu": 1, "matlab": 1}, "command": "echo $DISPATCH_RES_MATLAB $DISPATCH_RES_CPU"}]}]}));
wait_for($node, "SELECT reason = 'no online node offers matlab' FROM dispatch.job_status
                  WHERE joblist_id = $lic", 'licence job waits for a licence');
query($node, "SELECT dispatch.add_resource('matlab', 'matlab-3')");
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE joblist_id = $lic",
	'licence job runs once the pool has a licence');
like(query($node, "SELECT dispatch.job_log(job_id) FROM dispatch.job_status WHERE joblist_id = $lic"),
	qr/^matlab-3 [01]\n$/, 'job sees the cluster-wide licence and its node-local cpu');

stop_agent($agent);
$node->stop;
done_testing();
