#!/usr/bin/env bash
# Issue 5: reconcile at scale. For N in SIZES (1k, 10k, 100k by default) and
# each backend (SQLite; PostgreSQL when PG_URL answers): `gen_library.py
# --mutate` writes v1 (N entries) and v2 (2% new, 2% summaries edited, 1%
# removed: about 5% of entries differ) as single pages served by nginx on
# loopback. v1 is ingested once and the database kept as a template; each
# round restores it and times the second ingest, `tidings ingest` of v2, as
# a whole process (fetch, parse, reconcile, store), wall time and peak RSS.
# The process logs how the time splits (RUST_LOG=tidings=debug `ingest
# phase` events: fetch+parse, observe (identity and fingerprint of every
# entry), load stored, reconcile, apply (the one write transaction), save
# pages); the table shows the medians of each.
#
# Run:   benches/reconcile_scale.sh                (ROUNDS=5, SIZES="1000 10000 100000")
#        SIZES="1000 10000" ROUNDS=3 BACKENDS=sqlite benches/reconcile_scale.sh
# Needs: nginx, python3, GNU time; psql and a PostgreSQL server for the
#        postgres backend (PG_URL, default postgres://postgres@127.0.0.1:5432/postgres,
#        trust auth; scratch databases tidings_bench_* are created and dropped);
#        cargo unless TIDINGS names a release binary. Port 127.0.0.1:18380, or
#        NGINX_PORT. About 1 GB of disk for 100k.
source "$(dirname "$0")/lib.sh"
need nginx
ROUNDS=${ROUNDS:-5}
SIZES=${SIZES:-1000 10000 100000}
BACKENDS=${BACKENDS:-sqlite postgres}
NGINX_PORT=${NGINX_PORT:-18380}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
build_tidings
log "work folder $WORK"

if [[ " $BACKENDS " == *" postgres "* ]]; then
  need psql
  psql "$PG_URL" -qAtc 'SELECT 1' >/dev/null || { echo "PostgreSQL at $PG_URL does not answer" >&2; exit 1; }
fi
pg_db_url() { echo "${PG_URL%/*}/$1"; }
pg() { psql "$PG_URL" -qAtc "$1" >/dev/null; }
pg_drop_all() {
  for db in $(psql "$PG_URL" -qAtc "SELECT datname FROM pg_database WHERE datname LIKE 'tidings_bench_%'"); do
    pg "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  done
}
if [[ " $BACKENDS " == *" postgres "* ]]; then trap 'pg_drop_all; cleanup' EXIT; fi

site="$WORK/site"
for n in $SIZES; do
  "$PY" "$GEN" --entries "$n" --seed 7 --out "$site/n$n/v1" --base "/n$n/v1" --mutate >&2
done
start_nginx "$NGINX_PORT" "$site"

config() { # N VERSION DB_URL
  cat <<EOF
[database]
url = "$3"
[[sources]]
name = "library"
kind = "html"
url = "http://127.0.0.1:$NGINX_PORT/n$1/$2/resource-library/all.html"
page_pause_ms = 0
max_bytes = 500000000
EOF
  selectors_toml
}

db_url() { # BACKEND N ROLE
  case $1 in
    sqlite) echo "sqlite://$WORK/db/$3-$2.db" ;;
    postgres) pg_db_url "tidings_bench_$3_$2" ;;
  esac
}

# Ingest v1 once per size and backend; the result is the template of every round.
prepare() { # BACKEND N
  local url
  url=$(db_url "$1" "$2" v1)
  [ "$1" = postgres ] && pg "CREATE DATABASE tidings_bench_v1_$2"
  config "$2" v1 "$url" >"$WORK/$1-$2-v1.toml"
  timed "$WORK/first-$1-$2" -- "$TIDINGS" --config "$WORK/$1-$2-v1.toml" ingest
  local secs mib code
  read -r secs mib code <"$WORK/first-$1-$2"
  [ "$code" = 0 ] || { cat "$WORK/first-$1-$2.stderr" >&2; exit 1; }
  log "$1 n=$2: v1 ingested in $secs s ($mib MiB): $(cat "$WORK/first-$1-$2.stdout")"
  printf '%s n=%s\t0\tfirst ingest (v1)\tseconds\t%s\n' "$1" "$2" "$secs" >>"$WORK/first.tsv"
  [ "$1" = postgres ] && psql "$PG_URL" -qAtc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'tidings_bench_v1_$2'" >/dev/null
  return 0
}

