# Job files: an agent writes each job's rendered files into the job's work directory,
# with their modes, before the job starts; the job reads them.  Two stages, so the
# second job's files are written on its own attempt.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server();
my $agent = start_agent($node, 'n1', '--resource', 'cpu=[0-1]');

# The script is itself a file; the command and the config are templates.  The per-file
# map wins over the job's; run.sh is not a template, so its @HOST@ stays.
my $jl = submit($node, q({"name": "tpl", "stages": [
  {"jobs": [{"name": "render", "command": "./bin/run.sh @HOST@", "template": true,
    "replacements": {"@HOST@": "db1.example", "@PORT@": "5432", "$USER": "dispatch"},
    "files": [
      {"path": "bin/run.sh", "mode": "0750",
       "content": "#!/bin/sh\necho \"arg=$1\"\ncat conf/app.ini\necho \"@HOST@ stays\"\nstat -c '%a %n' bin/run.sh conf/app.ini conf/secret\n"},
      {"path": "conf/app.ini", "content": "host=@HOST@\nport=@PORT@\nuser=$USER\n",
       "replacements": {"@PORT@": "8081"}},
      {"path": "conf/secret", "mode": "0600", "content": "s3cr\u00e9t\n"}]}]},
  {"jobs": [{"name": "again", "command": "cat app.ini",
    "files": [{"path": "app.ini", "content": "@X@=@Y@\n", "replacements": {"@X@": "a", "@Y@": "b"}}]}]}]}));
wait_for($node, "SELECT state IN ('succeeded', 'failed') FROM dispatch.joblist_status
                  WHERE joblist_id = $jl", 'joblist with files ends');
is(query($node, "SELECT state FROM dispatch.joblist_status WHERE joblist_id = $jl"), 'succeeded',
	'jobs with files succeed');
my $render = job_id_of($node, $jl, 'render');
is(query($node, "SELECT dispatch.job_log($render)"),
	"arg=db1.example\nhost=db1.example\nport=8081\nuser=dispatch\n\@HOST\@ stays\n"
	  . "750 bin/run.sh\n644 conf/app.ini\n600 conf/secret\n",
	'the job read its rendered files, with their modes');
is(query($node, "SELECT dispatch.job_log(" . job_id_of($node, $jl, 'again') . ")"), "a=b\n",
	'a later stage gets its own files');
is(query($node, "SELECT string_agg(path || ' ' || mode || ' ' || template, ', ' ORDER BY path)
                   FROM dispatch.job_files WHERE job_id = $render"),
	'bin/run.sh 0750 false, conf/app.ini 0644 true, conf/secret 0600 false', 'job_files shows the files');

stop_agent($agent);
done_testing();
