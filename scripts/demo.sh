#!/usr/bin/env bash
# Installs what is needed and starts the demo: the two Docker engines, the demo site's primary
# machines on the primary engine, then Backstage (UI on :3000, backend on :7007, SQLite).
# The backend captures the demo machines about 20 s after it starts, then hourly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RECOVERY_DATA_DIR=${RECOVERY_DATA_DIR:-/var/lib/backstage-recovery}
mkdir -p "$RECOVERY_DATA_DIR/sqlite" "$RECOVERY_DATA_DIR/captures"
npx node -r @backstage/cli/config/nodeTransform.cjs demo/cli.ts up
echo "demo: starting Backstage on http://localhost:3000 (backend :7007)"
exec npm start
