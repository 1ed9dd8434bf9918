# dispatch-web over HTTP with curl, against a real server and a real agent: every
# endpoint of the OpenAPI document answers and every route is documented; logins are
# database roles (wrong passwords, roles the server lets in without one and guessing
# are refused); another user's cancel is refused by the database's own check (403);
# bodies, headers and event streams are bounded; read-only mode refuses writes; the
# files of workspaces are listed, their graph read, a rebuild asked for (another user's
# refused, 403; unknown ones 404; a body without its keys 400); TLS
# serves with a certificate file; /metrics parses as Prometheus text; the event
# stream carries a job's state changes and output, and a client that stops reading
# is dropped without holding up the others.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use WebTest;
use IPC::Run;
use IO::Socket::INET;
use MIME::Base64;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server();
my $dir = shared_dir();
web_roles($node, alice => ['alice-pw', 'dispatch_user'], bob => ['bob-pw', 'dispatch_user'],
	boss => ['boss-pw', 'dispatch_admin'], victim => ['victim-pw', 'dispatch_user'],
	outsider => ['outsider-pw', undef]);
$node->safe_psql('postgres', 'CREATE ROLE trusted LOGIN IN ROLE dispatch_user');
start_agent($node, 'n1', '--resource', 'cpu=[0-3]', '--metrics-interval', '1');
my $web = start_web($node, '--max-body', '65536', '--max-login-failures', '3',
	'--max-event-clients', '3', '--timeout', '5');
my @alice = (user => 'alice:alice-pw');
my @bob = (user => 'bob:bob-pw');

# Returns the decoded body of a request that must answer with status.
sub call
{
	my ($status, $method, $path, @o) = @_;
	my ($got, $body) = http($web, $method, $path, @o);
	is($got, $status, "$method $path answers $status") or diag($body);
	return json_of($body);
}

# --- logins are database roles
my ($st, $body, $hdr) = http($web, 'GET', '/api/v1/nodes');
is($st, 401, 'no credentials: 401');
like($hdr, qr/WWW-Authenticate: Basic realm="pg_dispatch"/i, 'the browser is asked to log in');
is(json_of($body)->{sqlstate}, '28000', 'the 401 is a JSON error');
($st, $body) = http($web, 'GET', '/api/v1/nodes', user => 'alice:wrong');
is($st, 401, 'a wrong password: 401');
my $wrong = $body;
($st, $body) = http($web, 'GET', '/api/v1/nodes', user => 'nosuchrole:x');
is($st, 401, 'an unknown role: 401');
is($body, $wrong, 'an unknown role and a wrong password look the same');
($st) = http($web, 'GET', '/api/v1/nodes', user => 'alice:');
is($st, 401, 'an empty password: 401 (never filled in from the daemon\'s own .pgpass)');
($st) = http($web, 'GET', '/api/v1/nodes', user => 'trusted:anything');
is($st, 401, 'a role the server lets in without a password is refused');
wait_until(sub { PostgreSQL::Test::Utils::slurp_file($web->{log}) =~ /refused role "trusted"/ },
	'the refusal of a role let in without a password is logged');
unlike(PostgreSQL::Test::Utils::slurp_file($web->{log}), qr/alice-pw|wrong|anything/,
	'no password reaches the log');
for (1 .. 3) { http($web, 'GET', '/api/v1/session', user => "victim:guess$_") }
($st, $body) = http($web, 'GET', '/api/v1/session', user => 'victim:victim-pw');
is($st, 429, 'after 3 failed logins in a minute even the right password is refused');
like($body, qr/too many failed logins/, 'and the answer says why');
my $s = call(200, 'GET', '/api/v1/session', @alice);
is_deeply($s, { role => 'alice', user => JSON::PP::true, admin => JSON::PP::false,
	read_only => JSON::PP::false }, 'session: who alice is');
is(call(200, 'GET', '/api/v1/session', user => 'boss:boss-pw')->{admin}, JSON::PP::true,
	'session: boss is an admin');
