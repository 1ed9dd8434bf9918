#!/usr/bin/env bash
# Installs what pg_dispatch needs on Debian 12 (PostgreSQL 15, headers, test tools,
# Patroni and etcd for the HA tests, libcap), creates the job user, then builds and installs the extension and builds
# dispatch-agent.  Idempotent.  The HA tests start etcd and Patroni themselves on free
# loopback ports; no system service of either package is used.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pkgs=(postgresql-15 postgresql-server-dev-15 libpq-dev libipc-run-perl gcc make perl
      python3 python3-croniter tzdata libcurl4-openssl-dev python3-aiosmtpd
      patroni etcd-server etcd-client libcap-dev libcap2-bin passwd
      libjansson-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# The OS user the agents of the tests and the demo run jobs as (dispatch-agent --job-user):
# a system user with no login shell and no home.
job_user=${DISPATCH_JOB_USER:-dispatch-job}
if ! getent passwd "$job_user" >/dev/null; then
    as_root useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --user-group "$job_user"
fi

export PATH=/usr/lib/postgresql/15/bin:$PATH
make -s -C "$root" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
as_root make -s -C "$root" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install
make -s -C "$root/agent"
echo "setup: pg_dispatch built and installed, agent at $root/agent/dispatch-agent"