restore() { # BACKEND N -> URL of a fresh copy of the v1 database
  case $1 in
    sqlite)
      # The write-ahead log holds what was not yet checkpointed: copy it too.
      rm -f "$WORK/db/run-$2.db"*
      cp "$WORK/db/v1-$2.db" "$WORK/db/run-$2.db"
      if [ -f "$WORK/db/v1-$2.db-wal" ]; then cp "$WORK/db/v1-$2.db-wal" "$WORK/db/run-$2.db-wal"; fi
      ;;
    postgres)
      pg "DROP DATABASE IF EXISTS tidings_bench_run_$2 WITH (FORCE)"
      pg "CREATE DATABASE tidings_bench_run_$2 TEMPLATE tidings_bench_v1_$2"
      ;;
  esac
  db_url "$1" "$2" run
}

results="$WORK/results.tsv"
: >"$results"
: >"$WORK/first.tsv"
mkdir -p "$WORK/db"
for n in $SIZES; do for b in $BACKENDS; do prepare "$b" "$n"; done; done

# The phases, from the debug log of one run: "NAME elapsed_ms=X" lines.
phases() { # STDERR_FILE -> "fetch_parse observe load reconcile apply save_pages" in seconds
  sed 's/\x1b\[[0-9;]*m//g' "$1" | "$PY" -c '
import re, sys
t = {}
for line in sys.stdin:
    m = re.search(r"ingest phase.*phase=\W?(\w+)\W?.*elapsed_ms=(\d+)", line)
    if m: t[m.group(1)] = int(m.group(2)) / 1000
print(" ".join(str(t.get(k, "nan")) for k in ("fetch_parse", "observe", "load", "reconcile", "apply", "save_pages")))'
}

for round in $(seq 1 "$ROUNDS"); do
  for n in $SIZES; do
    for b in $BACKENDS; do
      url=$(restore "$b" "$n")
      config "$n" v2 "$url" >"$WORK/run.toml"
      out="$WORK/second-$b-$n"
      timed "$out" -- env RUST_LOG=tidings=debug NO_COLOR=1 "$TIDINGS" --config "$WORK/run.toml" ingest
      read -r secs mib code <"$out"
      [ "$code" = 0 ] || { cat "$out.stderr" >&2; exit 1; }
      read -r fp obs load rec apply pages < <(phases "$out.stderr")
      case="$b n=$n"
      {
        printf '%s\t%s\ttidings\tseconds\t%s\n' "$case" "$round" "$secs"
        printf '%s\t%s\ttidings\tpeak RSS MiB\t%s\n' "$case" "$round" "$mib"
        for p in "fetch+parse:$fp" "observe:$obs" "load stored:$load" "reconcile:$rec" "apply:$apply" "save pages:$pages"; do
          printf '%s\t%s\ttidings\t%s s\t%s\n' "$case" "$round" "${p%%:*}" "${p#*:}"
        done
      } >>"$results"
      log "round $round $case: ${secs} s, ${mib} MiB ($(cat "$out.stdout"))"
    done
  done
done

echo
echo "second ingest (v1 stored, then v2), whole process, medians of $ROUNDS rounds"
"$PY" - "$results" <<'EOF'
import statistics, sys
from collections import defaultdict
vals = defaultdict(list)
cases, metrics = [], []
for line in open(sys.argv[1]):
    case, rnd, tool, metric, value = line.rstrip("\n").split("\t")
    if case not in cases: cases.append(case)
    if metric not in metrics: metrics.append(metric)
    if value != "nan": vals[(case, metric)].append(float(value))
print("| backend, entries | " + " | ".join(metrics) + " |")
print("| --- |" + " ---: |" * len(metrics))
for c in cases:
    cells = []
    for m in metrics:
        v = vals[(c, m)]
        cells.append(f"{statistics.median(v):.{1 if 'MiB' in m else 3}f}" if v else "-")
    print(f"| {c} | " + " | ".join(cells) + " |")
EOF
echo
echo "first ingest (v1, into an empty database), one run each"
cut -f1,5 "$WORK/first.tsv" | sed 's/\t/: /; s/$/ s/'
