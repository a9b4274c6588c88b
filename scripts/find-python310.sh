#!/usr/bin/env bash
# Prints the path of a real Python 3.10 interpreter, or explains what to install.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }
candidates=()
[ -n "${PYTHON310:-}" ] && candidates+=("$PYTHON310")
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for d in "$root"/versions/3.10*; do [ -x "$d/bin/python3.10" ] && candidates+=("$d/bin/python3.10"); done
fi
for d in "$HOME"/.pyenv/versions/3.10*; do [ -x "$d/bin/python3.10" ] && candidates+=("$d/bin/python3.10"); done
candidates+=(python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10)
for c in "${candidates[@]}"; do
  if ok "$c"; then command -v "$c" 2>/dev/null || echo "$c"; exit 0; fi
done
echo "Python 3.10 is required (Rasa 3.6.21 supports 3.8-3.10) and none was found." >&2
echo "Install it with 'pyenv install 3.10.13', or 'apt-get install python3.10 python3.10-venv'," >&2
echo "or point PYTHON310=/path/to/python3.10 at one." >&2
exit 1
