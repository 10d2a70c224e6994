# Shared shell helpers for tests/integration/*.test (sourced, POSIX sh).
#
# Sets: B (directory of the built test programs), S (source directory of
# these tests), T (a scratch directory removed on exit), status (0 until
# something fails).  Each test ends with "finish".

status=0

fail() {
	echo "FAIL: $*"
	status=1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# A missing shim is a failure, not a skip: "make check" builds it first.
if [ -z "${NUMASHIM_LIB:-}" ]; then
	echo "FAIL: NUMASHIM_LIB is not set (run through 'make check')"
	exit 1
fi
if [ ! -f "$NUMASHIM_LIB" ]; then
	echo "FAIL: NUMASHIM_LIB=$NUMASHIM_LIB does not exist (was the shim built?)"
	exit 1
fi
B="${NUMASHIM_BUILDDIR:-.}/tests/integration"
S="${NUMASHIM_SRCDIR:-.}/tests/integration"

# Start from a clean slate: no inherited preload, no stray NUMASHIM_*
# settings (only the paths the build hands us survive).
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(NUMASHIM_[A-Za-z0-9_]*\)=.*/\1/p'); do
	case $v in
	NUMASHIM_LIB|NUMASHIM_BUILDDIR|NUMASHIM_SRCDIR) ;;
	*) unset "$v" ;;
	esac
done
export LC_ALL=C

T=$(mktemp -d "${TMPDIR:-/tmp}/numashim-it.XXXXXX")
trap 'rm -rf "$T"' EXIT

# built PROG WHAT: PROG, one of the check programs "make check" builds, must
# be there: missing, it is a broken build, a failure (exit 1), not a skip.
built() {
	if [ ! -x "$1" ]; then
		echo "FAIL: $1 ($2) was not built (run through 'make check')"
		exit 1
	fi
}

# describe_rc RC: "exit 3" or "killed by SIGSEGV"
describe_rc() {
	if [ "$1" -gt 128 ] && [ "$1" -lt 160 ]; then
		echo "killed by SIG$(kill -l "$(($1 - 128))" 2>/dev/null || echo "$(($1 - 128))")"
	elif [ "$1" -eq 124 ]; then
		echo "timed out (deadlock?)"
	else
		echo "exit $1"
	fi
}

# run DESC OUT CMD...: run CMD (stdout to OUT, stderr to OUT.err) under a
# time limit; on failure say so and show both.  Returns CMD's status.
run() {
	run_desc=$1 run_out=$2
	shift 2
	run_rc=0
	timeout -k 5 "${RUN_TIMEOUT:-300}" "$@" >"$run_out" 2>"$run_out.err" || run_rc=$?
	if [ "$run_rc" -ne 0 ]; then
		fail "$run_desc: expected exit 0, got $(describe_rc "$run_rc")"
		echo "--- stdout of: $*"; head -n 200 "$run_out"
		echo "--- stderr:"; head -n 60 "$run_out.err"
		echo "---"
	fi
	return "$run_rc"
}

# shim DESC OUT CMD...: like run, with the shim preloaded.
shim() {
	shim_desc=$1 shim_out=$2
	shift 2
	run "$shim_desc (under the shim)" "$shim_out" env LD_PRELOAD="$NUMASHIM_LIB" "$@"
}

# On a one-node host the shim passes straight through to jemalloc; an
# emulated topology (NUMASHIM_FAKE_NODES=N, one virtual node per CPU) puts it
# on its multi-node path: per-node arenas, origin-aware free and realloc.
# can_fake N: true if this host has the N CPUs that needs.
can_fake() {
	if [ "$(nproc --all)" -lt "$1" ]; then
		echo "NOTE: $1 emulated nodes need $1 CPUs, this host has $(nproc --all): not run"
		return 1
	fi
}

# same DESC EXPECTED GOT: the two files must be identical.
same() {
	if ! cmp -s "$2" "$3"; then
		fail "$1: output differs from the expected (< expected, > got)"
		diff "$2" "$3" | head -n 30
		return 1
	fi
}

finish() {
	if [ "$status" -eq 0 ]; then echo "PASS"; fi
	exit "$status"
}

# compare_runs DESC EXPECTED CMD...: CMD's stdout must equal the file
# EXPECTED without the shim, under the shim, and under the shim with
# NUMASHIM_VERBOSE=1 (which may add lines to stderr, never to stdout).
compare_runs() {
	cr_desc=$1 cr_expected=$2
	shift 2
	if run "$cr_desc without the shim" "$T/cr.plain" "$@"; then
		same "$cr_desc without the shim (the test's own expectation)" \
			"$cr_expected" "$T/cr.plain" || true
	fi
	if shim "$cr_desc" "$T/cr.shim" "$@"; then
		same "$cr_desc under the shim" "$cr_expected" "$T/cr.shim" || true
		if grep -q '^numashim:' "$T/cr.shim.err"; then
			echo "INFO: $cr_desc: the shim wrote to stderr with default settings:"
			grep '^numashim:' "$T/cr.shim.err" | sort | uniq -c | head -n 5
		fi
	fi
	if run "$cr_desc with NUMASHIM_VERBOSE=1" "$T/cr.verbose" \
		env LD_PRELOAD="$NUMASHIM_LIB" NUMASHIM_VERBOSE=1 "$@"; then
		same "$cr_desc under the shim with NUMASHIM_VERBOSE=1" \
			"$cr_expected" "$T/cr.verbose" || true
		if ! grep -q '^numashim:' "$T/cr.verbose.err"; then
			echo "INFO: $cr_desc: NUMASHIM_VERBOSE=1 printed nothing"
		fi
	fi
	if can_fake 2 && run "$cr_desc with NUMASHIM_FAKE_NODES=2" "$T/cr.fake" \
		env LD_PRELOAD="$NUMASHIM_LIB" NUMASHIM_FAKE_NODES=2 "$@"; then
		same "$cr_desc under the shim with NUMASHIM_FAKE_NODES=2" \
			"$cr_expected" "$T/cr.fake" || true
	fi
	echo "ran: $cr_desc: $(wc -l <"$cr_expected") lines expected; plain, shim," \
		"NUMASHIM_VERBOSE=1 ($(grep -c '^numashim:' "$T/cr.verbose.err" || true) shim lines" \
		"on stderr), NUMASHIM_FAKE_NODES=2"
}
