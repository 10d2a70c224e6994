#!/bin/bash
# Runs examples/demo plain and under numashim, in a 2-node QEMU guest when
# one can be booted (placement on a one-node host shows nothing), else on
# this host with a note saying so. Run from the build tree.
set -eu
lib="$PWD/shim/.libs/libnumashim.so"
demo="$PWD/examples/demo"
[ -x "$demo" ] && [ -f "$lib" ] || { echo "run-demo: build first (make)" >&2; exit 1; }

both() {
	"$demo"
	echo
	LD_PRELOAD="$lib" "$demo"
}

echo "== numashim demo in a 2-node NUMA guest (QEMU, TCG) =="
set +e
tests/vm/vmrun 2n -- /bin/sh -c \
	"'$demo'; echo; LD_PRELOAD='$lib' '$demo'"
rc=$?
set -e
if [ $rc -eq 77 ]; then
	echo "run-demo: no QEMU guest here; running on this host instead"
	echo "(with $(numactl -H 2>/dev/null | head -1 || echo 'one node'), every page is local either way)"
	both
	exit 0
fi
exit $rc
