#!/usr/bin/env bash
# The Streamify load test from one command (see docs/performance.md, "Load tests (locust)"):
#   loadtest/run.sh                         start a mesh on free ports, 30 users for 60 s, report
#   loadtest/run.sh --gateway 127.0.0.1:8080 --data-dir .streamify    against a running mesh
#   loadtest/run.sh --chaos                 kill a Metadata + an Upload replica and a worker mid-run
# It stops by itself; exit 0 only with no failed request and no lost upload. `--help` for options.
# The services' .venv comes from ./streamify's bootstrap; locust gets its own loadtest/.venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/streamify" config >/dev/null   # creates/updates .venv from requirements.lock if needed
exec "$root/.venv/bin/python" "$root/loadtest/run.py" "$@"
