#!/usr/bin/env bash
# Installs the Python side of the test suite into .venv (git-ignored): the warehouse emulators
# (fakesnow, bqemulator) and the official Python clients the conformance tests drive.
# bqemulator gets a venv of its own (.venv/bqemulator; its sqlglot pin conflicts with
# fakesnow's), and its command is linked to .venv/bin/bqemulator beside the others.
# Idempotent and quick when nothing changed: the requirements files' hash is remembered.
set -euo pipefail
cd "$(dirname "$0")/../.."
requirements=test/support/requirements.txt
bq_requirements=test/support/requirements-bqemulator.txt
stamp=.venv/.requirements.sha256
want=$(cat "$requirements" "$bq_requirements" | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
python3 -m venv .venv/bqemulator
.venv/bqemulator/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bqemulator/bin/python -m pip install --quiet --disable-pip-version-check -r "$bq_requirements"
ln -sf ../bqemulator/bin/bqemulator .venv/bin/bqemulator
echo "$want" > "$stamp"
