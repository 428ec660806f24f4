#!/usr/bin/env bash
# Digests to SMTP (issues 6, 19): personalised digests delivered by the
# release binary to Postfix's smtp-sink on loopback, against Postfix's own
# client, smtp-source, sending as many messages of about the same size to the
# same sink in the same rounds.
#
#   benches/digests_smtp.sh [SUBSCRIBERS] [SESSIONS]     (defaults 10000, 8)
#
# Needs the Debian packages postfix (smtp-sink, smtp-source), time and
# iproute2 (ss); run as root (smtp-sink drops to nobody). ROUNDS (default 3)
# rounds; in each, on a fresh SQLite database with SUBSCRIBERS confirmed
# subscribers over nine category choices and the reference seed page
# ingested (setup, not timed), these phases run, Postfix's and Tidings'
# alternating which goes first:
#
#   smtp-source reuse   smtp-source -d -s SESSIONS -m SUBSCRIBERS -l 5120:
#                       SESSIONS connections, each kept open for the next
#                       message, as Tidings keeps its pooled connections. The
#                       baseline the delivery rate is compared with.
#   smtp-source fresh   the same without -d: a new connection per message.
#                       Reported for reference only; comparing against it
#                       flatters any client that reuses connections.
#   tidings queue       `digest send --now` with the relay refusing (port 1,
#                       mail.max_attempts = 1): render, compose and insert a
#                       digest per subscriber; every send fails at once.
#   tidings deliver     `outbox retry --failed` with the relay at the sink:
#                       re-queue, then claim, send and mark sent each message,
#                       mail.concurrency = SESSIONS.
#
# Wall time and peak RSS of each tidings phase come from /usr/bin/time; the
# smtp-source phases are timed around the process. Prints each round, then
# medians of the rates and of the per-round ratios (a noisy moment on a
# shared machine hits both sides of a round alike).
source "$(dirname "$0")/lib.sh"
n=${1:-10000}
sessions=${2:-8}
rounds=${ROUNDS:-3}
need smtp-sink smtp-source ss /usr/bin/time
build_tidings
# DB_DIR puts the SQLite file elsewhere (e.g. /dev/shm, to see what fsync costs).
db_dir=${DB_DIR:-$WORK}

smtp-sink -u nobody 127.0.0.1:0 1024 &
sink_pid=$!
STARTED_PIDS+=("$sink_pid")
# smtp-sink binds a port of the system's choosing and does not print it.
sink_port=""
for _ in $(seq 1 100); do
  sink_port=$(ss -Hltnp | awk -v pid="pid=$sink_pid," 'index($0, pid) { n = split($4, a, ":"); print a[n]; exit }')
  [ -n "$sink_port" ] && break
  sleep 0.1
done
[ -n "$sink_port" ] || { echo "smtp-sink did not listen" >&2; exit 1; }
log "smtp-sink on 127.0.0.1:$sink_port"

now() { date +%s.%N; }

# smtp_source EXTRA...: seconds smtp-source takes to send n messages.
smtp_source() {
  local t0 t1
  t0=$(now)
  smtp-source "$@" -s "$sessions" -m "$n" -l 5120 -f bench@example.org -t sink@example.org "127.0.0.1:$sink_port"
  t1=$(now)
  "$PY" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$t0" "$t1"
}

# setup ROUND: a working folder with a config, subscribers and ingested seeds.
setup() {
  local dir="$WORK/round-$1"
  mkdir -p "$dir/seeds"
  cp "$BENCH_ROOT/tests/fixtures/seeds/resource-library-page-4.txt" "$dir/seeds/"
  rm -f "$db_dir/tidings-bench-$1.db"*
  cat > "$dir/tidings.toml" <<TOML
[site]
title = "Tower Hamlets Together"
base_url = "https://feeds.example.org/"
[database]
url = "sqlite://$db_dir/tidings-bench-$1.db"
[mail]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:1"
from = "Tower Hamlets Together <resources@example.org>"
concurrency = $sessions
timeout_s = 10
max_attempts = 1
TOML
  "$PY" - "$n" "$dir/people.csv" leaflets news board-papers strategies-and-plans case-studies reports all "leaflets;news" "board-papers;reports" <<'PY'
import sys
n, path, cats = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
with open(path, "w") as f:
    f.write("email,categories,frequency\n")
    for i in range(n):
        f.write(f"reader{i:05d}@example.org,{cats[i % len(cats)]},weekly\n")
PY
  (cd "$dir" && "$TIDINGS" subscribers import people.csv --confirmed >/dev/null 2>&1 && "$TIDINGS" ingest >/dev/null 2>&1)
  echo "$dir"
}

