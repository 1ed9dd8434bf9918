# Continuations (issue 14): a job waits with "$DISPATCH_AGENT" wait NAME until a
# signal of its joblist arrives, from SQL (dispatch.signal) or from another job
# ("$DISPATCH_AGENT" signal NAME JSON), with no database credentials of its own.
# Signals are durable: one sent before the wait waits for it, one sent while the
# agent is down reaches the job once it is back, and each goes to one waiter.
# A user cannot signal another user's joblist; a hostile job's bad request files are
# refused and the agent keeps working.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(node_timeout => '20s');
my $dir = shared_dir();
my $agent = start_agent($node, 'n1', '--resource', 'cpu=[0-7]');

# Submits a joblist of the graph form whose jobs (name => command) run side by side.
sub joblist
{
	my ($name, @jobs) = @_;
	my @specs;
	while (my ($job, $command) = splice(@jobs, 0, 2))
	{
		push @specs, { name => $job, command => $command };
	}
	return submit($node, JSON::PP->new->canonical->encode({ name => $name, jobs => \@specs }));
}

# Waits until job id is running and shown waiting for signal name.
sub wait_waiting
{
	my ($job, $name) = @_;
	return wait_for($node, qq{SELECT state = 'running' AND reason = 'waiting for signal "$name"'
	                            AND waiting = 'waiting for signal "$name"'
	                          FROM dispatch.job_status WHERE job_id = $job},
		qq{job $job waits for signal "$name"});
}