($st, $body) = http($web, 'GET', '/api/v1/joblists', user => 'outsider:outsider-pw');
is($st, 403, 'a role without dispatch_user may log in but not read');
is(json_of($body)->{sqlstate}, '42501', 'and gets the SQL error');

# --- live events: watch the stream while a joblist runs
my $events = "$PostgreSQL::Test::Utils::tmp_check/events.txt";
my $sse = IPC::Run::start([ 'curl', '-s', '-N', '-u', 'bob:bob-pw', "$web->{url}/api/v1/events" ],
	'>', $events);
wait_until(sub { -s $events && PostgreSQL::Test::Utils::slurp_file($events) =~ /event: hello/ },
	'the event stream says hello');

# --- joblists: submit (JSON and YAML), errors with the JSON path, get, list
my $r = call(201, 'POST', '/api/v1/joblists', @alice,
	body => qq({"name": "web1", "stages": [{"name": "s1", "jobs": [
	  {"name": "talk", "command": "echo one; while [ ! -f $dir/web-go ]; do sleep 0.1; done; echo two"}]}]}));
my $jl = $r->{joblist_id};
ok($jl > 0, 'submit returns the joblist id');
my $job = job_id_of($node, $jl, 'talk');
wait_for($node, "SELECT output_bytes > 0 FROM dispatch.job_status WHERE job_id = $job",
	'the submitted job runs and writes');

# Output is announced only on a stream that follows the job, and only to those who may
# read it: the listener follows the job for its clients (follow_output).
($st, $body) = http($web, 'GET', "/api/v1/events?follow=$job", @bob);
is($st, 403, 'following the output of another user\'s job is refused');
is(json_of($body)->{sqlstate}, '42501', '... with the SQL error');
($st, $body) = http($web, 'GET', '/api/v1/events?follow=x', @alice);
is($st, 400, 'follow must be a job id');
my $fevents = "$PostgreSQL::Test::Utils::tmp_check/follow-events.txt";
my $fsse = IPC::Run::start([ 'curl', '-s', '-N', '-u', 'alice:alice-pw',
	"$web->{url}/api/v1/events?follow=$job" ], '>', $fevents);
wait_until(sub { -s $fevents && PostgreSQL::Test::Utils::slurp_file($fevents)
	  =~ /event: output\ndata: \{"type": "output", "job_id": $job\}/ },
	'a new follower is told to read what is stored');
my $outputs = () = PostgreSQL::Test::Utils::slurp_file($fevents) =~ /event: output/g;
wait_for($node, "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory'
                   AND mode = 'ShareLock' AND objid = $job AND granted", 'the listener follows the job');
open(my $go, '>', "$dir/web-go") or die; close $go;
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $jl",
	'the submitted joblist ends');
wait_until(sub { my $n = () = PostgreSQL::Test::Utils::slurp_file($fevents) =~ /event: output/g;
	  $n > $outputs }, 'the follower is told of the new output');
wait_until(sub { PostgreSQL::Test::Utils::slurp_file($events) =~ /"joblist_id": $jl}\n\n/
	  && PostgreSQL::Test::Utils::slurp_file($events) =~ /"succeeded", "joblist_id": $jl/ },
	'the stream reports the joblist ending');
