#!/usr/bin/env bash
# Installs what is needed and starts the demo: the two Docker engines, the demo site's primary
# machines on the primary engine, then Backstage (UI on :3000, backend on :7007, SQLite).
# The backend captures the demo machines about 20 s after it starts, then hourly.
# Ctrl-C (or SIGTERM) stops Backstage (its shutdown fails and tears down a test recovery in
# progress), removes the demo machines and stops the engines this script started; captures and
# the database stay.
set -euo pipefail
cd "$(dirname "$0")/.."
down=()
for e in primary recovery; do bash scripts/docker-engines.sh status "$e" >/dev/null 2>&1 || down+=("$e"); done

app=
stop_demo() {
  trap - EXIT INT TERM
  echo "demo: stopping"
  # Backstage runs in a session of its own (setsid below): stop all of it, and wait for the
  # whole session (the backend tears a test lab down after npm itself has exited), up to 60 s.
  if [[ -n $app ]] && kill -TERM -- "-$app" 2>/dev/null; then
    wait "$app" 2>/dev/null || true
    for ((i = 0; i < 120; i++)); do kill -0 -- "-$app" 2>/dev/null || break; sleep 0.5; done
  fi
  [[ -d node_modules ]] && { npx node -r @backstage/cli/config/nodeTransform.cjs demo/cli.ts down || true; }
  ((${#down[@]} == 0)) || bash scripts/docker-engines.sh stop "${down[@]}"
}
# Set before the engines start, so a failed set-up stops those it started.
trap stop_demo EXIT
trap 'exit 130' INT TERM

bash scripts/setup.sh
export RECOVERY_DATA_DIR=${RECOVERY_DATA_DIR:-/var/lib/backstage-recovery}
mkdir -p "$RECOVERY_DATA_DIR/sqlite" "$RECOVERY_DATA_DIR/captures"

npx node -r @backstage/cli/config/nodeTransform.cjs demo/cli.ts up
echo "demo: starting Backstage on http://localhost:3000 (backend :7007); Ctrl-C stops the demo"
# Its own session, so one signal stops every process it starts; stdin from /dev/null, since
# backstage-cli reads the terminal (a restart key) and a background reader would be stopped.
setsid npm start </dev/null &
app=$!
wait "$app"
