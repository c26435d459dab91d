#!/usr/bin/env bash
# Installs what is needed and starts the demo: the two Docker engines, the demo site's primary
# machines on the primary engine, then Backstage (UI on :3000, backend on :7007, SQLite), and
# says "demo: ready" once both answer. Backstage runs in watch mode (backstage-cli repo start):
# editing a file of the repository restarts its backend, which interrupts a run in progress.
# The backend captures the demo machines about 20 s after it starts, then hourly.
# Ctrl-C (or SIGTERM) stops Backstage (its shutdown fails and tears down a test recovery in
# progress), removes the demo machines and stops the engines this script started; captures and
# the database stay.
set -euo pipefail
cd "$(dirname "$0")/.."
# Another Backstage on the demo's ports (an earlier demo left running) would answer the ready
# check below in this one's place, while this one fails on EADDRINUSE; checked
# before anything is started, so that stopping here touches nothing of the other.
for port in 7007 3000; do
  if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    exec 3<&-
    echo "demo: port $port is in use (an earlier demo or another Backstage still running?): stop it first; ss -ltnp 'sport = :$port' names it" >&2
    exit 1
  fi
done

down=()
for e in primary recovery; do bash scripts/docker-engines.sh status "$e" >/dev/null 2>&1 || down+=("$e"); done

app=
watcher=
stop_demo() {
  trap - EXIT INT TERM
  # Ifs, not &&: under set -e a false test here would end the script before it stops anything.
  if [[ -n $watcher ]]; then kill "$watcher" 2>/dev/null || true; fi
  echo "demo: stopping"
  # Backstage runs in a session of its own (setsid below): stop all of it, and wait for the
  # whole session (the backend tears a test lab down after npm itself has exited), up to 60 s.
  if [[ -n $app ]] && kill -TERM -- "-$app" 2>/dev/null; then
    wait "$app" 2>/dev/null || true
    for ((i = 0; i < 120; i++)); do kill -0 -- "-$app" 2>/dev/null || break; sleep 0.5; done
  fi
  if [[ -d node_modules ]]; then npx node -r @backstage/cli/config/nodeTransform.cjs demo/cli.ts down || true; fi
  if ((${#down[@]} > 0)); then bash scripts/docker-engines.sh stop "${down[@]}" || true; fi
}
# Set before the engines start, so a failed set-up stops those it started.
trap stop_demo EXIT
trap 'exit 130' INT TERM

bash scripts/setup.sh
export RECOVERY_DATA_DIR=${RECOVERY_DATA_DIR:-/var/lib/backstage-recovery}
mkdir -p "$RECOVERY_DATA_DIR/sqlite" "$RECOVERY_DATA_DIR/captures"
# The database holds each captured machine's configuration, environment secrets included: only
# root reads it, as the capture store's own files.
chmod 700 "$RECOVERY_DATA_DIR" "$RECOVERY_DATA_DIR/sqlite"

# The demo's machines go to the engine scripts/docker-engines.sh started (RECOVERY_DOCKER_RUN_DIR
# moves it, and app-config.yaml follows).
export RECOVERY_PRIMARY_DOCKER_HOST=${RECOVERY_PRIMARY_DOCKER_HOST:-unix://${RECOVERY_DOCKER_RUN_DIR:-/run/recovery-docker}/primary.sock}
npx node -r @backstage/cli/config/nodeTransform.cjs demo/cli.ts up
echo "demo: starting Backstage on http://localhost:3000 (backend :7007); Ctrl-C stops the demo"
# Its own session, so one signal stops every process it starts; stdin from /dev/null, since
# backstage-cli reads the terminal (a restart key) and a background reader would be stopped.
setsid npm start </dev/null &
app=$!

# Whether http://HOST:PORT/PATH answers 200, asked with bash alone (a fresh machine may have no
# curl); with TOKEN, sent as a bearer token; with TEXT, only if the answer contains it.
answers() {
  local status body= auth=
  { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
  if [[ -n ${4:-} ]]; then auth="Authorization: Bearer $4"$'\r\n'; fi
  printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\nAccept: text/html\r\n%s\r\n' "$3" "$1" "$2" "$auth" >&3 2>/dev/null
  # The app's dev server holds its answer until the bundle is built.
  IFS=' ' read -r -t 30 _ status _ <&3 || status=
  # HTTP/1.0: the answer ends where the connection does.
  if [[ -n ${5:-} && $status == 200 ]]; then IFS= read -r -d '' -t 30 body <&3 || true; fi
  exec 3<&-
  [[ $status == 200 && $body == *"${5:-}"* ]]
}
# The backend where it listens (loopback, unless RECOVERY_LISTEN_HOST says otherwise), the UI on
# localhost:3000: the ready line once both answer, for up to 15 min (a first build takes minutes).
# The backend is ready before its catalog has read catalog-info.yaml (its readiness list empty for
# a second or so): the line waits until that list, which it tells the CLI to read, names web.
token=${RECOVERY_TOKEN:-demo-recovery-cli}
backend_host=${RECOVERY_LISTEN_HOST:-127.0.0.1}
[[ $backend_host == 0.0.0.0 || $backend_host == :: ]] && backend_host=127.0.0.1
[[ $backend_host == *:* ]] && backend_url="http://[$backend_host]:7007" || backend_url="http://$backend_host:7007"
(
  deadline=$((SECONDS + 900))
  until answers "$backend_host" 7007 /.backstage/health/v1/readiness &&
    answers "$backend_host" 7007 /api/recovery/readiness "$token" '"component:default/web"' &&
    answers localhost 3000 /; do
    kill -0 "$app" 2>/dev/null || exit 0
    if ((SECONDS >= deadline)); then
      echo "demo: Backstage is not up after 15 min (backend $backend_url, UI http://localhost:3000): see its output above"
      exit 0
    fi
    sleep 2
  done
  echo "demo: ready — http://localhost:3000 (backend $backend_url); the CLI: export RECOVERY_TOKEN=demo-recovery-cli; npx recovery readiness"
) &
watcher=$!
wait "$app"
