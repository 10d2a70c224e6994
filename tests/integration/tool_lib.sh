# Helpers for the numashim tool's tests (tool-*.test), sourced after lib.sh.
#
# Sets: NS (the numashim command), MK (mkseg, which writes crafted
# segments, see mkseg.c).

NS="${NUMASHIM_BUILDDIR:-.}/tools/numashim"
MK="$B/mkseg"
[ -x "$NS" ] || { echo "FAIL: $NS was not built"; exit 1; }
[ -x "$MK" ] || { echo "FAIL: $MK was not built"; exit 1; }
ntests=0

# rc_ok RC: true if RC is a normal exit (not a signal, not a timeout)
rc_ok() {
	[ "$1" -lt 124 ] || [ "$1" -eq 125 ] || [ "$1" -eq 126 ] || [ "$1" -eq 127 ]
}

# refused DESC PATTERN CMD...: CMD must end by itself within 20 s with a
# status other than 0, without a signal, print nothing on stdout (unless
# REFUSED_STDOUT=any) and exactly one stderr line, starting "numashim: "
# and matching the extended regex PATTERN.
refused() {
	rf_desc=$1 rf_pat=$2
	shift 2
	ntests=$((ntests + 1))
	rf_rc=0
	timeout -k 5 20 "$@" >"$T/rf.out" 2>"$T/rf.err" </dev/null || rf_rc=$?
	rf_lines=$(wc -l <"$T/rf.err")
	rf_line=$(head -n 1 "$T/rf.err")
	if [ "$rf_rc" -eq 0 ]; then
		fail "$rf_desc: accepted (exit 0), expected a refusal"
	elif ! rc_ok "$rf_rc"; then
		fail "$rf_desc: $(describe_rc "$rf_rc")"
	elif [ "$rf_lines" -ne 1 ]; then
		fail "$rf_desc: expected one line on stderr, got $rf_lines:"
		head -n 5 "$T/rf.err"
	elif ! printf '%s\n' "$rf_line" | grep -Eq "^numashim: .*($rf_pat)"; then
		fail "$rf_desc: the message does not match /$rf_pat/: $rf_line"
	elif [ "${REFUSED_STDOUT:-none}" = none ] && [ -s "$T/rf.out" ]; then
		fail "$rf_desc: printed on stdout too:"
		head -n 5 "$T/rf.out"
	else
		echo "ok   $rf_desc (exit $rf_rc): $rf_line" | cut -c 1-220
		return 0
	fi
	return 1
}

# ok DESC CMD...: CMD must exit 0 within 60 s (stdout in $T/ok.out).
ok() {
	ok_desc=$1
	shift
	ntests=$((ntests + 1))
	if run "$ok_desc" "$T/ok.out" "$@"; then
		echo "ok   $ok_desc"
		return 0
	fi
	return 1
}

# has DESC FILE PATTERN: FILE must have a line matching the extended regex
has() {
	ntests=$((ntests + 1))
	if grep -Eq -- "$3" "$2"; then
		echo "ok   $1"
	else
		fail "$1: no line matching /$3/ in:"
		head -n 40 "$2"
	fi
}

# holder: start a process that lives for the test (pid in $holder)
holder() {
	sleep 600 </dev/null >/dev/null 2>&1 &
	holder=$!
	holders="${holders:-} $holder"
	trap 'kill $holders 2>/dev/null || true; rm -rf "$T"' EXIT
}

# json_ok DESC FILE: FILE parses as JSON
json_ok() {
	ntests=$((ntests + 1))
	if python3 -c 'import json,sys; json.load(sys.stdin)' <"$2" 2>"$T/json.err"; then
		echo "ok   $1: valid JSON"
	else
		fail "$1: not valid JSON: $(tail -n 1 "$T/json.err")"
		head -n 20 "$2"
	fi
}

# promtool_ok DESC FILE: promtool accepts FILE (promtool must be there:
# the caller skips the test first when it is not)
promtool_ok() {
	ntests=$((ntests + 1))
	if promtool check metrics <"$2" >"$T/prom.err" 2>&1; then
		echo "ok   $1: promtool check metrics"
	else
		fail "$1: promtool check metrics:"
		head -n 20 "$T/prom.err"
		head -n 40 "$2"
	fi
}

# need_promtool: skip (77) with a reason when promtool is missing
need_promtool() {
	command -v promtool >/dev/null 2>&1 ||
		skip "promtool is not installed (Debian package prometheus: apt-get install prometheus)"
}
