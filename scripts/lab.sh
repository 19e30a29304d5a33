#!/usr/bin/env bash
# The main job: install everything, stand up the local lab, measure every metric, write the report,
# tear the lab down again. Extra arguments go to ansible-playbook, e.g.
#   scripts/lab.sh -e vnflab_profile=quick
#   VNFLAB_KEEP_LAB=1 scripts/lab.sh          # leave the lab up for inspection
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# The run lock, held on descriptor 9 from before the install until the teardown has ended.
# shellcheck source=scripts/run-lock.sh
source scripts/run-lock.sh
bash scripts/install.sh
# shellcheck disable=SC1091
source .venv/bin/activate
# The teardown gets the user's inventory too (-i/--inventory), never their tags: without it, a run against
# inventory/example-real would tear down the local lab instead.
inventory=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    -i|--inventory|--inventory-file) inventory+=("${args[$i]}" "${args[$((i + 1))]:-}"); i=$((i + 1)) ;;
    -i?*|--inventory=*|--inventory-file=*) inventory+=("${args[$i]}") ;;
  esac
done
status=0
ansible-playbook site.yml "$@" || status=$?
if [ "${VNFLAB_KEEP_LAB:-0}" != "1" ]; then
  ansible-playbook site.yml ${inventory[@]+"${inventory[@]}"} --tags teardown || status=$?
fi
latest=$(ls -1d results/*/ 2>/dev/null | tail -n 1 || true)  # no results/ yet: ls fails, pipefail
if [ -n "$latest" ] && [ -f "${latest}report.md" ]; then
  echo "vnflab: report at ${latest}report.md"
elif [ -n "$latest" ]; then
  echo "vnflab: no report in ${latest} (the run ended before its report play); rebuild it from what was measured:" \
    ".venv/bin/vnflab report ${latest}" >&2
fi
exit "$status"