# tidings_phases DIR: "queue_s queue_kb deliver_s deliver_kb sent".
tidings_phases() {
  local dir=$1
  (
    cd "$dir"
    export RUST_LOG=error
    # Exits 1: every send is refused, as intended.
    /usr/bin/time -f "%e %M" -o queue.time "$TIDINGS" digest send --now > queue.out 2>queue.err || true
    TIDINGS_SMTP_URL="smtp://127.0.0.1:$sink_port" /usr/bin/time -f "%e %M" -o deliver.time "$TIDINGS" outbox retry --failed > deliver.out
    # time(1) writes "Command exited with non-zero status" first when the exit is not 0.
    echo "$(tail -1 queue.time) $(tail -1 deliver.time) $(grep -o 'sent [0-9]*' deliver.out | awk '{print $2}')"
  )
}

results="$WORK/rounds.tsv"
: > "$results"
for round in $(seq 1 "$rounds"); do
  dir=$(setup "$round")
  if [ $((round % 2)) = 1 ]; then
    reuse=$(smtp_source -d); fresh=$(smtp_source); phases=$(tidings_phases "$dir")
  else
    phases=$(tidings_phases "$dir"); fresh=$(smtp_source); reuse=$(smtp_source -d)
  fi
  echo "$round $reuse $fresh $phases" >> "$results"
  log "round $round: smtp-source reuse ${reuse}s, fresh ${fresh}s; tidings queue+deliver: $phases"
done

"$PY" - "$n" "$sessions" "$results" <<'PY'
import statistics, sys
n, sessions, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rows = []
for line in open(path):
    r, reuse, fresh, q, qkb, d, dkb, sent = line.split()
    q, d, sent = float(q), float(d), int(sent)
    rows.append({
        "round": int(r),
        "reuse": n / float(reuse), "fresh": n / float(fresh),
        "queue": n / q, "deliver": sent / d, "e2e": sent / (q + d),
        "sent": sent, "qmib": int(qkb) // 1024, "dmib": int(dkb) // 1024,
    })
def med(key): return statistics.median(r[key] for r in rows)
def span(key): return f"{min(r[key] for r in rows):,.0f}-{max(r[key] for r in rows):,.0f}"
print(f"{n} subscribers, {sessions} sessions, {len(rows)} rounds, rates per second")
print("round  smtp-source-reuse  smtp-source-fresh  tidings-queue  tidings-deliver  tidings-e2e  deliver/reuse  deliver/fresh  sent  RSS(queue/deliver) MiB")
for r in rows:
    print(f"{r['round']:>5}  {r['reuse']:>17,.0f}  {r['fresh']:>17,.0f}  {r['queue']:>13,.0f}  {r['deliver']:>15,.0f}  "
          f"{r['e2e']:>11,.0f}  {r['deliver'] / r['reuse']:>13.2f}  {r['deliver'] / r['fresh']:>13.2f}  {r['sent']:>4}  {r['qmib']}/{r['dmib']}")
for key, label in [("reuse", "smtp-source reuse (-d)"), ("fresh", "smtp-source fresh"), ("queue", "tidings queue"),
                   ("deliver", "tidings deliver"), ("e2e", "tidings end to end")]:
    print(f"median {label:<24} {med(key):>8,.0f} msg/s  ({span(key)})")
ratios = [r["deliver"] / r["reuse"] for r in rows]
fresh = [r["deliver"] / r["fresh"] for r in rows]
print(f"median of per-round deliver / smtp-source reuse: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
print(f"median of per-round deliver / smtp-source fresh: {statistics.median(fresh):.2f} ({min(fresh):.2f}-{max(fresh):.2f})")
PY
