#!/usr/bin/env bash
# The README's test command: installs what the tests need, runs the static checks (ruff, mypy --strict)
# on the package, then every test (unit, integration as root, e2e with crictl and critest) and, on a
# cgroup v1 machine, the v2 pass in hack/vm's guest. Extra arguments go to pytest.
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
mkdir -p _out
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  echo "test: this machine runs cgroup v2 (the unified hierarchy): one pass, on v2" >&2
  exec "$venv/bin/python" -m pytest tests "$@"
fi

# On cgroup v1 the root suites run twice: here, then in hack/vm's guest booted on cgroup v2
# ($PYCRID_V2_TESTS, by default the integration, e2e (with critest) and cluster suites; the unit tests
# use no kernel, the standalone kubelet's suite, whose kubelet the cluster's runs again, and the chaos
# run stay here for time). Both tallies close the run. With pytest arguments, or PYCRID_V2=0, only
# the pass here runs.
v2_tests=(${PYCRID_V2_TESTS:-tests/integration tests/e2e tests/cluster})
closing() {  # LOG: pytest's closing line ("== 12 passed, 1 skipped in 3.2s ==")
  grep -E '^=* *[0-9]+ (passed|failed|skipped|error).* in [0-9.]+s' "$1" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//' || true
}
pass_tally() {  # LOG: the pytest closing line and the critest line of one pass
  echo "$(closing "$1")" "$(grep -h '^critest: ' "$1" | tail -1)"
}
rm -f _out/critest-tally.txt
set +e
"$venv/bin/python" -m pytest tests "$@" 2>&1 | tee _out/pass-v1.log
host_rc=${PIPESTATUS[0]}
set -e
[[ -f _out/critest-tally.txt ]] && mv _out/critest-tally.txt _out/critest-tally-v1.txt
if (($#)) || [[ ${PYCRID_V2:-1} == 0 ]]; then
  exit "$host_rc"
fi
start=$SECONDS
# The guest's Debian criu (3.17) lacks --network-lock skip; the criu hack/criu.sh built into the
# shared cache runs there too (the Debian package brings its libraries), so it goes first on PATH.
criu_dir=$(dirname "$(readlink -f /usr/local/sbin/criu 2>/dev/null || echo /usr/sbin/criu)")
set +e
{
  "$here/vm/boot.sh" &&
    "$here/vm/run.sh" env "PATH=$PYCRID_CACHE/bin:$criu_dir:/usr/sbin:/usr/bin:/sbin:/bin" \
      "$venv/bin/python" -m pytest -p no:cacheprovider --durations=30 "${v2_tests[@]}"
} 2>&1 | tee _out/pass-v2.log
guest_rc=${PIPESTATUS[0]}
set -e
"$here/vm/stop.sh"
[[ -f _out/critest-tally.txt ]] && mv _out/critest-tally.txt _out/critest-tally-v2.txt
echo "test: the cgroup v2 pass took $((SECONDS - start)) s (guest boot included)"
echo "test: cgroup v1 (this machine):" $(pass_tally _out/pass-v1.log)
echo "test: cgroup v2 (hack/vm guest):" $(pass_tally _out/pass-v2.log)
if ((guest_rc != 0)) && ! closing _out/pass-v2.log | grep -q .; then
  echo "test: the cgroup v2 pass FAILED before its tests ran (exit $guest_rc; the guest's boot is above)"
fi
# Both passes' pytest counts in one closing line.
count() { { closing _out/pass-v1.log; closing _out/pass-v2.log; } | grep -oE "[0-9]+ $1" | awk '{ n += $1 } END { print n + 0 }'; }
# pytest says "1 error" or "2 errors" for a failed fixture: those count too.
echo "both: $(count passed) passed, $(count failed) failed, $(count skipped) skipped, $(count 'errors?') errors"
((host_rc == 0 && guest_rc == 0))
