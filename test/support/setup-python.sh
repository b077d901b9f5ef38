#!/usr/bin/env bash
# Installs the Python side of the test suite under the git-ignored .venv:
#   .venv             the official Python clients the conformance tests drive (requirements.txt)
#   .venv/fakesnow    the Snowflake emulator (requirements-fakesnow.txt)
#   .venv/bqemulator  the BigQuery emulator (requirements-bqemulator.txt)
#   .venv/helm        the Helm engine (helm-python-sdk) and kubernetes-validate for the chart tests
#                     (requirements-helm.txt)
#   .venv/connector3  the older client generation: snowflake-connector-python 3.x, Snowpark and
#                     mcp-snowflake-server, which pin the connector below 4 (requirements-connector3.txt)
# Separate environments because their pins cannot share one: fakesnow needs sqlglot~=30.22 and
# bqemulator <30.12, fakesnow imports a module snowflake-connector-python 5.x dropped, and
# Snowpark needs a 3.x connector beside the 5.x one the other tests drive.
# The emulators' commands are linked into .venv/bin. Each environment is rebuilt only when its
# requirements file changed (its hash is remembered), so a second run takes no time.
set -euo pipefail
cd "$(dirname "$0")/../.."

install () { # install <venv dir> <requirements file>
  local venv=$1 requirements=$2
  local stamp=$venv/.requirements.sha256
  local want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "setting up $venv from $requirements"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
}

install .venv test/support/requirements.txt
install .venv/fakesnow test/support/requirements-fakesnow.txt
install .venv/bqemulator test/support/requirements-bqemulator.txt
# The property-based conformance runs (test/conformance), in a venv of their own: schemathesis
# pins hypothesis, requests and jsonschema versions the driver environments need not share.
install .venv/schemathesis test/support/requirements-schemathesis.txt
install .venv/connector3 test/support/requirements-connector3.txt
install .venv/helm test/support/requirements-helm.txt
ln -sf ../fakesnow/bin/fakesnow .venv/bin/fakesnow
ln -sf ../bqemulator/bin/bqemulator .venv/bin/bqemulator
