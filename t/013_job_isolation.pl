# Jobs and their agent (issue 12, holes 1 and 11): a hostile job attacks its agent and the
# other jobs on its node, and every attack is checked by its effect.  The job runs as the
# job user (--job-user), with no capability, and cannot read the agent's environment,
# command line, ~/.pgpass or spool, cannot signal it, cannot find another job's work
# directory, and cannot make a later job unrunnable by squatting its spool directory.  A
# job whose spool directory cannot be made is reported failed with a reason, never left
# running.  The agent refuses --job-user when it cannot switch to it, and refuses to run
# jobs at all without a job user unless told so in so many words.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = start_server(kill_grace => '1s');
my $dir = shared_dir();

# The agent's secrets: a password in its command line, one in its environment, and a
# ~/.pgpass (0600) in a home that others may enter, as a real home is.
my $home = PostgreSQL::Test::Utils::tempdir();
chmod(0755, $home) or die;
PostgreSQL::Test::Utils::append_to_file("$home/.pgpass", "*:*:*:*:sekrit-pgpass\n");
chmod(0600, "$home/.pgpass") or die;
my $agent;
{
	local $ENV{HOME} = $home;
	local $ENV{PGPASSWORD} = 'sekrit-environ';
	$agent = start_agent($node, 'n1', { conninfo => $node->connstr('postgres') . ' password=sekrit-cmdline' },
		'--resource', 'cpu=[0-3]');
}
my ($agent_pid) = slurp_file($agent->{log}) =~ /\[(\d+)\] INFO: dispatch-agent .* starting/;
ok($agent_pid, "the agent's pid is $agent_pid");
unlike(slurp_file("/proc/$agent_pid/cmdline"), qr/sekrit/, "no password in the agent's /proc/PID/cmdline");
like(slurp_file("/proc/$agent_pid/cmdline"), qr/^dispatch-agent: agent of node n1/,
	'the agent shows its title instead');
like(slurp_file($agent->{log}), qr/starting: .* jobs run as ${\ job_user()}/, 'the agent says whom jobs run as');

# A victim job keeps a secret in its work directory and a 000 tree, and waits.
my $victim_jl = submit($node, qq({"name": "victim", "stages": [{"jobs": [{"name": "victim",
  "command": "echo victim-secret > secret.txt; mkdir -p locked/deeper; echo x > locked/deeper/f; chmod 000 locked/deeper locked; echo ok > $dir/victim.ready; while [ ! -e $dir/release ]; do sleep 0.1; done; echo victim-done"}]}]}));
my $victim = job_id_of($node, $victim_jl, 'victim');
wait_until(sub { -e "$dir/victim.ready" }, 'the victim runs');
my $spool = $agent->{workdir};
my ($victim_work) = glob("$spool/jobs/$victim.1/work-*");
ok($victim_work && -d $victim_work, 'the victim has a work directory with a random name');
is(sprintf('%04o', (stat($victim_work))[2] & 07777), '0700', 'the work directory is mode 0700');
is((getpwuid((stat($victim_work))[4]))[0], job_user(), 'and belongs to the job user');
is(sprintf('%04o', (stat("$spool/jobs"))[2] & 07777), '0711', 'the spool tree cannot be listed by jobs');

