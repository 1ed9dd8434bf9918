# The web page in a real headless Chromium: it loads, follows a running joblist to
# succeeded and its job's log line by line without a reload, lists the files of a
# workspace and rebuilds one with its button, draws the resource board and a metric
# chart, and leaves a screenshot (its path is printed in the log).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use WebTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server();
my $dir = shared_dir();
web_roles($node, alice => ['alice-pw', 'dispatch_user']);
start_agent($node, 'n1', '--resource', 'cpu=[0-3]', '--resource', 'gpu=[0-1]',
	'--metrics-interval', '1');
my $web = start_web($node);
# Alice's workspace (bound to n1 by an admin) and a rule; the first rebuild makes the file.
my $rebuilt = built_workspace($node, 'site', 'alice', 'n1');
wait_for($node, "SELECT count(*) > 0 FROM dispatch.metric_latest WHERE node = 'n1'", 'n1 sends metrics');

my $jl = query($node, qq{SET ROLE alice; SELECT dispatch.submit_joblist('{"name": "browser",
  "stages": [{"name": "build", "jobs": [{"name": "steps", "needs": {"cpu": 2, "gpu": 1},
    "command": "echo first line; while [ ! -f $dir/go ]; do sleep 0.1; done; echo second line"}]},
  {"name": "test", "jobs": [{"name": "check", "command": "echo checked"}]}]}')});
my $job = job_id_of($node, $jl, 'steps');
my $shot = "$PostgreSQL::Test::Utils::tmp_check/web_page.png";
my ($out, $err) = ('', '');
my $ok = IPC::Run::run([ '/usr/bin/python3', "$FindBin::RealBin/web_browser.py", $web->{url},
	'alice', 'alice-pw', $jl, $job, "$dir/go", $shot, 'site', 'index.html' ], '>', \$out, '2>', \$err,
	IPC::Run::timeout(300));
note $err if $err;
my @lines = split /\n/, $out;
for my $line (@lines)
{
	if ($line =~ /^ok (.*)/) { pass("browser: $1") }
	elsif ($line =~ /^not ok (.*)/) { fail("browser: $1") }
	else { note $line }
}
is(scalar(grep { /^(not )?ok / } @lines), 14, 'the browser ran every check');
ok($ok, 'the browser script ended well');
ok(-s $shot, "a screenshot was saved");
diag("screenshot of the page: $shot");
is(query($node, "SELECT state FROM dispatch.joblist_status WHERE joblist_id = $jl"), 'succeeded',
	'the joblist the page watched succeeded');
wait_for($node, "SELECT ($rebuilt) = 2", 'the Rebuild button made a second rebuild joblist, which succeeded');
my ($shown) = map { /^# rebuilt in: (\d+)$/ ? $1 : () } @lines;
is($shown, query($node, "SELECT built_in FROM dispatch.artefact_status WHERE workspace = 'site'
                          AND path = 'index.html'"), 'the page showed the rebuild that built the file');
done_testing();
