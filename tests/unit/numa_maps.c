/*
 * stats/procfs.c's numa_maps reading (stats_numa_maps), on made-up files:
 * which lines count as placed (an explicit policy, whatever its flags or
 * spelling), pages per node, and the page size of each line.
 */
#include "stats/reader.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes text to a temporary file, reads it, removes it. */
static int read_text(const char *text, bool placed_only,
		     uint64_t bytes[NS_STATS_MAX_NODES])
{
	char path[] = "/tmp/numashim-unit-numa_maps.XXXXXX";
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	rc = stats_numa_maps(path, placed_only, bytes);
	unlink(path);
	return rc;
}

/* Each of the kernel's spellings of an explicit policy counts as placed;
 * the default and local ones do not. */
static void every_explicit_policy_is_placed(void **state)
{
	static const char text[] =
		"7f0000000000 default anon=5 dirty=5 N0=5 kernelpagesize_kB=4\n"
		"7f0000100000 local anon=7 N1=7 kernelpagesize_kB=4\n"
		"7f0000200000 prefer:1 anon=1 N1=1 kernelpagesize_kB=4\n"
		"7f0000300000 bind:0 anon=2 N0=2 kernelpagesize_kB=4\n"
		"7f0000400000 interleave:0-1 anon=4 N0=2 N1=2 kernelpagesize_kB=4\n"
		"7f0000500000 bind=static:1 anon=8 N1=8 kernelpagesize_kB=4\n"
		"7f0000600000 prefer=relative:0 anon=16 N0=16 kernelpagesize_kB=4\n"
		"7f0000700000 weighted interleave:0-1 anon=32 N0=16 N1=16 kernelpagesize_kB=4\n"
		"7f0000800000 prefer (many):0-1 anon=64 N1=64 kernelpagesize_kB=4\n";
	uint64_t b[NS_STATS_MAX_NODES];

	assert_int_equal(read_text(text, true, b), 0);
	assert_int_equal(b[0], (2 + 2 + 16 + 16) * 4096ULL);
	assert_int_equal(b[1], (1 + 2 + 8 + 16 + 64) * 4096ULL);
	assert_int_equal(read_text(text, false, b), 0);
	assert_int_equal(b[0], (5 + 2 + 2 + 16 + 16) * 4096ULL);
	assert_int_equal(b[1], (7 + 1 + 2 + 8 + 16 + 64) * 4096ULL);
}

/* A line's pages are of its own page size; nodes beyond the segment's
 * limit and malformed counts are left out. */
static void pages_use_their_line_page_size(void **state)
{
	static const char text[] =
		"7f0000000000 bind:1 huge anon=3 N1=3 kernelpagesize_kB=2048\n"
		"7f0000400000 bind:0 anon=1 N0=1 N99=5 Nx=7 kernelpagesize_kB=4\n"
		"7f0000500000\n";
	uint64_t b[NS_STATS_MAX_NODES];

	assert_int_equal(read_text(text, true, b), 0);
	assert_int_equal(b[0], 4096ULL);
	assert_int_equal(b[1], 3ULL << 21);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_explicit_policy_is_placed),
		cmocka_unit_test(pages_use_their_line_page_size),
	};

	return cmocka_run_group_tests_name("stats/procfs.c: numa_maps", tests,
					   NULL, NULL);
}
