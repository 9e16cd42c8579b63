#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server for the case-store tests:
#
#   scripts/with-postgres.sh .venv/bin/python -m pytest tests/store
#
# Starts the server from the PostgreSQL binaries (/usr/lib/postgresql/*/bin or `pg_config
# --bindir`) in a temporary folder on a free port of 127.0.0.1, creates the database
# neurolysis_test, exports NEUROLYSIS_TEST_POSTGRES_URL and NEUROLYSIS_REQUIRE_POSTGRES=1, runs
# the command, then ALWAYS stops the server and removes the folder; exits with the command's
# status. Without the binaries it runs the command alone (the PostgreSQL tests then skip).
# As root, initdb and the server run as the user postgres (initdb refuses root).
set -uo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

bindir=""
for candidate in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) "$(pg_config --bindir 2>/dev/null)"; do
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then
        bindir=$candidate
        break
    fi
done
if [ -z "$bindir" ]; then
    echo "with-postgres: no PostgreSQL server binaries found; running without PostgreSQL (its tests skip)" >&2
    exec "$@"
fi

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id -u postgres >/dev/null 2>&1; then
        echo "with-postgres: running as root but there is no user 'postgres' to run the server" >&2
        exit 1
    fi
    as_owner=(runuser -u postgres --)
fi

datadir=$(mktemp -d "${TMPDIR:-/tmp}/neurolysis-pg.XXXXXX")
[ "${#as_owner[@]}" -gt 0 ] && chown postgres: "$datadir"
chmod 700 "$datadir"
started=0

cleanup() {
    if [ "$started" -eq 1 ]; then
        "${as_owner[@]}" "$bindir/pg_ctl" -D "$datadir/data" -m fast -w stop >/dev/null 2>&1 \
            || "${as_owner[@]}" "$bindir/pg_ctl" -D "$datadir/data" -m immediate -w stop >/dev/null 2>&1
    fi
    rm -rf "$datadir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

if ! "${as_owner[@]}" "$bindir/initdb" -D "$datadir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$datadir/initdb.log" 2>&1; then
    echo "with-postgres: initdb failed:" >&2
    cat "$datadir/initdb.log" >&2
    exit 1
fi
# fsync stays on: the durability tests kill writers, not the machine, but the server is run as configured in production.
if ! "${as_owner[@]}" "$bindir/pg_ctl" -D "$datadir/data" -l "$datadir/server.log" \
        -o "-p $port -k $datadir -c listen_addresses=127.0.0.1 -c max_connections=200" -w -t 60 start >/dev/null; then
    echo "with-postgres: the server did not start:" >&2
    cat "$datadir/server.log" >&2
    exit 1
fi
started=1
if ! "${as_owner[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres neurolysis_test; then
    echo "with-postgres: createdb failed" >&2
    exit 1
fi

export NEUROLYSIS_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/neurolysis_test"
export NEUROLYSIS_REQUIRE_POSTGRES=1
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
"$@"
status=$?
exit "$status"
