#!/usr/bin/env bash
# Benchmark (not a test): per VNF server, the time to start N instances together through the driver against
# the same starts one after the other, and their ratio (issue 19: at most 0.6 for Docker and QEMU).
# Writes bench/concurrency-<server>.json; extra arguments go to ansible-playbook.
#   scripts/bench-concurrency.sh                                   # N = 32 (capped by vnflab_max_instances)
#   scripts/bench-concurrency.sh -e bench_concurrency_count=8 -e '{"vnflab_platforms": ["docker", "kvm"]}'
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# The run lock, held for every playbook of the benchmark, as scripts/lab.sh does.
run_lock_name=bench-concurrency
# shellcheck source=scripts/run-lock.sh
source scripts/run-lock.sh
bash scripts/install.sh >/dev/null
mkdir -p bench
status=0
.venv/bin/ansible-playbook playbooks/bench-concurrency.yml "$@" || status=$?
.venv/bin/ansible-playbook site.yml --tags teardown >/dev/null || status=$?
for f in bench/concurrency-*.json; do
  [ -e "$f" ] || continue
  .venv/bin/python - "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r.get('label')}: N={r.get('count')} together {r.get('concurrent_s')} s, one by one {r.get('sequential_s')} s,"
      f" ratio {r.get('ratio')} (max_parallel {r.get('max_parallel')})")
PY
done
exit "$status"
