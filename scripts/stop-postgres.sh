#!/usr/bin/env bash
# Stop the server scripts/start-postgres.sh started (REIRRAD_PG_DIR) and delete its folder.
set -euo pipefail
dir="${REIRRAD_PG_DIR:-}"
case "$dir" in
  */reirrad-pg.*) ;;
  *) echo "stop-postgres: REIRRAD_PG_DIR is not a folder of start-postgres.sh: '$dir'" >&2; exit 1 ;;
esac
bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
  [ -x "$candidate/pg_ctl" ] && bindir="$candidate"
done
as_owner=()
if [ "$(id -u)" -eq 0 ]; then as_owner=(runuser -u postgres --); fi
if [ -f "$dir/data/postmaster.pid" ]; then
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
fi
rm -rf "$dir"
