# shellcheck shell=bash
# Sourced by scripts/lab.sh and the benchmark scripts from the checkout's top: takes the lab's run lock
# (analysis/vnflab/run/runlock.py) on descriptor 9 and keeps it until the sourcing script ends; every ansible-playbook
# it starts inherits it. Another run at once (site.yml, lab.sh, the e2e or Molecule suites) is refused, and this
# one is refused (exit 75) while another holds it, naming that run. $run_lock_name prefixes the message.
lock=${VNFLAB_RUN_LOCK:-/run/lock/vnflab-run.lock}
mkdir -p "$(dirname "$lock")"
exec 9>>"$lock"
if ! flock -n 9; then
  echo "${run_lock_name:-vnflab}: $(VNFLAB_RUN_LOCK=$lock python3 analysis/vnflab/run/runlock.py describe)" >&2
  exit 75
fi