# The attacker: every attempt leaves its evidence in $dir/a.* (exit codes in *.rc).
my $attack = join('; ',
	"id -u > $dir/a.uid",
	"grep -E '^Cap(Inh|Prm|Eff|Amb):' /proc/self/status > $dir/a.caps",
	"grep NoNewPrivs /proc/self/status > $dir/a.nnp",
	"cat /proc/$agent_pid/environ > $dir/a.environ; echo \$? > $dir/a.environ.rc",
	"tr '\\\\0' ' ' < /proc/$agent_pid/cmdline > $dir/a.cmdline",
	"cat \$HOME/.pgpass > $dir/a.pgpass; echo \$? > $dir/a.pgpass.rc",
	"ls $spool > $dir/a.ls; echo \$? > $dir/a.ls.rc",
	"ls $spool/jobs/$victim.1 > $dir/a.lsjob; echo \$? > $dir/a.lsjob.rc",
	"cat $spool/jobs/$victim.1/stdout $spool/jobs/$victim.1/meta $spool/history.jsonl > $dir/a.spool; echo \$? > $dir/a.spool.rc",
	"ls $spool/jobs/$victim.1/work > $dir/a.oldwork; echo \$? > $dir/a.oldwork.rc",
	"echo forged > $spool/jobs/$victim.1/status; echo \$? > $dir/a.forge.rc",
	"kill -STOP $agent_pid; echo \$? > $dir/a.kill.rc",
	"rc=0; for i in 1 2 3 4 5; do mkdir $spool/jobs/\$((DISPATCH_JOB_ID + i)).1 || rc=1; done; echo \$rc > $dir/a.squat.rc",
	"echo attacked");
my $attack_jl = submit($node, qq({"name": "attack", "stages": [{"jobs": [{"name": "attack", "command": "$attack"}]}]}));
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $attack_jl",
	'the attacker ran');

chomp(my $uid = slurp_file("$dir/a.uid"));
is($uid, (getpwnam(job_user()))[2], 'the job runs as the job user');
is(slurp_file("$dir/a.caps"), join('', map { "Cap$_:\t0000000000000000\n" } qw(Inh Prm Eff Amb)),
	'the job has no capability, ambient ones included');
is(slurp_file("$dir/a.nnp"), "NoNewPrivs:\t1\n", 'the job cannot gain privileges by exec');
isnt(slurp_file("$dir/a.environ.rc"), "0\n", "the job cannot read the agent's environment");
is(slurp_file("$dir/a.environ"), '', '... and got nothing of it');
unlike(slurp_file("$dir/a.cmdline"), qr/sekrit/, "the agent's command line holds no password");
isnt(slurp_file("$dir/a.pgpass.rc"), "0\n", "the job cannot read the agent's ~/.pgpass");
is(slurp_file("$dir/a.pgpass"), '', '... and got nothing of it');
isnt(slurp_file("$dir/a.lsjob.rc"), "0\n", "the job cannot list another job's spool directory");
isnt(slurp_file("$dir/a.spool.rc"), "0\n", "the job cannot read the agent's spool files");
is(slurp_file("$dir/a.spool"), '', '... and got nothing of them');
isnt(slurp_file("$dir/a.oldwork.rc"), "0\n", "another job's work directory is not at a guessable path");
isnt(slurp_file("$dir/a.forge.rc"), "0\n", "the job cannot forge another job's status");
isnt(slurp_file("$dir/a.kill.rc"), "0\n", 'the job cannot signal its agent');
is(slurp_file("$dir/a.squat.rc"), "1\n", 'the job cannot create the spool directories of later jobs');
unlike(join('', map { slurp_file($_) } glob("$dir/a.*")), qr/sekrit|victim-secret/,
	'no secret reached the attacker');

# Hole 11: later jobs still run and succeed.
my $later_jl = submit($node, q({"name": "later", "stages": [{"jobs": [
  {"name": "l1", "command": "echo later"}, {"name": "l2", "command": "echo later"}]}]}));
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $later_jl",
	'jobs after the squatting attempt run and succeed');

# The victim ends well, and its work directory goes, 000 tree and all.
open(my $fh, '>', "$dir/release") or die;
close $fh;
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $victim_jl",
	'the victim succeeds');
wait_until(sub { !-e "$spool/jobs/$victim.1" }, "the victim's spool directory is removed, 000 tree and all");

# A job whose spool directory cannot be made fails with a reason and frees its cpu.
chmod(0511, "$spool/jobs") or die;
my $blocked_jl = submit($node, q({"name": "blocked", "stages": [{"jobs": [{"name": "b", "command": "true"}]}]}));
wait_for($node, "SELECT state = 'failed' FROM dispatch.joblist_status WHERE joblist_id = $blocked_jl",
	'a job that cannot get its spool directory fails');
