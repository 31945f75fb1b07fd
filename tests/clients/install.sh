#!/bin/sh
# Installs the pinned MCP clients that `make test-clients` drives into
# .cache/clients (ignored by git), one package at a time, so one that cannot
# be installed is skipped with a line saying so; under CI=true it fails.
set -u
cd "$(dirname "$0")/../.."
dir=.cache/clients
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"private": true}' > "$dir/package.json"
status=0
for spec in "$@"; do
  name=${spec%@*}
  version=${spec##*@}
  have=$(node -p "require('./$dir/node_modules/$name/package.json').version" 2>/dev/null || true)
  if [ "$have" = "$version" ]; then
    echo "$name $version: installed"
    continue
  fi
  if npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --save-exact "$spec"; then
    echo "$name $version: installed now"
  elif [ "${CI:-}" = "true" ]; then
    echo "$name $version: npm install failed" >&2
    status=1
  else
    echo "skipping $name: npm install $spec failed; its test will be skipped" >&2
  fi
done
exit $status
