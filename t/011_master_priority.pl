# Master priority (issue 5, R1-4): etcd and four Patroni 3.0.2 members in synchronous
# mode, with deploy/patroni/master_priority.py run beside each.  The list in Patroni's
# dynamic configuration says A > B > C, and N is never master.  The names are
# chosen against the grain: the cluster bootstraps on m1, which is C.
#
#   A = m2, B = m3, C = m1, N = m4 (tag nofailover)
#
# Then: the controllers make A the leader (by switchover) and B its synchronous
# standby (C is tagged nosync); kill -9 of A makes B the leader, not C; kill -9
# of B makes C the leader, not N, although N streams too; kill -9 of C leaves N
# alone and it still does not promote.  N's role is polled throughout by a
# separate process; it never leaves recovery.  Patroni's timeline history names
# every leader there was.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use HACluster;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;

my %is = (A => 'm2', B => 'm3', C => 'm1', N => 'm4');
my %who = reverse %is;
my ($A, $B, $C, $N) = @is{qw(A B C N)};
my $settle = 2;
my $ha = HACluster->new(
	members => 4, ttl => 10, loop_wait => 1, retry_timeout => 3,
	tags => { $N => { nofailover => JSON::PP::true } },
	dcs  => { master_priority => {
		order => [ $A, $B, $C ], never => [$N],
		preempt => JSON::PP::true, settle => $settle } });
my $t0 = Time::HiRes::time();
$ha->start;
my $t_started = Time::HiRes::time();
my $dir = PostgreSQL::Test::Utils::tempdir();

# Returns "name" with its letter, for messages: "m3 (B)".
sub nm { return "$_[0] ($who{$_[0]})"; }

# Returns the members Patroni reports with role (leader, sync_standby, replica).
sub with_role
{
	my ($role) = @_;
	my $c = $ha->cluster_state or return ();
	return map { $_->{name} } grep { $_->{role} eq $role && $_->{state} eq 'running' }
	  @{ $c->{members} };
}

# Returns member name's tags as Patroni publishes them ({} when none).
sub tags_of
{
	my ($name) = @_;
	my $c = $ha->cluster_state or return {};
	my ($m) = grep { $_->{name} eq $name } @{ $c->{members} };
	return $m && $m->{tags} ? $m->{tags} : {};
}

# N's role, polled by its own process every 0.2 s from now to the end: one line
# "epoch t|f|-" per look ('-' when N did not answer).
my $poll_sh = "$dir/poll.sh";
open(my $fh, '>', $poll_sh) or die;
print $fh <<'EOF';
while [ ! -e "$2/stop" ]; do
	r=$(psql -XAtq -d "$1" -c 'SELECT pg_is_in_recovery()' 2>/dev/null) || r=-
	echo "$(date +%s.%N) ${r:--}" >> "$2/n_role"
	sleep 0.2
done
EOF
close $fh;
my $poller = IPC::Run::start([ 'bash', $poll_sh,
	'host=127.0.0.1 port=' . $ha->node($N)->port . ' dbname=postgres connect_timeout=1', $dir ],
	'<', \undef, '>>', "$dir/poll.err", '2>>', "$dir/poll.err");
END { eval { $poller->kill_kill } if $poller; }
wait_until(sub { -s "$dir/n_role" }, 'N\'s role is polled');

# The controller beside every member; it reads the list from /config.
my $controller = "$FindBin::RealBin/../deploy/patroni/master_priority.py";
my %clog;
for my $name ($ha->names)
{
	$clog{$name} = $ha->start_sidecar($name, 'priority', 'python3', $controller,
		'--api', $ha->rest_url($name), '--name', $name,
		'--tags-file', $ha->config_dir($name) . '/99-master-priority.yml',
		'--interval', '0.5');
}

