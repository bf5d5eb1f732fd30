#!/usr/bin/env bash
# The README's test command: installs what the tests need, runs the static checks (ruff, mypy --strict)
# on the package, then every test (unit, integration as root, e2e with crictl and critest). Extra
# arguments go to pytest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/env.sh"

if [[ $(id -u) != 0 ]]; then
  echo "test: integration and e2e tests need root (namespaces, mounts, cgroups); run as root" >&2
  exit 1
fi
"$here/install.sh"
export PATH="$PYCRID_CACHE/bin:$PATH"
cd "$top"
# Static checks first, both reported before failing: a new lint or type error fails the run in
# seconds, before the slow tests. Their configuration (and the excluded generated stubs) is in
# pyproject.toml; mypy keeps its cache in the checkout (.mypy_cache), which keeps reruns fast.
venv="$PYCRID_CACHE/venv"
checked=(cri runtime metrics)
failed=()
"$venv/bin/ruff" check "${checked[@]}" || failed+=(ruff)
"$venv/bin/mypy" "${checked[@]}" || failed+=(mypy)
if ((${#failed[@]})); then
  echo "test: static checks failed: ${failed[*]} (output above)" >&2
  exit 1
fi
exec "$venv/bin/python" -m pytest tests "$@"
