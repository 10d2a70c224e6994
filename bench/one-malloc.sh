#!/bin/sh
# one-malloc.sh: builds (once) and prints the path of the trivial program
# that bench/start-rss.sh and bench/spawn-time.sh start: one malloc, one
# free, exit. -fno-builtin: the compiler must not drop the pair. Run from
# the build tree; a guest without cc uses the one the host built.
set -eu
bin=bench/results/bin
if [ ! -x "$bin/one-malloc" ]; then
	command -v cc >/dev/null || {
		echo "one-malloc.sh: no cc here to build $bin/one-malloc: run it once on the host first" >&2
		exit 1
	}
	mkdir -p "$bin"
	printf '#include <stdlib.h>\nint main(void) { free(malloc(16)); return 0; }\n' > "$bin/one-malloc.c"
	cc -O2 -fno-builtin -o "$bin/one-malloc" "$bin/one-malloc.c"
fi
echo "$bin/one-malloc"
