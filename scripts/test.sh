#!/usr/bin/env bash
# Run the whole test suite on this machine, setting up what it needs first.
#
# What it changes on the machine, and only when it is missing:
# - installs Debian's packages listed below with apt-get (root or sudo);
# - starts the local PostgreSQL cluster if none is online (root or sudo);
# - gives the `postgres` role the password `postgres`, so the tests can log in
#   over TCP whatever pg_hba.conf asks (root or sudo; skipped when that login
#   already works, or when TIDINGS_TEST_PG names another server).
# After the first run an ordinary user with the packages installed and the
# cluster running needs none of these steps.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(postgresql python3-feedparser python3-aiosmtpd python3-prometheus-client jing newsboat libxml2-utils postfix chromium chromium-driver python3-yaml systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  # Postfix asks how to configure itself; the tests only need smtp-sink.
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -z "${TIDINGS_TEST_PG:-}" ]; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  if ! PGPASSWORD=postgres psql -q -h 127.0.0.1 -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
    echo "setting the password of PostgreSQL's postgres role to 'postgres' for the tests"
    as_root runuser -u postgres -- psql -q -c "ALTER ROLE postgres PASSWORD 'postgres'" >/dev/null
  fi
  export TIDINGS_TEST_PG="postgres://postgres:postgres@127.0.0.1:5432/postgres"
fi

# axe-core (accessibility checks in the browser tests), from the npm registry
# into a git-ignored folder.
if [ ! -f tests/.npm/node_modules/axe-core/axe.min.js ]; then
  npm install --prefix tests/.npm --no-audit --no-fund axe-core@4 >/dev/null
fi

# standardwebhooks, the reference implementation of the Standard Webhooks
# spec, checks the signatures of webhook posts (tests/it/channels.rs): from
# PyPI into a git-ignored folder.
if [ ! -d tests/.pip/standardwebhooks ]; then
  python3 -m pip install --quiet --target tests/.pip standardwebhooks >/dev/null
fi

# Tests that need PostgreSQL alone are #[ignore]d, so a plain `cargo test`
# reports them as ignored; here PostgreSQL is set up, so they run too.
args=("$@")
case " ${args[*]} " in
  *" -- "*) args+=(--include-ignored) ;;
  *) args+=(-- --include-ignored) ;;
esac
cargo test --locked --all-targets "${args[@]}"
