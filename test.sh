#!/usr/bin/env bash
# Set up everything the tests need (Chromium + CJK fonts from Debian, a venv with the test extras) and run pytest.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null \
    || echo "warning: could not install ${need[*]}; browser tests will be skipped" >&2
fi

[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
# constraints.txt pins torch to the CPU build (sentence-transformers is a test extra).
python -m pip install -q -c constraints.txt -e '.[test]'
python -m pytest -q "$@"