# Returns the member promoted on each new timeline, from Patroni's history.
sub promoted
{
	my $h = $ha->history // [];
	return map { $_->[4] // '?' } @$h;
}

# 1. The cluster bootstrapped on C; the controllers move the leadership to A, by
# a switchover once A is the synchronous standby, and make B the synchronous
# standby of A by tagging C nosync.  Usually that is one switchover, C -> A; when
# A is not ready in time (it may lag for a moment after the start) the leader's
# controller may go by B first: each step is to the best member ready then.
my $boot = $ha->leader;
is($boot, $C, 'the cluster bootstrapped on ' . nm($C));
wait_until(sub {
	my ($l) = with_role('leader');
	my @s = with_role('sync_standby');
	defined $l && $l eq $A && "@s" eq $B && tags_of($C)->{nosync} && !tags_of($B)->{nosync}
	  && defined $ha->leader && $ha->leader eq $A;
}, "the controllers make A the leader and B its synchronous standby");
my $t_ready = Time::HiRes::time();
is($ha->wait_healthy, $A, 'three replicas stream from A, one synchronously');
is(join(',', with_role('sync_standby')), $B, 'B is the synchronous standby');
ok(tags_of($C)->{nosync}, 'C carries nosync: B ranks above it and is ready');
ok(tags_of($N)->{nofailover}, 'N carries nofailover');
ok(!tags_of($B)->{nosync} && !tags_of($N)->{nosync}, 'B and N may be synchronous');
my @switched = map { slurp_file($clog{$_}) =~ /switchover (\S+ -> \S+): /g } $ha->names;
note 'switchovers asked for: ' . join(', ', @switched);
ok(grep(/-> $A$/, @switched), 'a controller asked for a switchover to A');
ok(!grep(/-> $N$/, @switched), 'none asked for one to N');
my @pre = promoted();
is($pre[-1], $A, 'Patroni\'s history: A was promoted last');
ok(!grep({ $_ eq $N } @pre), 'N was not promoted on the way');
my $plan = '';
IPC::Run::run([ 'python3', $controller, '--show', '--api', $ha->rest_url($N), '--name', $N ],
	'<', \undef, '>', \$plan, '2>&1');
note "master_priority.py --show:\n$plan";
like($plan, qr/^$C\s+replica\s.*nosync: $B ranks higher/m, '--show explains why C is nosync');
note sprintf('cluster started in %.1f s; the controllers converged %.1f s later',
	$t_started - $t0, $t_ready - $t_started);

# 2. kill -9 of A: only the synchronous standby may take over, and that is B.
my $t_kill_a = $ha->kill_member($A);
my $l2 = $ha->wait_for_leader($A);
my $t_b = Time::HiRes::time();
is($l2, $B, 'after A is killed, B becomes the leader, not C');

# B's synchronous standby must be C now, not N: C's nosync goes (nothing ready
# ranks between B and C) and Patroni 3.0.2 ranks nofailover members last.
wait_until(sub { join(',', with_role('sync_standby')) eq $C && !tags_of($C)->{nosync} },
	'C, not N, becomes the synchronous standby of B');
is($ha->wait_healthy, $B, 'C and N stream from B, one synchronously');
my $t_b_ready = Time::HiRes::time();
is(join(',', with_role('sync_standby')), $C, 'C is the synchronous standby of B');

# 3. kill -9 of B: C is the only member left that may be master.  N streams too.
my $t_kill_b = $ha->kill_member($B);
my $l3 = $ha->wait_for_leader($B);
my $t_c = Time::HiRes::time();
is($l3, $C, 'after B is killed, C becomes the leader, not N');
is($ha->wait_healthy, $C, 'N streams from C synchronously: it is the only replica');
is(join(',', with_role('sync_standby')), $N,
	'N is the synchronous standby (Patroni 3.0.2 uses a nofailover member when no other is left)');

# 4. kill -9 of C: N is the last member and the synchronous standby, and still
# never promotes.  Patroni logs each HA cycle in which it sees no leader and does
# not run for it; two such cycles after C's leader key expired are the evidence.
my $nlog = $ha->patroni_log($N);
my $refusals = sub { scalar(() = slurp_file($nlog) =~ /I am not allowed to promote/g) };
my $before = $refusals->();
my $t_kill_c = $ha->kill_member($C);
wait_until(sub { !grep { $_->{role} eq 'leader' } @{ ($ha->cluster_state // { members => [] })->{members} } },
	'C\'s leader key expired');
my $t_expired = Time::HiRes::time();
my $seen = $refusals->();
wait_until(sub { $refusals->() >= $seen + 2 }, 'N ran two HA cycles without a leader');
is($ha->query($N, 'SELECT pg_is_in_recovery()'), 't', 'N is still a replica');
is($ha->leader, undef, 'and there is no leader');
ok($refusals->() > $before, 'N\'s Patroni said it is not allowed to promote');

# N's role, as the poller saw it from before the controllers started to now.
open($fh, '>', "$dir/stop") or die;
close $fh;
$poller->finish;
undef $poller;
my @looks = map { [split] } split /\n/, slurp_file("$dir/n_role");
my %count;
$count{ $_->[1] }++ for @looks;
note sprintf('N polled %d times over %.0f s: %d in recovery, %d not, %d no answer',
	scalar(@looks), $looks[-1][0] - $looks[0][0], $count{t} // 0, $count{f} // 0, $count{'-'} // 0);
is($count{f} // 0, 0, 'N never left recovery');
ok(($count{t} // 0) > 100, 'N answered throughout');
ok($looks[0][0] < $t_ready && $looks[-1][0] > $t_kill_c, 'from before the switchover to the end');

# Patroni's timeline history names the member promoted on each new timeline.
is_deeply([ promoted() ], [ @pre, $B, $C ], 'the history then names B, then C: ' . join(' ', $boot, promoted()));

diag(sprintf('master priority: kill A -> B leads in %.1f s; kill B -> C leads in %.1f s; '
	  . 'C dead: N refused %d cycles (Patroni %s, settle %d s)',
	$t_b - $t_kill_a, $t_c - $t_kill_b, $refusals->() - $seen, $ha->settings, $settle));
note(sprintf('B leads -> C synchronous %.1f s; C killed -> leader key gone %.1f s; whole test %.0f s',
	$t_b_ready - $t_b, $t_expired - $t_kill_c, Time::HiRes::time() - $t0));
done_testing();
