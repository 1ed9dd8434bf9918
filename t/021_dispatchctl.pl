# dispatchctl against a real server and a real agent: submit (YAML, JSON, errors named
# by file line:column, nothing stored), logs -f of a running job (lines appear while it
# runs, the command exits with the job's status, woken by NOTIFY, not by its safety
# poll), wait's exit status for succeeded / failed / cancelled / --timeout, cancel of
# another user's joblist refused, build of a workspace's file (a rebuild joblist, --wait
# follows it, refusals) and its artefacts listed, --json of every listing parsed back,
# tables that escape control characters, and bad command lines (status 2, before
# connecting).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;

my $ctl = ($ENV{TESTDIR} // '.') . '/ctl/dispatchctl';
ok(-x $ctl, "dispatchctl is built at $ctl") or BAIL_OUT('build it with make -C ctl');

my $node = start_server();
my $dir = shared_dir();
my $files = PostgreSQL::Test::Utils::tempdir();
start_agent($node, 'n1', '--resource', 'cpu=[0-3]', '--label', 'zone=a');
query($node, 'CREATE ROLE alice LOGIN IN ROLE dispatch_user;
              CREATE ROLE bob LOGIN IN ROLE dispatch_user');
my $base = $node->connstr('postgres');

# Runs dispatchctl as role who with args (stdin: $in); returns (status, stdout, stderr).
sub ctl
{
	my ($who, $in, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $ctl, '-d', "$base user=$who", @args ], '<', \$in, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

# Starts dispatchctl as role who in the background; returns (handle, \stdout, \stderr).
sub ctl_start
{
	my ($who, @args) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ $ctl, '-d', "$base user=$who", @args ],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

# Writes a file in the test's directory; returns its path.
sub write_file
{
	my ($name, $text) = @_;
	my $path = "$files/$name";
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh $text;
	close $fh;
	return $path;
}

# Decodes JSON text, or returns undef (and says why) when it is not JSON.
sub json_of
{
	my ($text) = @_;
	my $v = eval { JSON::PP->new->decode($text) };
	diag("not JSON: $@ in: $text") unless defined $v;
	return $v;
}

my $joblists = sub { query($node, 'SELECT count(*) FROM dispatch.joblists') };

# --- bad command lines: status 2, and nothing connects (the database does not exist) ---
for my $args ([], ['bogus'], ['--bogus'], ['status', '--bogus'], ['status', '--limit', '0'],
	['status', '--limit', 'x'], ['status', '1', '2'], ['jobs', 'extra'], ['logs'],
	['logs', 'abc'], ['logs', '1', '2'], ['logs', '--stream', 'both', '1'], ['wait'],
	['wait', '--timeout', 'x', '1'], ['wait', '--timeout', '-1', '1'], ['cancel'],
	['cancel', '--job'], ['cancel', '--job', 'abc'], ['cancel', '--job', '1', '2'],
	['submit'], ['submit', 'a', 'b'], ['submit', '-x', 'a'], ['nodes', 'extra'],
	['goals', '--all'], ['alerts', 'x'], ['resources', 'x'], ['top', '--interval', '0'],
	['top', '--count', 'many'], ['--color=purple', 'nodes'], ['--color'], ['-d'], ['help', 'bogus'],
	['build'], ['build', 'paper'], ['build', 'paper', 'a', 'b'], ['build', '--timeout', '1', 'paper', 'a'],
	['build', '--wait', '--timeout', 'x', 'paper', 'a'], ['build', '--bogus', 'paper', 'a'],
	['artefacts', 'a', 'b'], ['artefacts', '--limit', '0'])
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $ctl, '-d', 'host=/nonexistent port=1', @$args ],
		'<', \undef, '>', \$out, '2>', \$err);
	is($? >> 8, 2, "usage error (status 2): dispatchctl @$args");
	like($err, qr/^dispatchctl.*: .+\nTry "dispatchctl .*--help"\.\n\z/,
		"one line says what is wrong and where help is: @$args");
}
{
	my ($rc, $out) = ctl('alice', undef, 'submit', '--help');
	is($rc, 0, 'submit --help succeeds');
	like($out, qr/Usage: dispatchctl submit \[-q\] FILE\|-/, 'submit --help shows its synopsis');
	($rc, $out) = ctl('alice', undef, '--help');
	like($out, qr/Commands:.*submit.*logs.*wait.*top/s, '--help lists the commands');
	($rc, $out) = ctl('alice', undef, 'help', 'wait');
	like($out, qr/exit status: 0 succeeded, 3 failed, 4 cancelled/, 'help wait documents its exit status');
}
{
	my ($rc, $out, $err) = ctl('alice', undef, '-d', 'host=/nonexistent port=1', 'nodes');
	is($rc, 1, 'a server that cannot be reached: status 1');
	like($err, qr/^dispatchctl: could not connect: /, '... saying so');
}

