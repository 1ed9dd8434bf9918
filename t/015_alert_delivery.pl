# Alert delivery is no weapon (issue 12, holes 6-8), shown against real receivers on
# loopback: aiosmtpd and an HTTP receiver (receivers.py), and silent TCP listeners
# (listeners.py) that log every connection and never answer.
#  - A rule name carrying "\r\nBcc: ..." cannot be created; a non-ASCII name arrives
#    RFC 2047-encoded, and the mail has exactly our headers and one recipient.
#  - A webhook to a loopback port off dispatch.webhook_allow is refused to a user at
#    creation, and for an admin's rule (by address or by a name resolving to loopback)
#    refused at send time: its listener never sees a connection.  An allow-listed one
#    gets the POST; its redirect to the forbidden port is not followed.
#  - Six targets on a port that accepts and never answers do not stop another rule from
#    being evaluated and notified within a few monitor intervals.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my ($smtp_port, $http_port, $forbidden_port, $slow_port) =
  map { PostgreSQL::Test::Cluster::get_free_port() } 1 .. 4;
my $received = "$dir/received.jsonl";
my $connections = "$dir/connections";
my $hook = "http://127.0.0.1:$http_port";
my $log = $PostgreSQL::Test::Utils::log_path;

# Starts a helper script and waits for its "ready".
sub helper
{
	my ($name, @args) = @_;
	my $ready = '';
	my $h = IPC::Run::start([ '/usr/bin/python3', "$FindBin::RealBin/$name", @args ],
		'<', \undef, '>', \$ready, '2>>', "$log/015_$name.log",
		IPC::Run::timeout(3 * $PostgreSQL::Test::Utils::timeout_default));
	$h->pump until $ready =~ /ready/;
	return $h;
}
my $receivers = helper('receivers.py', $smtp_port, $http_port, $received, "$dir/no_failures",
	"http://127.0.0.1:$forbidden_port/stolen");
my $listeners = helper('listeners.py', $connections, $forbidden_port, $slow_port);
END { local $?; $_->kill_kill for grep { $_ } ($receivers, $listeners) }

# Every delivery the receivers logged through via (smtp or http).
sub deliveries
{
	my ($via) = @_;
	open(my $fh, '<', $received) or return ();
	my @all = map { decode_json($_) } <$fh>;
	close $fh;
	return grep { $_->{via} eq $via } @all;
}

# How many connections the listener on port accepted.
sub connections_to
{
	my ($port) = @_;
	open(my $fh, '<', $connections) or return 0;
	my $n = grep { /^$port$/ } <$fh>;
	close $fh;
	return $n;
}

my $node = start_server(
	node_timeout => '1h',
	'dispatch.monitor_interval' => '1s',
	'dispatch.notify_timeout' => '60s',
	'dispatch.smtp_url' => "smtp://127.0.0.1:$smtp_port",
	'dispatch.mail_from' => 'dispatch@example.com',
	'dispatch.webhook_allow' => "127.0.0.1:$http_port, http://127.0.0.1:$slow_port/slow/");