# Waits until job id has ended; returns its state and its output (stdout).
sub ended
{
	my ($job) = @_;
	wait_for($node, "SELECT state NOT IN ('pending', 'assigned', 'running')
	                   FROM dispatch.job_status WHERE job_id = $job", "job $job ends");
	return (query($node, "SELECT state FROM dispatch.job_status WHERE job_id = $job"),
		query($node, "SELECT dispatch.job_log($job)"));
}

# --- a job waits; a signal from SQL lets it go on ------------------------------------
my $jl = joblist('wait-sql', w => qq{"\$DISPATCH_AGENT" wait go > \$DISPATCH_WORKDIR/p & echo \$! > $dir/waitpid; wait \$! && echo "got \$(cat \$DISPATCH_WORKDIR/p)"});
my $w = job_id_of($node, $jl, 'w');
wait_waiting($w, 'go');
chomp(my $pid = slurp_file("$dir/waitpid"));
my $status = slurp_file("/proc/$pid/status");
like($status, qr/^NoNewPrivs:\s+1$/m, 'the waiting subcommand runs with no_new_privs');
like($status, qr/^CapPrm:\s+0+$/m, 'and without the capabilities of the agent binary');
like($status, qr/^CapEff:\s+0+$/m, 'none effective either');
is(query($node, "SELECT count(*) FROM dispatch.signals WHERE joblist_id = $jl"), '0',
	'no signal yet');
query($node, qq{SELECT dispatch.signal($jl, 'go', '{"x":1}')});
my ($state, $out) = ended($w);
is($state, 'succeeded', 'the signal lets the waiting job finish');
is($out, qq{got {"x": 1}\n}, 'and it printed the payload as one line of JSON');
is(query($node, "SELECT to_job = $w AND delivered_at IS NOT NULL FROM dispatch.signals
                  WHERE joblist_id = $jl"), 't', 'the signal is recorded as delivered to it');

# --- a signal sent before the wait waits for it --------------------------------------
$jl = joblist('signal-first', e => qq{while [ ! -f $dir/early ]; do sleep 0.1; done; "\$DISPATCH_AGENT" wait early});
my $e = job_id_of($node, $jl, 'e');
query($node, qq{SELECT dispatch.signal($jl, 'early', '"first"')});
wait_for($node, "SELECT state = 'running' FROM dispatch.job_status WHERE job_id = $e", 'job e runs');
PostgreSQL::Test::Utils::append_to_file("$dir/early", '');
($state, $out) = ended($e);
is($state . ' ' . $out, qq{succeeded "first"\n}, 'a signal sent before the wait is taken at once');

# --- one job of a joblist signals another ---------------------------------------------
$jl = joblist('continuation',
	waiter => q{"$DISPATCH_AGENT" wait go},
	sender => q{sleep 0.5; "$DISPATCH_AGENT" signal go '{"y":2}' && echo sent});
my ($waiter, $sender) = (job_id_of($node, $jl, 'waiter'), job_id_of($node, $jl, 'sender'));
($state, $out) = ended($waiter);
is($state . ' ' . $out, qq{succeeded {"y": 2}\n}, 'a job waits for a signal another job sends');
($state, $out) = ended($sender);
is($state . ' ' . $out, "succeeded sent\n", 'the sender is told "sent"');
is(query($node, "SELECT sent_by || ' ' || from_job FROM dispatch.signals WHERE joblist_id = $jl"),
	"job $sender $sender", 'the signal is recorded as the sending job\'s');

# --- an agent restart while jobs wait ---------------------------------------------------
# r1 asks before the agent goes, r2 only while it is gone; both signals are sent while it
# is gone, and both jobs get one once it is back.
$jl = joblist('restart',
	r1 => q{"$DISPATCH_AGENT" wait later},
	r2 => qq{while [ ! -f $dir/r2 ]; do sleep 0.1; done; "\$DISPATCH_AGENT" wait later});
my ($r1, $r2) = (job_id_of($node, $jl, 'r1'), job_id_of($node, $jl, 'r2'));
wait_waiting($r1, 'later');
wait_for($node, "SELECT state = 'running' FROM dispatch.job_status WHERE job_id = $r2", 'job r2 runs');
kill_agent($agent);
PostgreSQL::Test::Utils::append_to_file("$dir/r2", '');
wait_until(sub { my @r = glob("$agent->{workdir}/jobs/$r2.1/flow-*/*.req"); @r > 0 },
	'r2 asks while the agent is down');
query($node, "SELECT dispatch.signal($jl, 'later', '1'), dispatch.signal($jl, 'later', '2')");
is(query($node, "SELECT state FROM dispatch.job_status WHERE job_id IN ($r1, $r2)"), "running\nrunning",
	'the jobs keep waiting while their agent is down');
$agent = start_agent($node, 'n1', '--resource', 'cpu=[0-7]');
my ($s1, $o1) = ended($r1);
my ($s2, $o2) = ended($r2);
is("$s1 $s2", 'succeeded succeeded', 'both waiters go on once the agent is back');
is(join(',', sort($o1, $o2)), "1\n,2\n", 'each got one of the signals sent while it was down');
is(query($node, "SELECT count(DISTINCT to_job) FROM dispatch.signals WHERE joblist_id = $jl"), '2',
	'delivered to two requests');

# --- two waiters, two signals: each gets one ------------------------------------------
$jl = joblist('pair', p1 => q{"$DISPATCH_AGENT" wait pair}, p2 => q{"$DISPATCH_AGENT" wait pair});
my ($p1, $p2) = (job_id_of($node, $jl, 'p1'), job_id_of($node, $jl, 'p2'));
wait_waiting($p1, 'pair');
wait_waiting($p2, 'pair');
query($node, qq{SELECT dispatch.signal($jl, 'pair', '"a"')});
wait_for($node, "SELECT count(*) = 1 FROM dispatch.job_status
                  WHERE job_id IN ($p1, $p2) AND state = 'succeeded'", 'one waiter took the first signal');
is(query($node, "SELECT count(*) FROM dispatch.job_status WHERE job_id IN ($p1, $p2) AND state = 'running'"),
	'1', 'the other still waits');
query($node, qq{SELECT dispatch.signal($jl, 'pair', '"b"')});
($s1, $o1) = ended($p1);
($s2, $o2) = ended($p2);
is(join(',', sort($o1, $o2)), qq{"a"\n,"b"\n}, 'each waiter got one signal, each signal went once');

# --- another user's joblist ------------------------------------------------------------
query($node, 'CREATE ROLE alice IN ROLE dispatch_user; CREATE ROLE bob IN ROLE dispatch_user');
my $spec = JSON::PP->new->encode({ name => 'alices', jobs => [ { name => 'a', command => q{"$DISPATCH_AGENT" wait hers} } ] });
$spec =~ s/'/''/g;
my $al = query($node, "SET ROLE alice; SELECT dispatch.submit_joblist('$spec')");
my $aj = job_id_of($node, $al, 'a');
wait_waiting($aj, 'hers');
my ($rc, $stdout, $stderr) = $node->psql('postgres', "SET ROLE bob; SELECT dispatch.signal($al, 'hers', '\"bob\"')");
isnt($rc, 0, "bob cannot signal alice's joblist");
like($stderr, qr/permission denied to signal joblist $al/, 'permission denied');
is(query($node, "SELECT count(*) FROM dispatch.signals WHERE joblist_id = $al"), '0', 'and nothing was sent');
query($node, "SET ROLE alice; SELECT dispatch.signal($al, 'hers', '\"alice\"')");
($state, $out) = ended($aj);
is($state . ' ' . $out, qq{succeeded "alice"\n}, 'alice can');

# --- hostile request files, refused payloads; the agent keeps working ---------------
# Each trap waits for its answer and prints it; the signal with too big a payload is
# refused by the server (dispatch.max_signal_size, 64 kB) and exits 1.
my $trap = q{for i in $(seq 100); do [ -f "$DISPATCH_CONTROL/$1.ans" ] && break; sleep 0.1; done; cat "$DISPATCH_CONTROL/$1.ans"};
$jl = joblist('hostile',
	link => qq{ln -s /etc/passwd "\$DISPATCH_CONTROL/evil.req"; sh -c '$trap' - evil},
	fifo => qq{mkfifo "\$DISPATCH_CONTROL/fifo.req"; sh -c '$trap' - fifo},
	big => qq{head -c 1100000 /dev/zero | tr '\\0' ' ' > "\$DISPATCH_CONTROL/.big"; mv "\$DISPATCH_CONTROL/.big" "\$DISPATCH_CONTROL/big.req"; sh -c '$trap' - big},
	fat => q{"$DISPATCH_AGENT" signal go "\"$(head -c 70000 /dev/zero | tr '\0' a)\"" 2>&1; echo "rc=$?"},
	bad => q{"$DISPATCH_AGENT" wait 'no spaces' 2>&1; echo "rc=$?"});
my %h = map { $_ => job_id_of($node, $jl, $_) } qw(link fifo big fat bad);
($state, $out) = ended($h{link});
like($out, qr/^\{"status":"refused","message":"the request file is a symbolic link"\}$/, 'a symlink for a request is refused');
($state, $out) = ended($h{fifo});
like($out, qr/"refused","message":"the request file is not a regular file"/, 'a FIFO is refused');
($state, $out) = ended($h{big});
like($out, qr/"refused","message":"the request file has 1100000 bytes, more than 1049600 allowed"/,
	'a request file too big is refused');
($state, $out) = ended($h{fat});
like($out, qr/refused: the payload is \d+ bytes, more than dispatch.max_signal_size = 64kB allows\nrc=1\n/,
	'a payload beyond dispatch.max_signal_size is refused, exit status 1');
($state, $out) = ended($h{bad});
like($out, qr/invalid signal name "no spaces".*\nrc=2\n/, 'a bad name is a usage error, exit status 2');
my ($agent_pid) = slurp_file($agent->{log}) =~ /.*\[(\d+)\] INFO: dispatch-agent \S+ starting/s;
ok($agent_pid && process_exists($agent_pid), 'the agent still runs');
$jl = joblist('after-hostile', w => q{"$DISPATCH_AGENT" wait fine}, s => q{"$DISPATCH_AGENT" signal fine '"ok"'});
($state, $out) = ended(job_id_of($node, $jl, 'w'));
is($state . ' ' . $out, qq{succeeded "ok"\n}, 'and relays signals as before');

stop_agent($agent);
done_testing();
