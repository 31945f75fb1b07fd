#!/bin/sh
# The file-length rule: no .rs file in the repository over 500 lines, tests
# included. Prints each file over the limit and exits 1 if there is one.
set -u
cd "$(dirname "$0")/.."
limit=${LINES_LIMIT:-500}
over=$(git ls-files --cached --others --exclude-standard -- '*.rs' |
  while IFS= read -r f; do
    [ -f "$f" ] || continue
    n=$(wc -l <"$f")
    [ "$n" -gt "$limit" ] && printf '%6d %s\n' "$n" "$f"
  done)
if [ -n "$over" ]; then
  echo "files over $limit lines (split them into modules):"
  echo "$over"
  exit 1
fi
echo "every .rs file is within $limit lines"
