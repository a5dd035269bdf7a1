#!/usr/bin/env bash
# A private PostgreSQL for the deployment tests, from Debian's `postgresql` package.
#
#   postgres.sh start DIR PORT   install the package when missing (as root, apt-get), create a
#                                cluster in DIR listening on 127.0.0.1:PORT, create the database
#                                `airflow`, print its SQLAlchemy URL
#   postgres.sh stop DIR         stop that cluster (by its postmaster.pid)
#
# Exit status 3: PostgreSQL is not installed and cannot be (not root, or no apt-get).
set -euo pipefail

find_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; fi
}

# Run as the cluster's owner: PostgreSQL refuses to run as root.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd=${1:?start or stop}
dir=${2:?directory}

if [[ $cmd == stop ]]; then
    bin=$(find_bin)
    if [[ -n "$bin" && -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    exit 0
fi

port=${3:?port}
bin=$(find_bin)
if [[ -z "$bin" ]]; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "PostgreSQL is not installed, and installing it needs root and apt-get" >&2
        exit 3
    fi
    echo "installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    bin=$(find_bin)
fi

mkdir -p "$dir"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U airflow -E UTF8 --no-sync >"$dir/initdb.log"
fi
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U airflow -d postgres -tAc "select 1 from pg_database where datname='airflow'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U airflow airflow
fi
echo "postgresql+psycopg2://airflow@127.0.0.1:$port/airflow"
