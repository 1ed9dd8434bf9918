# Data flows through real agents (issue 14): a job's result left at $DISPATCH_RESULT,
# a dynamic fan-out over it (for_each) whose cells get their item and leave results of
# their own, a fan-in that reads them all from $DISPATCH_INPUTS; a result too large, a
# link to a secret and a fifo, each refused with a reason; a result written while the
# agent was down, sent by the next agent; and a group whose two jobs share
# $DISPATCH_SCRATCH on one node of two, removed (links, locked dirs and all) with its
# size recorded once the joblist has ended.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename;

# A long node_timeout: n1 stays online while its agent is down for a moment.
my $node = start_server(node_timeout => '60s', 'dispatch.max_result_size' => '1kB');
my $dir = shared_dir();
my $a1 = start_agent($node, 'n1', '--resource', 'cpu=[0-3]');
my $a2 = start_agent($node, 'n2', '--resource', 'cpu=[0-3]');

# Writes an executable script for the jobs into the shared dir; returns its command.
sub script
{
	my ($name, $body) = @_;
	PostgreSQL::Test::Utils::append_to_file("$dir/$name.sh", "set -e\n$body");
	chmod(0755, "$dir/$name.sh") or die $!;
	return "sh $dir/$name.sh";
}

# Waits for joblist jl to end; returns its state.
sub ended
{
	my ($jl, $what) = @_;
	wait_for($node, "SELECT state IN ('succeeded', 'failed', 'cancelled')
	                   FROM dispatch.joblist_status WHERE joblist_id = $jl", $what);
	return query($node, "SELECT state FROM dispatch.joblist_status WHERE joblist_id = $jl");
}

# Returns "state|reason" of job name of joblist jl.
sub outcome
{
	my ($jl, $name) = @_;
	return query($node, "SELECT state || '|' || coalesce(reason, '') FROM dispatch.job_status
	                      WHERE joblist_id = $jl AND name = '$name'");
}

# --- fan-out over a result, fan-in over the inputs ---------------------------------------
my $split = script('split', q{printf '["a","b","c"]' > "$DISPATCH_RESULT"
test -d "$DISPATCH_INPUTS" && test -z "$(ls -A "$DISPATCH_INPUTS")"
});
my $work = script('work', q{printf '{"item":"%s","index":%s}\n' "$DISPATCH_ITEM" "$DISPATCH_ITEM_INDEX" > "$DISPATCH_RESULT"
});
my $sum = script('sum', q{cd "$DISPATCH_INPUTS"
ls
{ printf '['; sep=; for f in *.json; do printf '%s' "$sep"; tr -d '\n' < "$f"; sep=,; done; printf ']'; } > "$DISPATCH_RESULT"
});
my $jl = submit($node, qq({"name": "fan", "jobs": [
  {"name": "split", "command": "$split"},
  {"name": "work", "for_each": "split", "command": "$work"},
  {"name": "sum", "after": ["work"], "command": "$sum"}]}));
is(ended($jl, 'the fan-out joblist ends'), 'succeeded', 'split, three cells and sum succeed');
is(query($node, "SELECT dispatch.job_result(" . job_id_of($node, $jl, 'split') . ")"),
	'["a", "b", "c"]', 'split left its result');
is(query($node, "SELECT string_agg(name || '=' || result::text, ' ' ORDER BY name)
                   FROM dispatch.job_status WHERE joblist_id = $jl AND task = 'work'"),
	'work[0]={"item": "a", "index": 0} work[1]={"item": "b", "index": 1} work[2]={"item": "c", "index": 2}',
	'for_each made a cell per item, each saw its $DISPATCH_ITEM and left a result');
my $sum_id = job_id_of($node, $jl, 'sum');
is(query($node, "SELECT dispatch.job_log($sum_id)"),
	query($node, "SELECT string_agg(dispatch._input_file(name, job_id), E'\\n' ORDER BY name)
	                FROM dispatch.jobs WHERE joblist_id = $jl AND task = 'work'") . "\n",
	'sum found one file per cell in $DISPATCH_INPUTS, named by dispatch._input_file');
is(query($node, "SELECT dispatch.job_log($sum_id)"), "work[0].json\nwork[1].json\nwork[2].json\n",
	'the cells\' file names');
is(query($node, "SELECT dispatch.job_result($sum_id) = '[{\"item\": \"a\", \"index\": 0},
                   {\"item\": \"b\", \"index\": 1}, {\"item\": \"c\", \"index\": 2}]'::jsonb"),
	't', 'sum combined the results it read');

# --- results that are refused ---------------------------------------------------------------
my $secret_dir = PostgreSQL::Test::Utils::tempdir();	# the agent's user's, 0700
PostgreSQL::Test::Utils::append_to_file("$secret_dir/secret", '{"password": "hunter2"}');
chmod(0600, "$secret_dir/secret") or die $!;
my $big = script('big', q{printf '"%02000d"' 0 > "$DISPATCH_RESULT"
});
my $link = script('link', qq{ln -s $secret_dir/secret "\$DISPATCH_RESULT"
});
my $fifo = script('fifo', q{mkfifo "$DISPATCH_RESULT"
});
my $bad = script('bad', q|printf '{"a":' > "$DISPATCH_RESULT"
|);
$jl = submit($node, qq({"name": "refused", "fail_fast": false, "jobs": [
  {"name": "big", "command": "$big"}, {"name": "link", "command": "$link"},
  {"name": "fifo", "command": "$fifo"}, {"name": "bad", "command": "$bad"},
  {"name": "none", "command": "true"}]}));
ended($jl, 'the joblist of refused results ends');
like(outcome($jl, 'big'),
	qr/^failed\|.*result.* 2002 bytes, more than dispatch\.max_result_size = 1kB allows$/,
	'a result larger than dispatch.max_result_size fails its job, saying so');
like(outcome($jl, 'link'), qr/^failed\|.*could not be read: the result file is a symbolic link$/,
	'a result that is a link to a secret is refused');
like(outcome($jl, 'fifo'), qr/^failed\|.*could not be read: the result file is not a regular file$/,
	'a fifo is refused without waiting on it');
like(outcome($jl, 'bad'), qr/^failed\|.*could not be read: the result file holds invalid JSON: /,
	'a result that is not JSON is refused');
is(outcome($jl, 'none'), 'succeeded|', 'a job that leaves no result succeeds');
is(query($node, "SELECT count(*) FROM dispatch.job_status WHERE joblist_id = $jl AND result IS NOT NULL"),
	'0', 'no result is kept of any of them');
unlike(slurp_file($a1->{log}) . slurp_file($a2->{log}), qr/hunter2/, 'the secret is nowhere');

# --- a result written while the agent is down -------------------------------------------
my $late = script('late', qq{while [ ! -f $dir/go ]; do sleep 0.1; done
printf '{"late": true}' > "\$DISPATCH_RESULT"
});
$jl = submit($node, qq({"name": "late", "jobs": [
  {"name": "late", "command": "$late", "constraints": {"node": "n1"}}]}));
wait_for($node, "SELECT state = 'running' FROM dispatch.job_status WHERE joblist_id = $jl",
	'the late job runs');
kill_agent($a1);
PostgreSQL::Test::Utils::append_to_file("$dir/go", '');
wait_until(sub { my @s = glob("$a1->{workdir}/jobs/*/status"); @s > 0 },
	'the late job ended while its agent was down');
$a1 = start_agent($node, 'n1', '--resource', 'cpu=[0-3]');
is(ended($jl, 'the late joblist ends'), 'succeeded', 'the restarted agent reports the job');
is(query($node, "SELECT result FROM dispatch.job_status WHERE joblist_id = $jl"), '{"late": true}',
	'with the result it left while the agent was down');

# --- a group shares a scratch dir on one node, removed when the joblist ends -------------
my $ga = script('group_a', q{echo "$DISPATCH_SCRATCH"
printf 'hello\n' > "$DISPATCH_SCRATCH/data"
mkdir "$DISPATCH_SCRATCH/locked"
printf 'x\n' > "$DISPATCH_SCRATCH/locked/inner"
chmod 000 "$DISPATCH_SCRATCH/locked"
ln -s /etc/passwd "$DISPATCH_SCRATCH/link"
ln -s / "$DISPATCH_SCRATCH/root"
mkfifo "$DISPATCH_SCRATCH/fifo"
});
my $gb = script('group_b', q{echo "$DISPATCH_SCRATCH"
cat "$DISPATCH_SCRATCH/data"
});
$jl = submit($node, qq({"name": "grouped", "jobs": [
  {"name": "a", "group": "g", "command": "$ga"},
  {"name": "b", "group": "g", "after": ["a"], "command": "$gb"}]}));
is(ended($jl, 'the grouped joblist ends'), 'succeeded', 'both jobs of the group succeed');
is(query($node, "SELECT count(DISTINCT node) FROM dispatch.job_status WHERE joblist_id = $jl"),
	'1', 'both ran on the same node');
my ($scratch) = split /\n/, query($node, "SELECT dispatch.job_log(" . job_id_of($node, $jl, 'a') . ")");
my $key = query($node, "SELECT key FROM dispatch.group_scratch WHERE joblist_id = $jl");
my $where = query($node, "SELECT node FROM dispatch.job_status WHERE joblist_id = $jl AND name = 'a'");
my $agent = $where eq 'n1' ? $a1 : $a2;
like($scratch, qr{^/.*/\Q${\ File::Basename::basename($agent->{workdir})}\E/scratch/\Q$key\E\.[0-9a-f]{16}$},
	'DISPATCH_SCRATCH is the group\'s dir in its agent\'s spool');
is(query($node, "SELECT dispatch.job_log(" . job_id_of($node, $jl, 'b') . ")"), "$scratch\nhello\n",
	'b read what a left in the same scratch dir');
wait_for($node, "SELECT removed_at IS NOT NULL FROM dispatch.group_scratch WHERE joblist_id = $jl",
	'the agent removes the scratch dir once the joblist has ended');
is(query($node, "SELECT node || ' ' || bytes FROM dispatch.group_scratch WHERE joblist_id = $jl"),
	"$where 8", 'and records the bytes of the files it held (links and fifos count nothing)');
ok(!-e $scratch, 'the scratch dir is gone');
ok(-e '/etc/passwd', 'what its links pointed to is not');

# --- a job of another joblist on the same node cannot reach a live group's scratch --------
# Every job runs as the same job user; the key is public, the directory's name is not.
my $gs = script('group_secret', qq{printf 'secret\\n' > "\$DISPATCH_SCRATCH/data"
while [ ! -e "$dir/release" ]; do sleep 0.1; done
});
$jl = submit($node, qq({"name": "secretive", "jobs": [{"name": "s", "group": "g", "command": "$gs"}]}));
my $s = job_id_of($node, $jl, 's');
wait_for($node, "SELECT state = 'running' FROM dispatch.jobs WHERE job_id = $s", 'the group job runs');
$where = query($node, "SELECT node FROM dispatch.jobs WHERE job_id = $s");
$key = query($node, "SELECT key FROM dispatch.group_scratch WHERE joblist_id = $jl");
my $spy = script('spy', qq{spool=\$(dirname "\$(dirname "\$(dirname "\$DISPATCH_WORKDIR")")")
ls "\$spool/scratch" 2>/dev/null && echo listed || echo "cannot list"
cat "\$spool/scratch/$key/data" 2>/dev/null || echo "no $key"
cat "\$spool"/scratch/$key*/data 2>/dev/null || echo "no $key*"
});
my $spyjl = submit($node, qq({"name": "spy", "jobs": [{"name": "spy", "command": "$spy",
  "constraints": {"node": "$where"}}]}));
is(ended($spyjl, 'the spy ends'), 'succeeded', 'the spy ran on the group\'s node');
is(query($node, "SELECT dispatch.job_log(" . job_id_of($node, $spyjl, 'spy') . ")"),
	"cannot list\nno $key\nno $key*\n", 'it could neither list the scratch dirs nor open the group\'s by its key');
PostgreSQL::Test::Utils::append_to_file("$dir/release", '');
is(ended($jl, 'the secretive group ends'), 'succeeded', 'the group job ends');

stop_agent($a1);
stop_agent($a2);
done_testing();