my $seen = PostgreSQL::Test::Utils::slurp_file($events);
like($seen, qr/event: jobs\ndata: \{"jobs": \[\[$job, $jl, "running"\]\]/, 'event: the job runs');
like($seen, qr/event: jobs\ndata: \{"jobs": \[\[$job, $jl, "succeeded"\]\]/, 'event: the job succeeded');
unlike($seen, qr/event: output/, 'a stream that follows no job hears of no output');
unlike($seen . PostgreSQL::Test::Utils::slurp_file($fevents), qr/one|two/,
	'no output travels in the events');
$fsse->kill_kill;
wait_for($node, "SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = $job",
	'the listener lets go of a job nobody follows');
$sse->kill_kill;

$r = call(400, 'POST', '/api/v1/joblists', @alice,
	body => '{"name": "bad", "stages": [{"jobs": [{"name": "x", "command": "true", "needs": {"gpu": 0}}]}]}');
is($r->{sqlstate}, '22023', 'a bad spec: 22023');
is($r->{detail}, 'The error is at stages[0].jobs[0].needs.gpu.', 'the detail names the JSON path');
$r = call(400, 'POST', '/api/v1/joblists', @alice, body => '{"name": ');
is($r->{sqlstate}, '22P02', 'broken JSON: the cast error of SQL');
$r = call(201, 'POST', '/api/v1/joblists', @alice, type => 'application/yaml',
	body => "name: yaml1\nstages:\n  - jobs:\n      - name: y\n        command: echo from yaml\n");
ok($r->{joblist_id} > $jl, 'a YAML joblist is accepted');
$r = call(400, 'POST', '/api/v1/joblists', @alice, type => 'application/yaml',
	body => "name: yaml2\nstages:\n  - jobs:\n      - name: y\n        command: echo hi\n        needs: {cpu: -1}\n");
is("$r->{line}:$r->{column}", '6:22', 'a YAML validation error names the line and column');
is($r->{detail}, 'The error is at stages[0].jobs[0].needs.cpu.', 'and the JSON path');
$r = call(400, 'POST', '/api/v1/joblists', @alice, type => 'application/yaml',
	body => "name: [unclosed\n");
is($r->{sqlstate}, '22P02', 'broken YAML: 22P02');
ok($r->{line} >= 1, 'broken YAML: the line');
call(400, 'POST', '/api/v1/joblists', @alice, type => 'application/json');
$r = call(200, 'GET', "/api/v1/joblists/$jl", @alice);
is($r->{state}, 'succeeded', 'get: the joblist state');
is_deeply([ map { $_->{name} } @{ $r->{jobs} } ], ['talk'], 'get: its jobs');
is_deeply($r->{stages}, [ { stage => 0, name => 's1', total => 1, running => 0, succeeded => 1,
	failed => 0 } ], 'get: the progress of its stages');
is(call(404, 'GET', '/api/v1/joblists/999999', @alice)->{message}, 'joblist 999999 does not exist',
	'an unknown joblist: 404');
is(call(400, 'GET', '/api/v1/joblists/abc', @alice)->{sqlstate}, '22P02', 'a non-numeric id: 400');
my $list = call(200, 'GET', '/api/v1/joblists?state=succeeded&limit=1', @alice);
is(scalar(@$list), 1, 'list: limit');
is($list->[0]{state}, 'succeeded', 'list: state filter');
call(400, 'GET', '/api/v1/joblists?limit=-1', @alice);
is(scalar(@{ call(200, 'GET', '/api/v1/joblists?limit=5000', @alice) }), 2,
	'list: a limit over 1000 is capped, not refused');

# --- jobs and logs
$r = call(200, 'GET', "/api/v1/jobs/$job", @alice);
is("$r->{state} $r->{node} $r->{exit_code}", 'succeeded n1 0', 'job: state, node, exit code');
is_deeply($r->{resources}, { cpu => ['0'] }, 'job: its resources');
$r = call(200, 'GET', "/api/v1/jobs/$job/log", @alice);
is($r->{data}, "one\ntwo\n", 'log: the output');
is(call(200, 'GET', "/api/v1/jobs/$job/log?offset=4", @alice)->{data}, "two\n", 'log: from an offset');
is(call(200, 'GET', "/api/v1/jobs/$job/log?stream=stderr", @alice)->{data}, '', 'log: stderr');
is(call(400, 'GET', "/api/v1/jobs/$job/log?stream=nope", @alice)->{message}, 'invalid stream "nope"',
	'log: a bad stream is the SQL error');
call(404, 'GET', '/api/v1/jobs/999999', @alice);
call(404, 'GET', '/api/v1/jobs/999999/log', @alice);

# --- cancel: another user's joblist is refused by the database
my $slow = call(201, 'POST', '/api/v1/joblists', @alice,
	body => qq({"name": "slow", "stages": [{"jobs": [{"name": "wait", "command": "sleep 60"}]}]}))
  ->{joblist_id};
wait_for($node, "SELECT state = 'running' FROM dispatch.job_status WHERE joblist_id = $slow",
	'the slow job runs');
$r = call(403, 'POST', "/api/v1/joblists/$slow/cancel", @bob, type => 'application/json');
is($r->{sqlstate}, '42501', "bob cancelling alice's joblist: 42501");
like($r->{message}, qr/permission denied to cancel joblist $slow/, 'with the SQL message');
is(query($node, "SELECT state FROM dispatch.joblist_status WHERE joblist_id = $slow"), 'running',
	'and the joblist still runs');
call(403, 'POST', '/api/v1/jobs/' . job_id_of($node, $slow, 'wait') . '/cancel', @bob,
	type => 'application/json');
($st) = http($web, 'POST', "/api/v1/joblists/$slow/cancel", @alice);
is($st, 415, 'a write without a JSON content type: 415 (no form can send one cross-site)');
($st) = http($web, 'POST', "/api/v1/joblists/$slow/cancel", @alice, type => 'application/json',
	headers => ['Sec-Fetch-Site: cross-site']);
is($st, 403, 'a cross-site write: 403');
is(call(200, 'POST', "/api/v1/joblists/$slow/cancel", @alice, type => 'application/json')->{cancelled},
	JSON::PP::true, 'alice cancels her own joblist');
wait_for($node, "SELECT state = 'cancelled' FROM dispatch.joblist_status WHERE joblist_id = $slow",
	'the cancel took effect');

# --- bounded requests
($st, $body) = http($web, 'POST', '/api/v1/joblists', @alice, body => 'x' x 70000);
is($st, 413, 'a body over --max-body: 413');
is(json_of($body)->{sqlstate}, '54000', 'as a JSON error');
($st) = http($web, 'POST', '/api/v1/joblists', @alice, body => 'x' x 70000,
	headers => ['Transfer-Encoding: chunked']);
is($st, 413, 'a chunked body over --max-body: 413');
($st) = http($web, 'GET', '/api/v1/session', @alice, headers => [ 'X-Big: ' . ('h' x 70000) ]);
ok($st >= 400 && $st < 500, "oversized headers are refused ($st)");
is(query($node, "SELECT count(*) FROM dispatch.joblists"), '3', 'nothing refused was stored');
my @streams = map {
	IPC::Run::start([ 'curl', '-s', '-N', '-u', 'bob:bob-pw', "$web->{url}/api/v1/events" ],
		'>', "$PostgreSQL::Test::Utils::tmp_check/stream$_")
} 1 .. 3;
wait_until(sub { 3 == grep { -s "$PostgreSQL::Test::Utils::tmp_check/stream$_" } 1 .. 3 },
	'three event streams open');
($st, $body) = http($web, 'GET', '/api/v1/events', @bob, max_time => 3);
is($st, 503, 'a fourth event stream is refused');
like($body, qr/too many event streams/, 'and told why');
my $ended = () = PostgreSQL::Test::Utils::slurp_file($web->{log}) =~ /GET \/api\/v1\/events 200 bob/g;
$_->kill_kill for @streams;
wait_until(sub { (() = PostgreSQL::Test::Utils::slurp_file($web->{log}) =~ /GET \/api\/v1\/events 200 bob/g)
	  >= $ended + 3 }, 'the closed streams free their places');

# --- a client that stops reading is dropped; the others keep receiving
my $fast_file = "$PostgreSQL::Test::Utils::tmp_check/fast.txt";
my $stuck = IO::Socket::INET->new(PeerAddr => $web->{url} =~ s{^http://}{}r, Proto => 'tcp')
  or die "no socket: $!";
print $stuck "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
  . MIME::Base64::encode_base64('bob:bob-pw', '') . "\r\n\r\n";
my $fast = IPC::Run::start([ 'curl', '-s', '-N', '-u', 'bob:bob-pw', "$web->{url}/api/v1/events" ],
	'>', $fast_file);
wait_until(sub { -s $fast_file }, 'the reading client is connected');
$node->safe_psql('postgres', q{SELECT pg_notify('dispatch_events',
	format('{"type": "flood", "n": %s, "pad": "%s"}', i, repeat('x', 7000))) FROM generate_series(1, 3000) i});
wait_until(sub { PostgreSQL::Test::Utils::slurp_file($fast_file) =~ /"n": 3000,/ },
	'a reading client gets the last event while another one is stuck');
wait_until(sub { PostgreSQL::Test::Utils::slurp_file($web->{log}) =~
	  /dropped a client|GET \/api\/v1\/events 200 bob \(aborted\)/ }, 'the stuck client is dropped');
$fast->kill_kill;
close $stuck;
$node->safe_psql('postgres', q{SELECT pg_notify('dispatch_events', 'not json'),
	pg_notify('dispatch_events', '{"type": "Bad Type"}')});

# --- artefacts: Alice's workspace (bound to n1 by an admin), a rule making one file, built once
my $rebuilt = built_workspace($node, 'site', 'alice', 'n1');
$r = call(200, 'GET', '/api/v1/artefacts?workspace=site', @bob);
is(join(',', map { "$_->{path}=$_->{state}:$_->{rule}:$_->{owner}" } @$r), 'index.html=fresh:page:alice',
	'artefacts: the file, its state, its rule and the workspace\'s owner, for any user');
is(scalar(@{ call(200, 'GET', '/api/v1/artefacts?workspace=nosuch', @bob) }), 0,
	'artefacts of an unknown workspace: none');
is(scalar(@{ call(200, 'GET', '/api/v1/artefacts?limit=1', @bob) }), 1, 'artefacts: limit');
$r = call(200, 'GET', '/api/v1/artefacts/graph?workspace=site', @bob);
is(join(',', map { "$_->{path}=$_->{state}" } @{ $r->{nodes} }), 'index.html=fresh', 'graph: its nodes');
is_deeply($r->{edges}, [], 'graph: a rule without inputs has no edges');
is(call(404, 'GET', '/api/v1/artefacts/graph?workspace=nosuch', @bob)->{message},
	'workspace nosuch does not exist', 'graph of an unknown workspace: 404');
call(400, 'GET', '/api/v1/artefacts/graph', @bob);
$r = call(403, 'POST', '/api/v1/artefacts/build', @bob, body => '{"workspace": "site", "path": "index.html"}');
is($r->{sqlstate}, '42501', "bob rebuilding alice's file: 42501");
like($r->{message}, qr/workspace "site" belongs to alice/, 'with the SQL message');
is(call(404, 'POST', '/api/v1/artefacts/build', @alice, body => '{"workspace": "nosuch", "path": "x"}')->{message},
	'workspace "nosuch" does not exist', 'an unknown workspace: 404');
is(call(404, 'POST', '/api/v1/artefacts/build', @alice, body => '{"workspace": "site", "path": "x"}')->{message},
	'no rule of workspace "site" makes "x"', 'a file no rule makes: 404');
for my $bad ('{"workspace": "site"}', '["site", "index.html"]', '{"workspace": "site", "path": ')
{
	is(substr(call(400, 'POST', '/api/v1/artefacts/build', @alice, body => $bad)->{sqlstate}, 0, 2), '22',
		"a body that does not say what to build: 400 ($bad)");
}
$r = call(202, 'POST', '/api/v1/artefacts/build', @alice, body => '{"workspace": "site", "path": "index.html"}');
is_deeply($r, { workspace => 'site', path => 'index.html', requested => JSON::PP::true },
	'alice asks for a rebuild of her file: 202');
wait_for($node, "SELECT ($rebuilt) = 2", 'the rebuild asked for ran and succeeded');

# --- the rest of the API through the OpenAPI document: every documented operation
# answers, and the route table, the document and the page's calls agree.
$node->safe_psql('postgres', q{SELECT dispatch.create_alert_rule('hot', '{"metric": "cpu.user",
	"op": ">", "threshold": 1000, "notify": ["mailto:ops@example.com"]}')});
wait_for($node, "SELECT count(*) > 0 FROM dispatch.metric_latest WHERE node = 'n1'", 'n1 sends metrics');
my $api = call(200, 'GET', '/api/v1/openapi.json');
is($api->{openapi}, '3.0.3', 'the OpenAPI document is served without a login');
my %bodies = ('POST /api/v1/joblists' => '{"name": "doc", "stages": [{"jobs": [{"name": "d", "command": "true"}]}]}',
	'POST /api/v1/goals' => '{"name": "g1", "spec": {"schedule": "0 * * * *", "command": "true"}}',
	'POST /api/v1/artefacts/build' => '{"workspace": "site", "path": "index.html"}');
my %expect = ('POST /api/v1/joblists' => 201, 'POST /api/v1/goals' => 201, 'POST /api/v1/artefacts/build' => 202);
my %query = (metric => 'cpu.user', workspace => 'site');
my @documented;
for my $path (sort { ($a =~ /goals$/ ? 0 : 1) <=> ($b =~ /goals$/ ? 0 : 1) || $a cmp $b } keys %{ $api->{paths} })
{
	for my $method (sort keys %{ $api->{paths}{$path} })
	{
		my $op = $api->{paths}{$path}{$method};
		my $key = uc($method) . " $path";
		push @documented, $key;
		(my $url = $path) =~ s/\{id\}/$path =~ m{^\/api\/v1\/jobs} ? $job : $jl/e;
		$url =~ s/\{node\}/n1/;
		$url =~ s/\{name\}/g1/;
		my @q = map { "$_->{name}=$query{$_->{name}}" } grep { $_->{in} eq 'query' && $_->{required} } @{ $op->{parameters} };
		$url .= '?' . join('&', @q) if @q;
		my @body = $bodies{$key} ? (body => $bodies{$key}) : $method eq 'post' ? (type => 'application/json') : ();
		my ($got, $b) = http($web, uc $method, $url, @alice, @body, max_time => 3);
		ok($op->{summary}, "$key has a summary");
		is($got, $expect{$key} // 200, "$key answers") or diag($b);
		like(join(',', keys %{ $op->{responses} }), qr/default/, "$key documents its errors");
	}
}
my $routes = PostgreSQL::Test::Utils::slurp_file(($ENV{TESTDIR} // '.') . '/web/routes.c');
my @served;
push @served, "$1 $2" while $routes =~ /^\t\{"(GET|POST)", "([^"]+)"/mg;
@served = sort @served;
is_deeply(\@served, [ sort @documented ], 'every route served is documented, and nothing else');
my $page = PostgreSQL::Test::Utils::slurp_file(($ENV{TESTDIR} // '.') . '/web/static/app.js');
my @calls = $page =~ m{"(/api/v1/[^"?`]*)|`(/api/v1/[^`?]*)}g;
my @paths = keys %{ $api->{paths} };
for my $c (grep { defined } @calls)
{
	(my $shape = $c) =~ s/\$\{[^}]+\}/{x}/g;
	ok((grep { (my $p = $_) =~ s/\{[a-z]+\}/{x}/g; $p eq $shape } @paths), "the page calls documented $c");
}
call(404, 'GET', '/api/v1/nothing', @alice);
call(404, 'GET', '/api/v1/nodes/n1', @alice);
call(405, 'DELETE', '/api/v1/joblists', @alice);
call(404, 'GET', '/api/v1/nodes/nosuch/metrics', @alice);
call(400, 'GET', '/api/v1/nodes/n1/series', @alice);
$r = call(200, 'GET', '/api/v1/nodes/n1/series?metric=cpu.user&since=10%20minutes', @alice);
ok(@{ $r->{points} } > 0 && @{ $r->{points}[0] } == 4, 'series: [epoch, avg, min, max] points');
$r = call(200, 'GET', '/api/v1/nodes', @alice);
is("$r->[0]{node} $r->[0]{state}", 'n1 online', 'nodes: n1 online');
ok(defined $r->[0]{cpu_pct}, 'nodes: with its latest load');
is(scalar(grep { $_->{node} eq 'n1' && $_->{type} eq 'cpu' } @{ call(200, 'GET', '/api/v1/resources', @alice) }),
	4, 'resources: the four cpus of n1');
is(query($node, "SELECT active FROM dispatch.goal_status WHERE name = 'g1'"), 't',
	'the goal created, paused and resumed through the API is active');
call(403, 'POST', '/api/v1/goals/g1/pause', @bob, type => 'application/json');
is(call(200, 'GET', '/api/v1/goals', @alice)->[0]{name}, 'g1', 'goals: listed');
is(ref call(200, 'GET', '/api/v1/alerts/history', @alice), 'ARRAY', 'alert history: a list');

# --- /metrics in Prometheus' text format
($st, $body, $hdr) = http($web, 'GET', '/metrics', @alice);
is($st, 200, '/metrics answers');
like($hdr, qr{Content-Type: text/plain; version=0\.0\.4}i, '/metrics: the exposition content type');
my (%help, %type, %sample);
for my $line (split /\n/, $body)
{
	if ($line =~ /^# HELP (\S+) \S/) { $help{$1} = 1; next }
	if ($line =~ /^# TYPE (\S+) (gauge|counter)$/) { $type{$1} = $2; next }
	if ($line =~ /^([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$/)
	{
		$sample{ $1 . ($2 // '') } = $3;
		fail("$1 has no TYPE") unless $type{$1};
		next;
	}
	fail("a line that is not Prometheus text: $line");
}
is_deeply([ sort keys %help ], [ sort keys %type ], '/metrics: every family has HELP and TYPE');
ok($sample{'dispatch_jobs{state="succeeded"}'} >= 2, '/metrics: succeeded jobs counted');
is($sample{'dispatch_joblists{state="cancelled"}'}, 1, '/metrics: the cancelled joblist');
is($sample{'dispatch_node_state{node="n1",state="online"}'}, 1, '/metrics: n1 online');
is($sample{'dispatch_scheduler_up'}, 1, '/metrics: the scheduler runs');
ok($sample{'dispatch_scheduler_cycles_total'} > 0, '/metrics: scheduler cycles');
ok(exists $sample{'dispatch_node_metric{node="n1",metric="cpu.user"}'}, "/metrics: n1's samples");
ok(exists $sample{'dispatch_node_metric{node="n1",metric="fs./.used"}'}, '/metrics: odd metric names are label values');

# --- read-only mode
my $ro = start_web($node, '--read-only');
($st, $body) = http($ro, 'POST', '/api/v1/joblists', @alice,
	body => '{"name": "ro", "stages": [{"jobs": [{"name": "x", "command": "true"}]}]}');
is($st, 403, 'read-only: a submit is refused');
is(json_of($body)->{sqlstate}, '25006', 'read-only: 25006');
($st) = http($ro, 'POST', "/api/v1/joblists/$jl/cancel", @alice, type => 'application/json');
is($st, 403, 'read-only: a cancel is refused');
($st, $body) = http($ro, 'GET', '/api/v1/session', @alice);
is(json_of($body)->{read_only}, JSON::PP::true, 'read-only: the session says so');
($st) = http($ro, 'GET', "/api/v1/joblists/$jl", @alice);
is($st, 200, 'read-only: reading works');
stop_web($ro);

# --- TLS with a certificate file
my $cert = "$PostgreSQL::Test::Utils::tmp_check/web.crt";
my $key = "$PostgreSQL::Test::Utils::tmp_check/web.key";
my ($o1, $o2);
IPC::Run::run([ 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
	'-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', $key,
	'-out', $cert ], '>', \$o1, '2>', \$o2) or die "openssl failed: $o2";
my $tls = start_web($node, { tls => [ $cert, $key ] });
like($tls->{url}, qr/^https:/, 'TLS: served as https');
($st, $body) = http($tls, 'GET', '/api/v1/session', @alice);
is($st, 200, 'TLS: a request over https with the certificate trusted');
(my $plain = { %$tls })->{url} =~ s/^https/http/;
($st) = http($plain, 'GET', '/api/v1/session', @alice, max_time => 3);
isnt($st, 200, 'TLS: plain http is not served');
stop_web($tls);

stop_web($web);
unlike(PostgreSQL::Test::Utils::slurp_file($web->{log}), qr/alice-pw|bob-pw|boss-pw|victim-pw/,
	'no password ever reached the log');
done_testing();
