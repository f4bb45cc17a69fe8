#!/usr/bin/env bash
# Set up a fresh machine for stm32-fota; safe to run again (each step is skipped when already done).
#
#   bash scripts/setup.sh
#
# 1. system tools: the ARM toolchain (gcc-arm-none-eabi, libnewlib-arm-none-eabi), make, the host
#    gcc (C unit tests), python3-venv, PostgreSQL (the registry tests start one) and, when
#    package.json exists, Node.js and npm. Missing ones
#    are installed with apt-get on Debian/Ubuntu as root (or through passwordless sudo); otherwise
#    the script names what to install and exits with status 1;
# 2. the Python virtual environment .venv with `pip install -e '.[dev]'` (again only when
#    pyproject.toml changed since the last run);
# 2b. Monocypher's C sources into build/third_party (scripts/fetch_monocypher.py; skipped when there);
# 3. `npm install` when package.json exists (again only when package.json or its lock changed).
#
# Environment: PYTHON (default python3) picks the interpreter for the virtual environment.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
ARM_FLAGS=(-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
NODE_MIN=20   # the virtual ESP32 (MicroPython WebAssembly under Node) is tested with Node 20

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# --- 1. system tools -------------------------------------------------------------------------
missing=()
have() { command -v "$1" >/dev/null 2>&1; }

have arm-none-eabi-gcc || missing+=(gcc-arm-none-eabi)
# newlib: gcc prints the bare file name when libc.a is not in any of its library directories.
if ! have arm-none-eabi-gcc || [[ "$(arm-none-eabi-gcc "${ARM_FLAGS[@]}" -print-file-name=libc.a)" != /* ]]; then
    missing+=(libnewlib-arm-none-eabi)
fi
have make || missing+=(make)
# PostgreSQL server binaries: the registry tests run on SQLite and on a PostgreSQL they start
# themselves (tests/support/fota_testkit/postgres.py); Debian keeps initdb off PATH.
if ! have initdb && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi
have runuser || [[ $(id -u) -ne 0 ]] || missing+=(util-linux)
have gcc || missing+=(gcc)
have "$PYTHON" || missing+=(python3)
if have "$PYTHON" && [[ ! -x .venv/bin/python ]] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
fi
# the web console's browser tests (tests/console): Debian's Chromium and its chromedriver
have chromium || missing+=(chromium)
have chromedriver || missing+=(chromium-driver)
if [[ -f package.json ]]; then
    have node || missing+=(nodejs)
    have npm || missing+=(npm)
fi

if ((${#missing[@]})); then
    install_cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    if [[ ! -r /etc/debian_version ]] || ! have apt-get; then
        die "missing: ${missing[*]}. This is not a Debian/Ubuntu system: install the equivalent packages \
with your package manager (the ARM GNU toolchain arm-none-eabi-gcc with newlib, make, gcc, PostgreSQL, Python >= 3.11 \
with venv, Node.js >= 20 and npm), then run this script again."
    fi
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        die "missing: ${missing[*]}. Install them as root, then run this script again:
    sudo apt-get update && sudo ${install_cmd}"
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    "${sudo[@]}" ${install_cmd}
else
    say "system tools present (arm-none-eabi-gcc $(arm-none-eabi-gcc -dumpversion), newlib, make, gcc)"
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is $("$PYTHON" --version 2>&1); stm32-fota needs Python >= 3.11 (set PYTHON=python3.11 or newer)"

# --- 2. Python virtual environment -------------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.setup-pyproject.sha256
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]] || ! .venv/bin/python -c 'import stm32_fota' 2>/dev/null; then
    say "installing the Python packages (pip install -e '.[dev]')"
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    echo "$want" >"$stamp"
else
    say "Python packages up to date (.venv)"
fi

# --- 2b. third-party C sources: Monocypher for the Ed25519 verifier (pinned, SHA-256 checked) --
.venv/bin/python scripts/fetch_monocypher.py

# --- 3. Node packages --------------------------------------------------------------------------
if [[ -f package.json ]]; then
    node_major="$(node -p 'process.versions.node.split(".")[0]')"
    if ((node_major < NODE_MIN)); then
        say "warning: Node.js $(node --version) is older than the tested ${NODE_MIN}.x; the virtual ESP32 may not run"
    fi
    stamp=node_modules/.setup-package.sha256
    node_hash() { { cat package.json; [[ ! -f package-lock.json ]] || cat package-lock.json; } | sha256sum | cut -d' ' -f1; }
    if [[ ! -f $stamp || "$(cat "$stamp")" != "$(node_hash)" ]]; then
        say "installing the Node packages (npm install)"
        npm install --no-audit --no-fund --loglevel=error
        node_hash >"$stamp"   # after the install: it may write package-lock.json
    else
        say "Node packages up to date (node_modules)"
    fi
fi

say "done: run \`.venv/bin/invoke build\` to build the firmware, \`.venv/bin/invoke --list\` for more"
