#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tests (Debian's postgresql package) and print
# the environment that points at it:
#
#   eval "$(bash scripts/start-postgres.sh)"     # exports DATABASE_URL and REIRRAD_PG_DIR
#   make test                                    # the web tests then run on PostgreSQL too
#   bash scripts/stop-postgres.sh                # stops it and deletes its folder
#
# The cluster lives in a new temporary folder, listens on 127.0.0.1 on a free port (and on a
# socket in that folder only), trusts local connections and does not fsync: it is for tests,
# never for data. initdb refuses to run as root, so as root the cluster runs as the
# 'postgres' system user that the package creates.
set -euo pipefail
bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
  [ -x "$candidate/initdb" ] && bindir="$candidate"
done
if [ -z "$bindir" ]; then
  echo "start-postgres: no PostgreSQL server under /usr/lib/postgresql; install it with" \
    "'apt-get install postgresql' (scripts/system-deps.sh does)" >&2
  exit 1
fi
dir="$(mktemp -d "${TMPDIR:-/tmp}/reirrad-pg.XXXXXX")"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$dir"
  as_owner=(runuser -u postgres --)
fi
"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U reirrad --auth=trust -E UTF8 --no-locale \
  >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
options="-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off"
options="$options -c synchronous_commit=off -c max_connections=100"
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$options" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
"${as_owner[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U reirrad reirrad
echo "export DATABASE_URL=postgresql://reirrad@127.0.0.1:$port/reirrad"
echo "export REIRRAD_PG_DIR=$dir"
echo "start-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
