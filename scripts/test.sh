#!/usr/bin/env bash
# Run the whole test suite on this machine, setting up what it needs first:
# Debian's PostgreSQL, feed consumers (feedparser, newsboat, jing, xmllint),
# SMTP servers (aiosmtpd; Postfix for smtp-sink/smtp-source), Chromium, and
# PyYAML and systemd-analyze for the deploy files; then PostgreSQL is started
# and every test runs on SQLite and on PostgreSQL. Needs root (or sudo) for
# apt-get on a fresh box.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(postgresql python3-feedparser python3-aiosmtpd python3-prometheus-client jing newsboat libxml2-utils postfix chromium chromium-driver python3-yaml systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  # Postfix asks how to configure itself; the tests only need smtp-sink.
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL: start the cluster if it is not running, and give the postgres
# role a password so TCP logins work whatever pg_hba.conf asks for.
version=$(ls /etc/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
runuser -u postgres -- psql -q -c "ALTER ROLE postgres PASSWORD 'postgres'" >/dev/null
export TIDINGS_TEST_PG="postgres://postgres:postgres@127.0.0.1:5432/postgres"

cargo test --locked --all-targets "$@"
