#!/usr/bin/env bash
# Installs what is needed, type-checks, and runs every test: unit, store (SQLite and PostgreSQL),
# frontend, Docker integration, end-to-end and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
export RECOVERY_PRIMARY_DOCKER_HOST=${RECOVERY_PRIMARY_DOCKER_HOST:-unix:///run/recovery-docker/primary.sock}
export RECOVERY_HOST_DOCKER_HOST=${RECOVERY_HOST_DOCKER_HOST:-unix:///run/recovery-docker/recovery.sock}
export VITE_CONFIG_NATIVE_IGNORE_WARNING=true
echo "test: type check"
npx tsc --noEmit
npm test
