#!/usr/bin/env bash
# Issue 20: the public pages at library size. One `tidings serve` (release)
# over SQLite holding ENTRIES resources (10,000 by default) ingested from a
# generated seed file (each entry dated in its title); `wrk -t2 -cCONNS` on
# three paths in interleaved rounds (the order rotates every round):
#   home   GET /                     the first page of the newest 50
#   item   GET /resources/{id}       one resource with its history
#   feed   GET /feeds/all.rss        the rendered feed, served from memory
# and prints, per path, the median requests/s, p50 and p99 latency, and the
# median per-round ratio of each page's rate to the feed's.
#
# Run:   benches/pages.sh                        (ENTRIES=10000 ROUNDS=5 DURATION=10 CONNS=16)
#        TIDINGS=path/to/tidings KEEP=1 benches/pages.sh
# Needs: wrk, curl, python3, GNU time; cargo unless TIDINGS names a release
#        binary. Port 127.0.0.1:18290, or TIDINGS_PORT.
source "$(dirname "$0")/lib.sh"
need wrk curl
ENTRIES=${ENTRIES:-10000}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
TIDINGS_PORT=${TIDINGS_PORT:-18290}
build_tidings

log "work folder $WORK; $ENTRIES entries"
mkdir -p "$WORK/seeds"
"$PY" "$BENCH_ROOT/benches/seed_library.py" "$ENTRIES" "$WORK/seeds/library.txt"
{
  printf '[site]\ntitle = "Tower Hamlets Together — Resource Library"\n'
  printf 'base_url = "https://feeds.example.org/"\n'
  printf '[database]\nurl = "sqlite://%s/pages.db"\n' "$WORK"
  printf '[server]\nlisten = "127.0.0.1:%s"\n' "$TIDINGS_PORT"
  printf '[[sources]]\nname = "library"\nkind = "seed"\npath = "%s/seeds"\n' "$WORK"
  printf 'schedule = "0 0 0 1 1 *"\n'
} >"$WORK/tidings.toml"
/usr/bin/time -f "ingest: %e s, %M KiB" "$TIDINGS" --config "$WORK/tidings.toml" ingest >/dev/null
RUST_LOG=warn "$TIDINGS" --config "$WORK/tidings.toml" serve 2>"$WORK/serve.log" &
STARTED_PIDS+=($!)
wait_port "$TIDINGS_PORT"

base="http://127.0.0.1:$TIDINGS_PORT"
id=$(curl -sf "$base/" | grep -o 'href="/resources/[0-9a-f]*"' | head -1 | sed 's|.*/||; s|"||')
[ -n "$id" ] || { echo "no resource on /" >&2; exit 1; }
declare -A URL=([home]="$base/" [item]="$base/resources/$id" [feed]="$base/feeds/all.rss")
for path in home item feed; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "${URL[$path]}")
  [ "$code" = 200 ] || { echo "$path answered $code" >&2; exit 1; }
done

# run_wrk PATH SECONDS -> "requests/s p50_ms p99_ms" (fails on errors or non-2xx).
run_wrk() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${2}s" --latency "${URL[$1]}")
  echo "$out" >>"$WORK/wrk.log"
  if echo "$out" | grep -qE 'Socket errors|Non-2xx'; then echo "$1: $out" >&2; exit 1; fi
  echo "$out" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    END { printf "%s %.2f %.2f\n", rps, p50, p99 }'
}

log "warm-up"
for path in home item feed; do run_wrk "$path" 2 >/dev/null; done

results="$WORK/results.tsv"
: >"$results"
paths=(home item feed)
for round in $(seq 1 "$ROUNDS"); do
  shift_by=$(((round - 1) % 3))
  order=("${paths[@]:$shift_by}" "${paths[@]:0:$shift_by}")
  for path in "${order[@]}"; do
    read -r rps p50 p99 < <(run_wrk "$path" "$DURATION")
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$path" "$rps" "$p50" "$p99" >>"$results"
    log "round $round $path: $rps req/s, p50 $p50 ms, p99 $p99 ms (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done

echo
echo "$ENTRIES resources, wrk -t2 -c$CONNS -d${DURATION}s, $ROUNDS rounds, $(nproc) cores"
"$PY" "$BENCH_ROOT/benches/summarise_pages.py" "$results"
