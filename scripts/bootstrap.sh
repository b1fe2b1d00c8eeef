#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian/Ubuntu machine; cheap to re-run.
#   scripts/bootstrap.sh            ODBC drivers, Node.js, virtualenv + pip packages, Azurite
#   scripts/bootstrap.sh --server   also the PostgreSQL server (the tests make throwaway clusters) and
#                                   Chromium (the monitoring pages' browser tests, headless)
set -euo pipefail
cd "$(dirname "$0")/.."

want_server=0
[ "${1:-}" = "--server" ] && want_server=1

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- system packages (apt) -------------------------------------------------------------------
packages=(unixodbc libsqliteodbc odbc-postgresql)
[ "$want_server" = 1 ] && packages+=(postgresql chromium)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "Missing system packages: ${missing[*]}" >&2
    echo "Install them as root:  sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
for driver in SQLite3 "PostgreSQL Unicode"; do
  odbcinst -q -d -n "$driver" >/dev/null 2>&1 || { echo "ODBC driver '$driver' is not registered (odbcinst -q -d)" >&2; exit 1; }
done

# --- Python virtualenv -----------------------------------------------------------------------
python=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    python=$candidate; break
  fi
done
[ -n "$python" ] || { echo "Python 3.11 or newer is required (apt-get install python3 python3-venv)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($python --version)"
  "$python" -m venv .venv || { echo "python venv failed: apt-get install python3-venv" >&2; exit 1; }
fi
stamp=.venv/.requirements.sha256
digest=$(cat requirements.txt functions/requirements.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  say "pip install -r requirements.txt"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$digest" > "$stamp"
fi

# --- Checkov in its own virtualenv (requirements-checkov.txt says why) ----------------------
stamp=.venv-checkov/.requirements.sha256
digest=$(sha256sum requirements-checkov.txt | cut -d' ' -f1)
if [ ! -x .venv-checkov/bin/checkov ] || [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  say "pip install -r requirements-checkov.txt (.venv-checkov)"
  [ -x .venv-checkov/bin/python ] || "$python" -m venv .venv-checkov
  .venv-checkov/bin/python -m pip install -q --upgrade pip
  .venv-checkov/bin/python -m pip install -q -r requirements-checkov.txt
  echo "$digest" > "$stamp"
fi

# --- Azurite (pinned in package-lock.json) ---------------------------------------------------
lock_digest=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/azurite ] || [ "$(cat node_modules/.lock.sha256 2>/dev/null)" != "$lock_digest" ]; then
  say "npm ci (Azurite)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_digest" > node_modules/.lock.sha256
fi