# --- submit: YAML, JSON, and errors that point into the file ---
my $yaml = write_file('build.yaml', <<'EOF');
name: yaml-build
stages:
  - name: build
    jobs:
      - &base
        name: one
        env: {MODE: 0755, FLAG: yes, COUNT: "3"}
        command: |
          echo "mode=$MODE flag=$FLAG count=$COUNT"
          echo second line
      - <<: *base
        name: two
        timeout: 1 min
EOF
chmod 0644, $yaml;
my ($rc, $out, $err) = ctl('alice', undef, 'submit', $yaml);
is($rc, 0, 'submit of a YAML file succeeds') or diag($err);
like($out, qr/^joblist (\d+) submitted\nJOB +STAGE +NAME +STATE *\n\d+ +build +one +pending *\n\d+ +build +two +pending *\n\z/,
	'submit prints the joblist id and a table of its jobs');
my ($yl) = $out =~ /^joblist (\d+)/;
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $yl",
	'the YAML joblist runs');
is(query($node, "SELECT string_agg(dispatch.job_log(job_id), '|' ORDER BY job_id)
                   FROM dispatch.job_status WHERE joblist_id = $yl"),
	"mode=0755 flag=yes count=3\nsecond line\n|mode=0755 flag=yes count=3\nsecond line\n",
	'block string, merge key, leading-zero and yes scalars arrive as written');
is(query($node, "SELECT timeout FROM dispatch.job_status WHERE joblist_id = $yl AND name = 'two'"),
	'00:01:00', 'the merged job keeps its own keys');

($rc, $out, $err) = ctl('alice',
	'{"name": "json-in", "stages": [{"name": "s", "jobs": [{"name": "j", "command": "echo from json"}]}]}',
	'submit', '-q', '-');
is($rc, 0, 'submit of JSON on standard input succeeds') or diag($err);
like($out, qr/^\d+\n\z/, 'submit -q prints only the id');
chomp(my $jl_json = $out);
is(query($node, "SELECT name || ' by ' || submitted_by FROM dispatch.joblist_status
                  WHERE joblist_id = $jl_json"), 'json-in by alice', 'it is stored as alice\'s');

my $before = $joblists->();
my $dup = write_file('dup.yaml', <<'EOF');
name: bad
stages:
  - name: s
    jobs:
      - name: a
        command: "true"
      - name: a
        command: "true"
EOF
($rc, $out, $err) = ctl('alice', undef, 'submit', $dup);
is($rc, 1, 'a joblist the server refuses: status 1');
like($err, qr/^dispatchctl: \Q$dup\E:7:15: duplicate job name "a" \(SQLSTATE 22023\)\nDETAIL:  The error is at stages\[0\]\.jobs\[1\]\.name\.\nHINT:  /,
	'the server\'s message is prefixed by the line and column of its JSON path');
my $key = write_file('key.yaml', "name: bad\nstages:\n  - name: s\n    jobs:\n      - name: a\n        command: x\n        needs: {\"1gpu\": 1}\n");
($rc, $out, $err) = ctl('alice', undef, 'submit', $key);
like($err, qr/^dispatchctl: \Q$key\E:7:25: invalid resource type "1gpu"/,
	'a quoted key in the path is found too');
my $syntax = write_file('syntax.yaml', "name: x\nstages: [1, 2\n");
($rc, $out, $err) = ctl('alice', undef, 'submit', $syntax);
is($rc, 1, 'a YAML syntax error: status 1');
like($err, qr/^dispatchctl: \Q$syntax\E:3:1: while parsing a flow sequence did not find expected ','/,
	'a YAML syntax error names its line and column');
my $laughs = write_file('laughs.yaml', join('', "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
	map { my $p = chr(ord('a') + $_ - 1); chr(ord('a') + $_) . ": &" . chr(ord('a') + $_) . " [" . join(', ', ("*$p") x 10) . "]\n" } 1 .. 8));
($rc, $out, $err) = ctl('alice', undef, 'submit', $laughs);
is($rc, 1, 'a "billion laughs" file is refused');
like($err, qr/:5:\d+: the document has more than 100000 nodes \(aliases expanded\)/, '... by the node limit');
($rc, $out, $err) = ctl('alice', "a: 1\na: 2\n", 'submit', '-');
like($err, qr/^dispatchctl: <stdin>:2:1: duplicate key "a"\n\z/, 'a duplicate key is refused on stdin too');
($rc, $out, $err) = ctl('alice', undef, 'submit', "$files/missing.yaml");
is($rc, 1, 'a missing file: status 1');
like($err, qr/could not open .*missing\.yaml: No such file or directory/, '... saying so');
is($joblists->(), $before, 'no refused submission stored anything');

# --- logs -f: lines appear while the job runs; the command exits with the job's status ---
my $follow = ctl_submit(qq({"name": "follow", "stages": [{"jobs": [{"name": "f", "command":
  "echo line 1; echo err 1 >&2; while [ ! -f $dir/go ]; do sleep 0.1; done; echo line 2; echo line 3; exit 7"}]}]}));
my $fjob = job_id_of($node, $follow, 'f');
my ($h, $fout, $ferr) = ctl_start('alice', 'logs', '-f', $fjob);
wait_until(sub { $h->pump_nb; $$fout =~ /line 1\n/ && $$ferr =~ /err 1\n/ },
	'logs -f prints the first lines of the running job, stdout and stderr apart');
is(query($node, "SELECT state FROM dispatch.job_status WHERE job_id = $fjob"), 'running',
	'... while the job still runs (it waits for a file)');
unlike($$fout, qr/line 2/, '... and nothing it has not written yet');
# Woken by NOTIFY: the rest must arrive well before the 30 s safety read.
open(my $go, '>', "$dir/go") or die; close $go;
my $deadline = time() + 20;
while ($h->pumpable && time() < $deadline)
{
	$h->pump_nb;
	Time::HiRes::sleep(0.05);
}
ok(!$h->pumpable, 'logs -f ends within 20 s of the job\'s end (NOTIFY, not the 30 s safety read)');
$h->finish;
is($h->result(0), 7, 'logs -f exits with the job\'s exit status');
is($$fout, "line 1\nline 2\nline 3\n", 'logs -f printed standard output whole, once');
is($$ferr, "err 1\n", '... and standard error on standard error');
($rc, $out, $err) = ctl('alice', undef, 'logs', $fjob);
is($rc, 0, 'logs without -f exits 0 whatever the job did');
is($out, "line 1\nline 2\nline 3\n", 'logs prints the stored output');
($rc, $out, $err) = ctl('alice', undef, 'logs', '--stream', 'stderr', $fjob);
is("$out|$err", "|err 1\n", 'logs --stream stderr prints only standard error');
# Output is the submitter's (and admins'): another user is refused, with or without -f.
for my $f ([], ['-f'])
{
	($rc, $out, $err) = ctl('bob', undef, 'logs', @$f, $fjob);
	is($rc, 1, "logs @$f of another user's job: status 1");
	like($err, qr/permission denied for the output of job $fjob/, '... saying why');
	is($out, '', '... and printing none of it');
}
($rc, $out, $err) = ctl('alice', undef, 'logs', '-f', '999999999');
is($rc, 1, 'logs -f of a job that does not exist: status 1');
like($err, qr/job 999999999 does not exist/, '... saying so');

# --- wait: the exit status follows the joblist's state ---
my $good = ctl_submit('{"name": "good", "stages": [{"jobs": [{"name": "t", "command": "true"}]}]}');
($rc, $out) = ctl('alice', undef, 'wait', $good);
is($rc, 0, 'wait: a joblist that succeeds exits 0');
is($out, "joblist $good succeeded\n", '... and says so');
my $bad = ctl_submit('{"name": "bad-one", "stages": [{"jobs": [{"name": "t", "command": "exit 1"}]}]}');
($rc, $out) = ctl('bob', undef, 'wait', 'bad-one');
is($rc, 3, 'wait (by name, as another user): a joblist that fails exits 3');
is($out, "joblist $bad failed\n", '... and says so');
($rc, $out, $err) = ctl('alice', undef, 'wait', '999999999');
is($rc, 1, 'wait for a joblist that does not exist: status 1');

my $long = ctl_submit('{"name": "long", "stages": [{"jobs": [{"name": "s", "command": "sleep 600"}]}]}');
my $ljob = job_id_of($node, $long, 's');
wait_for($node, "SELECT state = 'running' FROM dispatch.job_status WHERE job_id = $ljob", 'long job runs');
($rc, $out, $err) = ctl('alice', undef, 'wait', '--timeout', '1', $long);
is($rc, 6, 'wait --timeout: a joblist still running when it passes exits 6');
like($err, qr/joblist $long has not finished after 1 seconds/, '... and says so');
# The "output" NOTIFY is sent only while someone follows the job (follow_output()).
my $notified = sub {
	my ($offset) = @_;
	my $out = query($node, "LISTEN dispatch_job_$ljob;
		SELECT dispatch.agent_output('n1', $ljob, 1, 'stdout', $offset, 'x');
		SELECT 'done'");
	return $out =~ /Asynchronous notification "dispatch_job_$ljob" with payload "output"/ ? 1 : 0;
};
is($notified->(0), 0, 'output nobody follows sends no NOTIFY');
my ($wh, $wout) = ctl_start('alice', 'wait', '--json', $long);
my ($lh, $lout) = ctl_start('alice', 'logs', '-f', $ljob);
wait_for($node, "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock'
                   AND objid = $ljob AND granted", 'logs -f follows the job');
is($notified->(1), 1, 'output someone follows sends one');
wait_until(sub { $lh->pump_nb; $$lout eq 'xx' }, 'the follower printed both chunks');
($rc, $out, $err) = ctl('bob', undef, 'cancel', $long);
is($rc, 1, 'cancel of another user\'s joblist: status 1');
like($err, qr/^dispatchctl: permission denied to cancel joblist $long \(SQLSTATE 42501\)\nDETAIL:  Joblist $long was submitted by role "alice"\./,
	'... with the server\'s reason');
is(query($node, "SELECT state FROM dispatch.joblist_status WHERE joblist_id = $long"), 'running',
	'... and the joblist still runs');
($rc, $out, $err) = ctl('alice', undef, 'cancel', $long);
is($rc, 0, 'its submitter cancels it');
is($out, "joblist $long: cancelled\n", '... and is told so');
$wh->finish;
is($wh->result(0), 4, 'wait: a cancelled joblist exits 4');
my $wj = json_of($$wout);
is($wj && $wj->{state}, 'cancelled', 'wait --json prints the final row');
$lh->finish;
my ($sig, $code) = split /\|/, query($node, "SELECT coalesce(signal, 0) || '|' || coalesce(exit_code, -1)
                                            FROM dispatch.job_status WHERE job_id = $ljob");
is($lh->result(0), $code >= 0 ? $code : $sig ? 128 + $sig : 4,
	'logs -f of a cancelled job exits with what ended it (128 + signal, or 4)');
($rc, $out, $err) = ctl('alice', undef, 'cancel', $long);
is($rc, 0, 'cancelling a finished joblist is no error');
like($err, qr/^dispatchctl: joblist $long has already finished \(cancelled\)\n\z/, '... the notice says why nothing happened');
($rc, $out, $err) = ctl('alice', undef, 'cancel', '--job', '999999999');
is($rc, 1, 'cancel of a job that does not exist: status 1');

# --- build and artefacts: Alice's workspace, bound to n1 by an admin, with one rule ---
query($node, q{SELECT dispatch.create_workspace('paper', 'alice', 'n1');
	SET ROLE alice;
	SELECT dispatch.create_rule('pdf', '{"workspace": "paper", "outputs": ["paper.pdf"],
	  "job": {"command": "echo built > paper.pdf"}}')});
my $rebuilds = sub {
	query($node, "SELECT count(*) || ' ' || coalesce(max(joblist_id), 0) || ' '
	                     || coalesce(bool_and(state NOT IN ('queued', 'running')), true)
	                FROM dispatch.joblists WHERE name = 'rebuild paper'") };
($rc, $out) = ctl('alice', undef, 'artefacts', 'paper');
is($out, "WORKSPACE  PATH       STATE  RULE  REASON       SHA256  BUILT_IN\n"
	  . "paper      paper.pdf  stale  pdf   never built  -       -\n",
	'artefacts lists the rule\'s output: stale, never built');
is((ctl('alice', undef, 'artefacts', 'nosuch'))[1], "WORKSPACE  PATH  STATE  RULE  REASON  SHA256  BUILT_IN\n",
	'artefacts of a workspace without files: the heading alone');
($rc, $out, $err) = ctl('alice', undef, 'build', 'paper', 'paper.pdf');
is($rc, 0, 'build succeeds') or diag($err);
is($out, qq{requested a build of "paper.pdf" in workspace "paper"\n}, '... and says what it asked for');
wait_until(sub { $rebuilds->() =~ /^1 \d+ true$/ }, 'a rebuild joblist appears and ends');
my (undef, $last) = split / /, $rebuilds->();
is(query($node, "SELECT string_agg(name || ' ' || state, ',') FROM dispatch.job_status WHERE joblist_id = $last"),
	'pdf succeeded', 'the rebuild ran the rule');
($rc, $out) = ctl('alice', undef, 'artefacts', 'paper');
like($out, qr/^WORKSPACE +PATH +STATE +RULE +REASON +SHA256 +BUILT_IN *\npaper +paper\.pdf +fresh +pdf +- +[0-9a-f]{12} +$last *\n\z/,
	'artefacts: the built file is fresh, with a short SHA-256 and the rebuild that made it');
($rc, $out) = ctl('alice', undef, '--color=always', 'artefacts');
like($out, qr/\e\[32mfresh\e\[0m/, 'artefacts colours the state');
my $doc = json_of((ctl('bob', undef, 'artefacts', '--json'))[1]);
is($doc && join(',', map { "$_->{workspace}/$_->{path}=$_->{state}:$_->{rule}:" . ($_->{stored} ? 'stored' : '-') } @$doc),
	'paper/paper.pdf=fresh:pdf:stored', 'artefacts --json: every column, for any user');
($rc, $out, $err) = ctl('alice', undef, 'build', '--wait', 'paper', 'paper.pdf');
is($rc, 0, 'build --wait: the rebuild succeeded, exit 0') or diag($err);
my (undef, $built) = split / /, $rebuilds->();
ok($built > $last, 'build --wait waited for a new rebuild');
is($out, qq{requested a build of "paper.pdf" in workspace "paper"\njoblist $built succeeded\n},
	'... and says which one ended how, as wait does');
$doc = json_of((ctl('alice', undef, 'build', '--json', 'paper', 'paper.pdf'))[1]);
is($doc && "$doc->{workspace} $doc->{path} $doc->{requested}", 'paper paper.pdf 1', 'build --json');
($rc, $out) = ctl('alice', undef, 'build', '--wait', '--json', 'paper', 'paper.pdf');
$doc = json_of($out);
is($doc && "$doc->{name} $doc->{state}", 'rebuild paper succeeded', 'build --wait --json: the rebuild\'s final row');
($rc, $out, $err) = ctl('alice', undef, 'build', '--wait', '--timeout', '0', 'paper', 'paper.pdf');
is($rc, 6, 'build --wait --timeout 0: exit 6');
like($err, qr/^dispatchctl: (no rebuild of workspace "paper" has started|joblist \d+ has not finished) after 0 seconds\n\z/,
	'... saying what has not happened yet');
for my $case ([ 'bob', [ 'paper', 'paper.pdf' ], qr/^dispatchctl: workspace "paper" belongs to alice \(SQLSTATE 42501\)\nHINT:  Only its owner/ ],
	[ 'alice', [ 'nosuch', 'paper.pdf' ], qr/^dispatchctl: workspace "nosuch" does not exist \(SQLSTATE 42704\)\n\z/ ],
	[ 'alice', [ 'paper', 'paper.tex' ], qr/^dispatchctl: no rule of workspace "paper" makes "paper.tex" \(SQLSTATE 42704\)\n/ ],
	[ 'bob', [ '--wait', 'paper', 'paper.pdf' ], qr/^dispatchctl: workspace "paper" belongs to alice/ ])
{
	my ($who, $args, $msg) = @$case;
	($rc, $out, $err) = ctl($who, undef, 'build', @$args);
	is($rc, 1, "build @$args as $who is refused: status 1");
	like($err, $msg, '... with the server\'s message');
	is($out, '', '... and nothing on standard output');
}
wait_for($node, "SELECT NOT EXISTS (SELECT FROM dispatch.artefact_changes WHERE workspace = 'paper')
                   AND NOT EXISTS (SELECT FROM dispatch.joblists WHERE name = 'rebuild paper'
                                      AND state IN ('queued', 'running'))", 'the rebuilds asked for end');

# --- --json of every listing, parsed back ---
my $j = json_of((ctl('alice', undef, 'status', '--json'))[1]);
my ($row) = grep { $_->{joblist_id} == $good } @{ $j || [] };
is($row && "$row->{name} $row->{state} $row->{jobs_total}", 'good succeeded 1', 'status --json');
$j = json_of((ctl('alice', undef, 'status', $yl, '--json'))[1]);
is($j && join(',', $j->{joblist}{name}, map { "$_->{name}=$_->{exit_code}" } @{ $j->{jobs} }),
	'yaml-build,one=0,two=0', 'status JOBLIST --json: the joblist and its jobs');
my $raw = (ctl('alice', undef, 'jobs', '--joblist', $good, '--json'))[1];
$j = json_of($raw);
is($j && scalar(@$j) . " $j->[0]{name} $j->[0]{state}", '1 t succeeded', 'jobs --joblist --json');
like($raw, qr/"job_id": \d+,/, 'ids are JSON numbers, not strings');
$j = json_of((ctl('alice', undef, 'jobs', '--state', 'failed', '--json'))[1]);
ok($j && @$j && !grep({ $_->{state} ne 'failed' } @$j), 'jobs --state failed --json');
$j = json_of((ctl('alice', undef, 'nodes', '--json'))[1]);
is($j && "$j->[0]{node} $j->[0]{state} $j->[0]{labels}{zone}", 'n1 online a',
	'nodes --json (labels as a JSON object)');
$j = json_of((ctl('alice', undef, 'resources', '--node', 'n1', '--json'))[1]);
is($j && join(',', map { "$_->{type}=$_->{ident}" } grep { $_->{type} eq 'cpu' } @$j),
	'cpu=0,cpu=1,cpu=2,cpu=3', 'resources --json');
$j = json_of((ctl('alice', undef, 'goals', '--json'))[1]);
is(ref $j, 'ARRAY', 'goals --json');
$j = json_of((ctl('alice', undef, 'alerts', '--json'))[1]);
is(ref $j, 'ARRAY', 'alerts --json');
$j = json_of((ctl('alice', undef, 'top', '--count', '1', '--json'))[1]);
is($j && "$j->[0]{node} $j->[0]{state}", 'n1 online', 'top --count 1 --json');
$j = json_of((ctl('alice', '{"name": "js", "stages": [{"jobs": [{"name": "x", "command": "true"}]}]}',
	'submit', '--json', '-'))[1]);
like($j && "$j->{joblist_id} $j->{jobs}[0]{name}", qr/^\d+ x$/, 'submit --json');

# --- tables: aligned, coloured on request, control characters escaped ---
($rc, $out) = ctl('alice', undef, 'jobs', '--joblist', $good);
like($out, qr/^ID +JOBLIST +STAGE +NAME +STATE +NODE +TRY +EXIT +REASON *\n\d+ +$good +\S+ +t +succeeded +n1 +1 +0 +- *\n\z/,
	'jobs prints an aligned table');
($rc, $out) = ctl('alice', undef, '--color=always', 'jobs', '--joblist', $good);
like($out, qr/\e\[32msucceeded\e\[0m/, '--color=always colours the state');
($rc, $out) = ctl('alice', undef, 'jobs', '--joblist', $good);
unlike($out, qr/\e/, 'no colour into a pipe');
my $evil = ctl_submit(qq({"name": "evil\\u001b]0;pwned\\u0007\\u001b[2J", "stages": [{"jobs": [{"name": "e", "command": "true"}]}]}));
($rc, $out) = ctl('bob', undef, 'status', '--all');
unlike($out, qr/[\x00-\x09\x0b-\x1f]/, 'another user\'s joblist name cannot drive the terminal');
like($out, qr/evil\\x1b\]0;pwned\\x07\\x1b\[2J/, '... it is shown escaped');

# --- several hosts: the first unreachable, the read-write one found ---
{
	my ($host, $port) = ($node->host, $node->port);
	my ($o, $e) = ('', '');
	IPC::Run::run([ $ctl, '-d', "host=/nonexistent,$host port=1,$port dbname=postgres user=alice",
		'submit', '-q', '-' ], '<',
		\'{"name": "multi", "stages": [{"jobs": [{"name": "x", "command": "true"}]}]}', '>', \$o, '2>', \$e);
	is($? >> 8, 0, 'submit with a list of hosts finds the one that takes changes') or diag($e);
}

done_testing();

# Submits a JSON joblist with dispatchctl as alice; returns its id.
sub ctl_submit
{
	my ($spec) = @_;
	my ($rc, $out, $err) = ctl('alice', $spec, 'submit', '-q', '-');
	die "submit failed: $err" if $rc != 0;
	chomp $out;
	return $out;
}