query($node, "CREATE ROLE alice LOGIN IN ROLE dispatch_user;
              SELECT dispatch.agent_register('n1', '{}')");

# Runs sql as alice (a dispatch_user); returns (exit code, stdout, stderr).
sub as_alice
{
	my ($sql) = @_;
	my ($out, $err);
	my $rc = $node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', 'alice' ]);
	return ($rc, $out, $err);
}

# A rule on node.up = 1, which fires at once on n1 and notifies targets.
sub rule_sql
{
	my ($name, @targets) = @_;
	$name =~ s/'/''/g;
	return "SELECT dispatch.create_alert_rule('$name', '{\"metric\": \"node.up\", \"op\": \"=\", "
	  . "\"threshold\": 1, \"notify\": [" . join(', ', map { "\"$_\"" } @targets) . "]}')";
}

# --- hole 7: mail headers ----------------------------------------------------------
my ($rc, $out, $err) = as_alice(rule_sql("ops\r\nBcc: victim\@example.com", 'mailto:ops@example.com'));
like($err, qr/ERROR:  rule name must not contain control characters or line breaks/,
	'a rule name carrying a Bcc header is refused');
is(query($node, "SELECT count(*) FROM dispatch.alert_rules"), '0', 'and no rule exists');

my $name = "d\x{e9}p\x{f4}t \x{2713} plein";
my $utf8 = $name;
utf8::encode($utf8);
($rc, $out, $err) = as_alice(rule_sql($utf8, 'mailto:ops@example.com', "$hook/hook"));
is($rc, 0, 'a non-ASCII rule name is accepted') or diag $err;
wait_until(sub { deliveries('smtp') && deliveries('http') }, 'its mail and webhook arrive');
my ($mail) = deliveries('smtp');
is($mail->{subject}, "[pg_dispatch] FIRING warning: $name on n1 (node.up = 1, value 1)",
	'the subject reads back as the rule name');
like($mail->{raw_subject}, qr/^=\?UTF-8\?Q\?[^\r\n]*\?=(\s+=\?UTF-8\?Q\?[^\r\n]*\?=)*$/,
	'sent as RFC 2047 encoded-words');
is_deeply($mail->{headers}, [qw(Date From To Subject Message-ID MIME-Version Content-Type
	  Content-Transfer-Encoding)], 'no header but ours');
is_deeply($mail->{to}, ['ops@example.com'], 'one recipient, the rule\'s');

# --- hole 6: webhooks that reach inside --------------------------------------------
($rc, $out, $err) = as_alice(rule_sql('inside', "http://127.0.0.1:$forbidden_port/x"));
like($err, qr/ERROR:  webhook destination "http:\/\/127\.0\.0\.1:$forbidden_port\/x" is not allowed/,
	'a user cannot name a loopback port off the allow-list');
# An admin may; the sender refuses loopback for webhooks off the list, by address or by name.
query($node, rule_sql('admin-inside', "http://127.0.0.1:$forbidden_port/a", "http://localhost:$forbidden_port/b"));
($rc, $out, $err) = as_alice(rule_sql('redirected', "$hook/redirect"));
is($rc, 0, 'a user may name an allow-listed webhook') or diag $err;
wait_for($node, "SELECT count(*) = 2 FROM dispatch.notifications
                  WHERE target LIKE '%:$forbidden_port/%' AND attempts >= 1
                    AND last_error LIKE 'refused to connect to a non-public address%'",
	'the admin\'s loopback webhooks are refused when sent');
wait_for($node, "SELECT last_error = 'HTTP status 307' FROM dispatch.notifications
                  WHERE target = '$hook/redirect'", 'the redirect counts as a failure');
ok((grep { $_->{redirected} } deliveries('http')), 'the allow-listed receiver got the POST');

# --- hole 8: six receivers that never answer ---------------------------------------
query($node, rule_sql('slow', map { "http://127.0.0.1:$slow_port/slow/$_" } 1 .. 6));
wait_until(sub { connections_to($slow_port) >= 6 }, 'six deliveries hang on the silent port');
my $before = query($node, 'SELECT now()');
($rc, $out, $err) = as_alice(rule_sql('after-slow', "$hook/after"));
wait_until(sub { grep { $_->{path} eq '/after' } deliveries('http') },
	'another rule is notified meanwhile');
is(query($node, "SELECT e.at - r.created_at < interval '5 seconds'
                   FROM dispatch.alert_events e JOIN dispatch.alert_rules r USING (rule_id)
                  WHERE r.name = 'after-slow'"), 't', 'and evaluated within a few monitor intervals');
is(query($node, "SELECT count(*) FROM dispatch.notifications
                  WHERE target LIKE '%:$slow_port/%' AND sent_at IS NULL AND last_error IS NULL"),
	'6', 'while the six are still in flight');
is(query($node, "SELECT count(*) FROM dispatch.notifications
                  WHERE target LIKE '%:$slow_port/%' AND attempts > 1"), '0', 'and none was claimed twice');
($rc, $out, $err) = as_alice(rule_sql('too-many', map { "mailto:ops$_\@example.com" } 1 .. 11));
like($err, qr/ERROR:  notify must name at most 10 targets/, 'a rule names at most 10 targets');

# After everything: the forbidden port never saw a connection, nothing was sent twice.
is(connections_to($forbidden_port), 0, 'nothing ever connected to the forbidden port');
my %seen;
$seen{"http $_->{path} $_->{body}{event_id}"}++ for deliveries('http');
$seen{"smtp " . JSON::PP->new->decode($_->{body})->{event_id}}++ for deliveries('smtp');
is_deeply([ grep { $seen{$_} > 1 } sort keys %seen ], [], 'no notification was delivered twice');
done_testing();