like(query($node, "SELECT reason FROM dispatch.job_status WHERE joblist_id = $blocked_jl"),
	qr/could not create directory ".*": Permission denied/, '... with the reason');
is(query($node, "SELECT count(*) FROM dispatch.resource_status WHERE node = 'n1' AND job_id IS NOT NULL"),
	'0', '... and frees its resources');
chmod(0711, "$spool/jobs") or die;

# Without a job user (the insecure flag), a job squatting the next spool directories
# cannot leave a later job running without a process: the later job fails with a reason.
my $n2 = start_agent($node, 'n2', '--insecure-run-jobs-as-agent', '--resource', 'cpu=[0-1]');
like(slurp_file($n2->{log}), qr/WARNING: jobs run as the agent's own user/, 'the insecure flag is warned about');
my $squat_jl = submit($node, qq({"name": "squat", "stages": [{"jobs": [{"name": "s", "constraints": {"node": "n2"},
  "command": "for i in 1 2 3 4 5 6; do mkdir $n2->{workdir}/jobs/\$((DISPATCH_JOB_ID + i)).1; done"}]}]}));
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $squat_jl",
	'the squatter ran');
my $victim2_jl = submit($node, q({"name": "victim2", "stages": [{"jobs": [{"name": "v", "constraints": {"node": "n2"},
  "command": "echo hello"}]}]}));
wait_for($node, "SELECT state = 'failed' FROM dispatch.joblist_status WHERE joblist_id = $victim2_jl",
	'the squatted job is reported failed, not left running');
like(query($node, "SELECT reason FROM dispatch.job_status WHERE joblist_id = $victim2_jl"),
	qr/could not create directory ".*": it exists already/, '... with the reason');
is(query($node, "SELECT count(*) FROM dispatch.resource_status WHERE node = 'n2' AND job_id IS NOT NULL"),
	'0', '... and its resources are free');
stop_agent($n2);

# Startup refusals: no job user at all; a job user without the capabilities to become it;
# a spool the job user cannot reach.
my $conninfo = $node->connstr('postgres') . ' user=agent_n1';
my $nocaps = PostgreSQL::Test::Utils::tempdir() . '/dispatch-agent';
system('cp', agent_binary(), $nocaps) == 0 or die;	# cp drops file capabilities
my ($stdout, $stderr);
my $rc = IPC::Run::run([ agent_binary(), '--dbname', $conninfo, '--node', 'x1' ], '<', \undef, '>', \$stdout, '2>', \$stderr);
ok(!$rc && $? >> 8 == 2, 'without a job user the agent refuses to start');
like($stderr, qr/no job user: give --job-user NAME/, '... and says why');
IPC::Run::run([ $nocaps, '--dbname', $conninfo, '--node', 'x1', '--job-user', job_user() ], '<', \undef, '>', \$stdout, '2>', \$stderr);
is($? >> 8, 2, 'an agent without the capabilities refuses --job-user');
like($stderr, qr/cannot run jobs as "${\ job_user()}": the agent lacks the capabilities CAP_SETUID, CAP_SETGID, CAP_CHOWN/,
	'... and names them');
my $closed = PostgreSQL::Test::Utils::tempdir();	# 0700: the job user cannot enter it
IPC::Run::run([ agent_binary(), '--dbname', $conninfo, '--node', 'x1', '--job-user', job_user(),
	'--workdir', "$closed/spool" ], '<', \undef, '>', \$stdout, '2>', \$stderr);
is($? >> 8, 1, 'an agent whose spool the job user cannot reach refuses to start');
like($stderr, qr/job user "${\ job_user()}" cannot reach the spool directory ".*": ".*" is not searchable by it/,
	'... and says where it is blocked');

done_testing();
