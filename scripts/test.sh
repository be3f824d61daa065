#!/usr/bin/env bash
# The Kraftwerk test command. On a fresh Debian machine (as root, or with sudo) it installs what the
# tests need when it is missing, checks formatting and clippy lints, builds every binary, runs every Rust
# test (unit + integration, which start real kraftwerk processes) and the Python client suites. Exits non-zero
# if anything fails.
#
# Environment: SKIP_PYTHON=1 skips the Python suites; CARGO_TEST_ARGS are passed to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
START=$SECONDS

step() { printf '\n==> %s (t=%ss)\n' "$*" "$((SECONDS - START))"; }

# --- 1. System packages (only the missing ones) --------------------------------------------------
# kcat: the kcat integration test. C toolchain, make, perl, pkg-config: rdkafka-sys builds librdkafka
# from source with its configure script (zlib and zstd come from crates, snappy/lz4 are bundled), and
# libssl-dev for its SSL/SASL_SSL support.
# python3-venv: Debian splits venv/ensurepip out of python3. strace and ss (iproute2): config_honoured watches
# the broker's fsyncs and its sockets' buffer sizes.
step "checking system packages"
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v perl >/dev/null 2>&1 || missing+=(perl)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# libssl-dev: rdkafka's `ssl` feature links the system OpenSSL (openssl-sys finds it with pkg-config).
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        SUDO=sudo
    fi
    echo "installing: ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "all present"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust >= 1.85) is required: https://rustup.rs" >&2; exit 1; }
# rustfmt and clippy: the checks below; rustup installs them where they are missing.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || { echo "cargo fmt and cargo clippy are required (rustup component add rustfmt clippy)" >&2; exit 1; }
    rustup component add rustfmt clippy
fi

# --- 2. Python venv for the client suites (cached: reinstalled only when requirements change) -------
VENV=tests/python/.venv
REQS=tests/python/requirements.txt
if [[ ${SKIP_PYTHON:-0} != 1 ]]; then
    step "python venv"
    if [[ ! -x $VENV/bin/python ]]; then
        python3 -m venv "$VENV"
    fi
    if ! cmp -s "$REQS" "$VENV/.installed-requirements.txt" \
        || ! "$VENV/bin/python" -c 'import confluent_kafka, kafka, pytest' >/dev/null 2>&1; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
        cp "$REQS" "$VENV/.installed-requirements.txt"
    else
        echo "cached"
    fi
fi

# --- 2b. Formatting and lints (a warning fails the run, as it fails a commit) ------------------------
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# --- 3. Build every binary (the integration tests run target/debug/kraftwerk) -----------------------
step "cargo build --workspace --bins"
cargo build --workspace --bins
export KRAFTWERK_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/kraftwerk"

# --- 4. Tests: run every suite even if an earlier one fails, then report ----------------------------
failed=()
step "cargo test --workspace"
# shellcheck disable=SC2086 # CARGO_TEST_ARGS is a list of words on purpose
cargo test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-} || failed+=("cargo test")

if [[ ${SKIP_PYTHON:-0} != 1 ]]; then
    step "pytest tests/python"
    "$VENV/bin/python" -m pytest -p no:cacheprovider -q -rs tests/python || failed+=("pytest")
fi

step "JVM and Go client suites"
scripts/test-jvm-go.sh || failed+=("jvm/go suites")

step "done"
if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all test suites passed in $((SECONDS - START))s"
