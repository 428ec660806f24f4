# Developer shortcuts; CI runs .ci/run.

# Formatting, lints and docs, as CI checks them.
check:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items

# Every test, on SQLite and PostgreSQL (installs and starts what they need).
test:
    scripts/test.sh

# Run the daemon on the built-in defaults.
serve:
    cargo run --release -- serve
