
# WebTest: a real dispatch-web in front of a DispatchTest server, roles that log in to
# it with passwords, and curl to talk to it, for t/022_web_api.pl and t/023_web_browser.pl.

package WebTest;

use strict;
use warnings;
use Exporter 'import';
use File::Basename;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DispatchTest;

our @EXPORT = qw(web_roles start_web stop_web http json_of built_workspace);

my @webs;

# Creates each role => [password, group] (group: dispatch_user, dispatch_admin or undef)
# and makes the server ask these roles for their password over the socket (the test
# cluster trusts everyone else, as PostgreSQL::Test::Cluster sets it up).
sub web_roles
{
	my ($node, %roles) = @_;
	my $hba = $node->data_dir . '/pg_hba.conf';
	my $names = join(',', sort keys %roles);
	my $old = PostgreSQL::Test::Utils::slurp_file($hba);
	open(my $fh, '>', $hba) or die "could not write $hba: $!";
	print $fh "local all $names scram-sha-256\n$old";
	close $fh;
	for my $r (sort keys %roles)
	{
		my ($pw, $group) = @{ $roles{$r} };
		$node->safe_psql('postgres', "CREATE ROLE $r LOGIN PASSWORD '$pw'"
			  . ($group ? " IN ROLE $group" : ''));
	}
	$node->reload;
}

# Creates workspace ws owned by role owner and bound to node n (as an admin), with the
# rule "page" making index.html, and builds it once; returns the query that counts the
# workspace's rebuilds that succeeded.
sub built_workspace
{
	my ($node, $ws, $owner, $n) = @_;
	$node->safe_psql('postgres', qq{SELECT dispatch.create_workspace('$ws', '$owner', '$n');
		SET ROLE $owner;
		SELECT dispatch.create_rule('page', '{"workspace": "$ws", "outputs": ["index.html"],
		  "job": {"command": "echo hello > index.html"}}');
		SELECT dispatch.request_build('$ws', 'index.html')});
	my $rebuilt = "SELECT count(*) FROM dispatch.joblists WHERE name = 'rebuild $ws' AND state = 'succeeded'";
	DispatchTest::wait_for($node, "SELECT ($rebuilt) = 1", "the first rebuild of workspace $ws succeeded");
	return $rebuilt;
}

# Starts dispatch-web for node with extra arguments; waits until it answers.  Returns
# {url, log, handle}; {tls => [cert, key]} before the arguments serves HTTPS.
sub start_web
{
	my ($node, @args) = @_;
	my $opt = ref $args[0] eq 'HASH' ? shift @args : {};
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $test = File::Basename::basename($0, '.pl');
	my $log = "$PostgreSQL::Test::Utils::log_path/${test}_web_$port.log";
	my $dir = $ENV{TESTDIR} // '.';
	my @tls = $opt->{tls} ? ('--tls-cert', $opt->{tls}[0], '--tls-key', $opt->{tls}[1]) : ();
	my @cmd = ("$dir/web/dispatch-web", '--dbname', $node->connstr('postgres'),
		'--listen', "127.0.0.1:$port", @tls, @args);
	note "starting dispatch-web: @cmd";
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>>', $log, '2>>', $log);
	my $web = { url => ($opt->{tls} ? 'https' : 'http') . "://127.0.0.1:$port",
		log => $log, handle => $h, cacert => $opt->{tls} ? $opt->{tls}[0] : undef };
	DispatchTest::wait_until(sub { (http($web, 'GET', '/api/v1/openapi.json'))[0] == 200 },
		"dispatch-web on port $port answers");
	push @webs, $web;
	return $web;
}

# Stops a dispatch-web with SIGTERM and waits for it to exit.
sub stop_web
{
	my ($web) = @_;
	$web->{handle}->signal('TERM');
	$web->{handle}->finish;
}

# Sends one request with curl; returns (status, body, headers).  %o: user => 'u:p',
# body => STRING, type => content type (application/json when there is a body),
# headers => [lines], max_time => seconds.
sub http
{
	my ($web, $method, $path, %o) = @_;
	my $hdr = "$PostgreSQL::Test::Utils::tmp_check/curl_headers";
	my @cmd = ('curl', '-s', '-X', $method, '-D', $hdr, '-o', '-', '-w', "\n%{http_code}",
		'--max-time', $o{max_time} // 30);
	push @cmd, '--cacert', $web->{cacert} if $web->{cacert};
	push @cmd, '-u', $o{user} if $o{user};
	if (defined $o{body})
	{
		push @cmd, '-H', 'Content-Type: ' . ($o{type} // 'application/json'),
		  '--data-binary', '@-';
	}
	elsif ($o{type})
	{
		push @cmd, '-H', "Content-Type: $o{type}";
	}
	push @cmd, map { ('-H', $_) } @{ $o{headers} // [] };
	my ($out, $err) = ('', '');
	my $in = $o{body} // '';
	IPC::Run::run([ @cmd, $web->{url} . $path ], '<', \$in, '>', \$out, '2>', \$err);
	my ($body, $status) = $out =~ /\A(.*)\n(\d+)\z/s ? ($1, $2) : ($out, 0);
	my $headers = -e $hdr ? PostgreSQL::Test::Utils::slurp_file($hdr) : '';
	unlink $hdr;
	return ($status + 0, $body, $headers);
}

# Returns the decoded JSON of a body, or undef (with a diagnostic) when it is not JSON.
sub json_of
{
	my ($body) = @_;
	my $v = eval { JSON::PP->new->allow_nonref->decode($body) };
	diag("not JSON: $body") unless defined $v;
	return $v;
}

END
{
	local $?;
	for my $web (@webs)
	{
		eval { $web->{handle}->kill_kill };
	}
}

1;
