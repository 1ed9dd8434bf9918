#!/bin/sh
# example.sh -- a dispatch-agent metrics plugin: copy it into the directory
# given with --plugin-dir and make it executable.
#
# The agent runs every executable file of that directory once per sample,
# all at the same time, each for at most 5 seconds, and reads its standard
# output, one metric per line:
#     name value
#     name{label="x",other="y"} value
# The value is a JSON number; a label value is double-quoted, with \" \\ and
# \n as escapes.  Lines starting with '#' are ignored.  A malformed line, a
# non-zero exit, a crash or a timeout shows in the sample's "problems"; the
# good lines are kept all the same.  Standard error is discarded, and the
# environment is the agent's without its PG* variables.

# Who is logged in, interactively.
echo "users_logged_in $(who 2>/dev/null | wc -l)"

# Free space where jobs write scratch files (df -P: POSIX output, 1024-byte
# blocks; %.0f because awk's %d stops at 2^31 in some awks).
df -P -k /tmp | awk 'NR == 2 { printf "scratch_free_bytes{path=\"/tmp\"} %.0f\n", $4 * 1024 }'

# Processes in uninterruptible sleep (state D): a dead NFS server shows here first.
echo "procs_uninterruptible $(ps -eo stat= | grep -c '^D')"
