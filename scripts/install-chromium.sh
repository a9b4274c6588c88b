#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the dashboard's browser tests, if missing.
# Needs root (or sudo) and the Debian package mirror; does nothing when both are already there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install chromium and its chromedriver yourself" >&2
  echo "  (the browser tests look for CHROMIUM=/usr/bin/chromium, CHROMEDRIVER=/usr/bin/chromedriver)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "install-chromium: installing Debian's chromium and chromium-driver"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver fonts-noto-core >/dev/null
chromium --version
