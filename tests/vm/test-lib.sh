# test-lib.sh: sourced by the tests/vm/*.test scripts (host side).
# Checks what make check should have built, then offers vm TOPOLOGY ... .
# Environment (set by AM_TESTS_ENVIRONMENT): NUMASHIM_SRCDIR,
# NUMASHIM_BUILDDIR, NUMASHIM_LIB (empty = baselines only, exit 77),
# JEMALLOC_SO. Exit 99 = hard error, as vmrun.
set -eu

# Outside make check: source tree from the script's place, build tree = cwd.
NUMASHIM_SRCDIR=${NUMASHIM_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
NUMASHIM_BUILDDIR=${NUMASHIM_BUILDDIR:-$(pwd)}
export NUMASHIM_SRCDIR NUMASHIM_BUILDDIR
vm_test=$(basename "$0")
vm_dir=$NUMASHIM_SRCDIR/tests/vm
vm_start=$(date +%s)

# The guest's cwd is the build tree, shared writable (results land there).
cd "$NUMASHIM_BUILDDIR" || { echo "$vm_test: no build tree $NUMASHIM_BUILDDIR"; exit 99; }
for p in pinned churn migrate handoff; do
	[ -x "tests/vm/place_$p" ] || {
		echo "$vm_test: tests/vm/place_$p is not built (make check builds it)"
		exit 99
	}
done
if [ -n "${NUMASHIM_LIB-}" ] && [ ! -e "$NUMASHIM_LIB" ]; then
	echo "$vm_test: NUMASHIM_LIB=$NUMASHIM_LIB does not exist: build the shim first"
	exit 99
fi
export NUMASHIM_LIB="${NUMASHIM_LIB-}" JEMALLOC_SO="${JEMALLOC_SO-}"

# vm TOPOLOGY TIMEOUT CMD...: boot, run, report the time; returns CMD's status.
vm() {
	_topo=$1 _timeout=$2
	shift 2
	echo "== $vm_test: booting $_topo guest: $*"
	"$vm_dir/vmrun" "$_topo" --timeout "$_timeout" -- "$@" && _rc=0 || _rc=$?
	echo "== $vm_test: $_topo guest done, status $_rc, $(($(date +%s) - vm_start)) s since start"
	return $_rc
}
