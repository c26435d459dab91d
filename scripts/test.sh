#!/usr/bin/env bash
# Installs what is needed, type-checks, and runs every test: unit, store (SQLite and PostgreSQL),
# frontend, Docker integration, end-to-end and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Docker engines the tests need: started here if none was up, and stopped again at the end
# (engines someone else started, for the demo say, are left alone).
down=()
for e in primary recovery; do bash scripts/docker-engines.sh status "$e" >/dev/null 2>&1 || down+=("$e"); done
if ((${#down[@]} > 0)); then
  trap 'bash scripts/docker-engines.sh stop "${down[@]}"' EXIT
fi
bash scripts/setup.sh --tests
export RECOVERY_PRIMARY_DOCKER_HOST=${RECOVERY_PRIMARY_DOCKER_HOST:-unix:///run/recovery-docker/primary.sock}
export RECOVERY_HOST_DOCKER_HOST=${RECOVERY_HOST_DOCKER_HOST:-unix:///run/recovery-docker/recovery.sock}
# An engine started here serves these tests alone, but keeps its data root from one start to the
# next: labs an interrupted earlier test run left on the recovery engine (its runs' label) would
# hold the subnets these tests restore production's machines on.
if [[ " ${down[*]-} " == *" recovery "* ]]; then
  lab=label=recovery.backstage-recovery.io/run-id
  host=(docker -H "$RECOVERY_HOST_DOCKER_HOST")
  containers=$("${host[@]}" ps -aq --filter "$lab")
  networks=$("${host[@]}" network ls -q --filter "$lab")
  [[ -z $containers ]] || "${host[@]}" rm -f -v $containers >/dev/null
  for n in $networks; do
    # An endpoint can outlive its container (an engine stopped mid-teardown): forced off first.
    for ep in $("${host[@]}" network inspect -f '{{range .Containers}}{{.Name}} {{end}}' "$n" 2>/dev/null); do
      "${host[@]}" network disconnect -f "$n" "$ep" >/dev/null 2>&1 || true
    done
    "${host[@]}" network rm "$n" >/dev/null || echo "test: warning: could not remove network $n from the recovery engine"
  done
  [[ -z $containers$networks ]] ||
    echo "test: removed what an earlier test run left on the recovery engine: $(wc -w <<<"$containers") containers, $(wc -w <<<"$networks") networks"
fi
export VITE_CONFIG_NATIVE_IGNORE_WARNING=true
echo "test: type check"
npx tsc --noEmit
echo "test: format check (npm run format fixes it)"
npm run -s format:check
echo "test: lint"
npm run -s lint
npm test
