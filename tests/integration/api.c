/* The whole malloc API and its glibc edge cases.
 *
 *   api shim   run under LD_PRELOAD=$NUMASHIM_LIB: every entry point must
 *              resolve into that file, free_sized/free_aligned_sized too.
 *   api ref    run without a preload: the reference run against glibc.
 *
 * Checks that hold for any conforming allocator are CHECKed in both modes.
 * Behaviour that is glibc's choice (realloc(p, 0), memalign with an odd
 * alignment, ...) is printed as "FACT key=value" lines; api.test requires
 * the two runs to print the same facts. */
#include "tests/integration/check.h"

#include <malloc.h>
#include <stdbool.h>

typedef void (*free_sized_fn)(void *, size_t);
typedef void (*free_aligned_sized_fn)(void *, size_t, size_t);

static bool shim_mode;
static size_t page;

#define PTRDIFF_OVER ((size_t)PTRDIFF_MAX + 1)

static const char *const api_names[] = {
	"malloc", "calloc", "realloc", "reallocarray", "free", "memalign",
	"posix_memalign", "aligned_alloc", "valloc", "pvalloc",
	"malloc_usable_size", "free_sized", "free_aligned_sized",
};

/* A call that must fail with NULL and errno ENOMEM. */
#define EXPECT_ENOMEM(call, desc)                                            \
	do {                                                                 \
		errno = 0;                                                   \
		void *r_ = (call);                                           \
		int e_ = errno;                                              \
		CHECK(r_ == NULL && e_ == ENOMEM,                            \
		      "%s: expected NULL with errno ENOMEM, got %p with errno %d (%s)", \
		      desc, r_, e_, strerror(e_));                           \
		free(r_);                                                    \
	} while (0)

static size_t next_pow2(size_t a)
{
	size_t p = 1;
	while (p < a)
		p <<= 1;
	return p;
}

static bool aligned_to(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

static size_t vm_pages(void)
{
	unsigned long size = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%lu", &size) != 1)
			size = 0;
		fclose(f);
	}
	return size;
}

/* A fresh block: non-NULL, usable size >= n, every usable byte writable. */
static void check_block(const char *what, void *p, size_t n, size_t align)
{
	CHECK(p != NULL, "%s: expected a block, got NULL (errno %d)", what, errno);
	if (p == NULL)
		return;
	size_t u = malloc_usable_size(p);
	CHECK(u >= n, "%s: expected malloc_usable_size >= %zu, got %zu", what, n, u);
	CHECK(aligned_to(p, align), "%s: expected %zu-byte alignment, got %p", what, align, p);
	memset(p, 0xC3, u);
}

static void test_served(void)
{
	if (!shim_mode) {
		const char *obj = defining_object("malloc");
		CHECK(obj != NULL && strstr(obj, "libc.so") != NULL,
		      "reference run: expected malloc from glibc's libc.so, got %s",
		      obj ? obj : "(none)");
		return;
	}
	for (size_t i = 0; i < sizeof api_names / sizeof api_names[0]; i++)
		if (!served_by_shim(api_names[i]))
			check_failures++;
}

static void test_malloc(void)
{
	static const size_t sizes[] = { 1, 7, 8, 15, 16, 17, 24, 100, 1000, 4095, 4096,
		4097, 14336, 16384, 65536, 100000, 1 << 20, (3 << 20) + 5, 8 << 20 };
	void *p = malloc(HIDE((size_t)0)), *q = malloc(HIDE((size_t)0));
	CHECK(p != NULL && q != NULL && p != q,
	      "malloc(0) twice: expected two distinct non-NULL blocks, got %p and %p", p, q);
	free(p);
	free(q);
	EXPECT_ENOMEM(malloc(HIDE(SIZE_MAX)), "malloc(SIZE_MAX)");
	EXPECT_ENOMEM(malloc(HIDE(PTRDIFF_OVER)), "malloc(PTRDIFF_MAX+1)");
	EXPECT_ENOMEM(malloc(HIDE((size_t)PTRDIFF_MAX)), "malloc(PTRDIFF_MAX)");
	EXPECT_ENOMEM(malloc(HIDE(SIZE_MAX - 4096)), "malloc(SIZE_MAX-4096)");
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char what[64];
		size_t n = sizes[i];
		snprintf(what, sizeof what, "malloc(%zu)", n);
		p = malloc(HIDE(n));
		check_block(what, p, n, n >= 16 ? 16 : next_pow2(n) > n ? next_pow2(n) / 2 : n);
		free(p);
	}
}

static void check_zero(const char *what, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0) {
			check_fail(__FILE__, __LINE__, "%s: expected all %zu bytes zero, "
				   "got 0x%02x at offset %zu", what, n, p[i], i);
			return;
		}
}

static void test_calloc(void)
{
	static const size_t sizes[] = { 8, 24, 100, 1000, 4096, 10000, 65536, 300000,
		(2 << 20) + 5, 5 << 20 };
	enum { BATCH = 8, ROUNDS = 25 };
	char what[96];

	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t n = sizes[s];
		for (int r = 0; r < ROUNDS; r++) {
			void *b[BATCH];
			for (int i = 0; i < BATCH; i++) {
				b[i] = malloc(HIDE(n));
				if (b[i])
					memset(b[i], 0xAA, malloc_usable_size(b[i]));
			}
			for (int i = 0; i < BATCH; i++)
				free(b[i]);
			for (int i = 0; i < BATCH; i++) {
				/* alternate the factorisation: calloc(n, 1) / calloc(1, n) */
				b[i] = (i & 1) ? calloc(HIDE((size_t)1), n) : calloc(n, HIDE((size_t)1));
				snprintf(what, sizeof what, "calloc(%zu) after free of 0xAA-filled blocks, round %d",
					 n, r);
				CHECK(b[i] != NULL, "%s: expected a block, got NULL", what);
				if (b[i])
					check_zero(what, b[i], n);
			}
			for (int i = 0; i < BATCH; i++) {
				if (b[i])
					memset(b[i], 0xAA, n);
				free(b[i]);
			}
		}
	}
	void *p = calloc(HIDE((size_t)1000), HIDE((size_t)1000));
	check_block("calloc(1000, 1000)", p, 1000000, 16);
	free(p);

	static const size_t over[][2] = {
		{ SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 }, { (size_t)1 << 32, (size_t)1 << 32 },
		{ SIZE_MAX, SIZE_MAX }, { 3, SIZE_MAX / 3 + 1 }, { 1, PTRDIFF_OVER }, { PTRDIFF_OVER, 1 },
	};
	for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
		snprintf(what, sizeof what, "calloc(%zu, %zu)", over[i][0], over[i][1]);
		EXPECT_ENOMEM(calloc(HIDE(over[i][0]), HIDE(over[i][1])), what);
	}
	p = calloc(HIDE((size_t)0), HIDE(SIZE_MAX));
	printf("FACT calloc(0,SIZE_MAX)=%s\n", p ? "block" : "NULL");
	free(p);
	p = calloc(HIDE((size_t)0), HIDE((size_t)0));
	printf("FACT calloc(0,0)=%s\n", p ? "block" : "NULL");
	free(p);
}

static void test_realloc(void)
{
	static const size_t chain[] = { 1, 8, 24, 100, 4000, 16384, 100000, 3 << 20,
		(5 << 20) + 1, 100, 5, 70000, 64, 2 << 20, 1 };
	size_t old = 0;
	char *p = realloc(NULL, HIDE((size_t)100));
	check_block("realloc(NULL, 100)", p, 100, 16);
	free(p);

	p = NULL;
	for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
		size_t n = chain[i], keep = old < n ? old : n;
		char *q = realloc(p, HIDE(n));
		CHECK(q != NULL, "realloc(%p, %zu): expected a block, got NULL", (void *)p, n);
		if (q == NULL)
			break;
		size_t bad = pat_find_bad(q, keep, old);
		CHECK(bad == (size_t)-1, "realloc(%zu -> %zu): expected the first %zu bytes kept, "
		      "got a difference at offset %zu", old, n, keep, bad);
		pat_fill(q, n, n);
		p = q;
		old = n;
	}

	/* huge: NULL + ENOMEM, the old block untouched and still usable */
	static const size_t huge[] = { SIZE_MAX, PTRDIFF_OVER, SIZE_MAX - 4096 };
	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "realloc(p, %zu)", huge[i]);
		errno = 0;
		void *q = realloc(p, HIDE(huge[i]));
		int e = errno;
		CHECK(q == NULL && e == ENOMEM, "%s: expected NULL with errno ENOMEM, got %p "
		      "with errno %d", what, q, e);
		if (q) { p = q; continue; }
		size_t bad = pat_find_bad(p, old, old);
		CHECK(bad == (size_t)-1, "%s failed: expected the old block intact, got a "
		      "difference at offset %zu", what, bad);
	}
	char *q = realloc(p, HIDE((size_t)200000));
	CHECK(q != NULL && pat_find_bad(q, old, old) == (size_t)-1,
	      "realloc(p, 200000) after a failed huge realloc: expected the block kept, got %p", q);
	free(q ? q : p);

	/* glibc frees p and returns NULL; the shim must do the same */
	p = malloc(HIDE((size_t)40));
	errno = 0;
	q = realloc(p, HIDE((size_t)0));
	printf("FACT realloc(p,0)=%s errno=%s\n", q ? "block" : "NULL", errno ? strerror(errno) : "0");
	free(q);
	p = malloc(HIDE((size_t)1 << 20));
	q = realloc(p, HIDE((size_t)0));
	printf("FACT realloc(1MiB-block,0)=%s\n", q ? "block" : "NULL");
	free(q);
	q = realloc(NULL, HIDE((size_t)0));
	printf("FACT realloc(NULL,0)=%s\n", q ? "block" : "NULL");
	free(q);
}

static void test_reallocarray(void)
{
	char *p = reallocarray(NULL, HIDE((size_t)10), HIDE((size_t)10));
	check_block("reallocarray(NULL, 10, 10)", p, 100, 16);
	pat_fill(p, 100, 3);
	char *q = reallocarray(p, HIDE((size_t)500), HIDE((size_t)2));
	CHECK(q != NULL && pat_find_bad(q, 100, 3) == (size_t)-1,
	      "reallocarray(p, 500, 2): expected 1000 bytes with the first 100 kept, got %p", q);
	if (q == NULL)
		q = p;
	pat_fill(q, 1000, 4);
	static const size_t over[][2] = {
		{ SIZE_MAX / 2 + 1, 2 }, { (size_t)1 << 33, (size_t)1 << 33 }, { 3, SIZE_MAX / 3 + 1 },
		{ SIZE_MAX, SIZE_MAX }, { PTRDIFF_OVER, 1 },
	};
	for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
		errno = 0;
		void *r = reallocarray(q, HIDE(over[i][0]), HIDE(over[i][1]));
		int e = errno;
		CHECK(r == NULL && e == ENOMEM, "reallocarray(p, %zu, %zu): expected NULL with "
		      "errno ENOMEM, got %p with errno %d", over[i][0], over[i][1], r, e);
		if (r) { q = r; continue; }
		size_t bad = pat_find_bad(q, 1000, 4);
		CHECK(bad == (size_t)-1, "reallocarray(p, %zu, %zu) failed: expected the old "
		      "block intact, got a difference at offset %zu", over[i][0], over[i][1], bad);
	}
	free(q);
	p = malloc(HIDE((size_t)30));
	q = reallocarray(p, HIDE((size_t)0), HIDE((size_t)5));
	printf("FACT reallocarray(p,0,5)=%s\n", q ? "block" : "NULL");
	free(q);
}

static void test_posix_memalign(void)
{
	static const size_t bad_align[] = { 0, 1, 2, 3, 4, 12, 24, 48, 100, 4097, 3 << 12,
		SIZE_MAX, SIZE_MAX / 2 + 9 };
	void *const sentinel = (void *)&sentinel;
	void *p;
	int r;

	for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
		p = sentinel;
		errno = 4242;
		r = posix_memalign(&p, HIDE(bad_align[i]), 64);
		int e = errno;
		CHECK(r == EINVAL, "posix_memalign(&p, %zu, 64): expected return EINVAL, got %d (%s)",
		      bad_align[i], r, strerror(r));
		CHECK(e == 4242, "posix_memalign(&p, %zu, 64): expected errno unchanged (4242), got %d",
		      bad_align[i], e);
		CHECK(p == sentinel, "posix_memalign(&p, %zu, 64): expected p unchanged on failure, "
		      "got %p", bad_align[i], p);
		if (r == 0 && p != sentinel)
			free(p);
	}
	static const size_t huge[] = { SIZE_MAX, PTRDIFF_OVER, SIZE_MAX - 8192 };
	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		p = sentinel;
		r = posix_memalign(&p, 64, HIDE(huge[i]));
		CHECK(r == ENOMEM, "posix_memalign(&p, 64, %zu): expected return ENOMEM, got %d",
		      huge[i], r);
		CHECK(p == sentinel, "posix_memalign(&p, 64, %zu): expected p unchanged on failure, "
		      "got %p", huge[i], p);
		if (r == 0)
			free(p);
	}
	for (size_t a = sizeof(void *); a <= (4u << 20); a <<= 1) {
		const size_t sizes[] = { 1, a - 1, a, a + 1, 3 * a };
		for (size_t i = 0; i < 5; i++) {
			char what[64];
			snprintf(what, sizeof what, "posix_memalign(&p, %zu, %zu)", a, sizes[i]);
			p = NULL;
			errno = 4242;
			r = posix_memalign(&p, a, HIDE(sizes[i]));
			CHECK(r == 0, "%s: expected 0, got %d (%s)", what, r, strerror(r));
			CHECK(errno == 4242, "%s: expected errno unchanged (4242), got %d", what, errno);
			if (r == 0)
				check_block(what, p, sizes[i], a);
			free(p);
		}
	}
	p = NULL;
	r = posix_memalign(&p, 64, HIDE((size_t)0));
	printf("FACT posix_memalign(64,0)=%d%s\n", r, r == 0 ? (p ? " block" : " NULL") : "");
	if (r == 0)
		free(p);
}

static void test_aligned_alloc_memalign(void)
{
	char what[80];
	for (size_t a = 1; a <= (1u << 20); a <<= 1) {
		/* 0 too: jemalloc 5.3's memalign(a, 0) is not aligned */
		const size_t sizes[] = { 0, 1, a, 3 * a };
		for (size_t i = 0; i < 4; i++) {
			snprintf(what, sizeof what, "aligned_alloc(%zu, %zu)", a, sizes[i]);
			void *p = aligned_alloc(HIDE(a), HIDE(sizes[i]));
			check_block(what, p, sizes[i], a);
			free(p);
			snprintf(what, sizeof what, "memalign(%zu, %zu)", a, sizes[i]);
			p = memalign(HIDE(a), HIDE(sizes[i]));
			check_block(what, p, sizes[i], a);
			free(p);
		}
	}
	EXPECT_ENOMEM(aligned_alloc(64, HIDE(SIZE_MAX)), "aligned_alloc(64, SIZE_MAX)");
	EXPECT_ENOMEM(aligned_alloc(4096, HIDE(PTRDIFF_OVER)), "aligned_alloc(4096, PTRDIFF_MAX+1)");
	EXPECT_ENOMEM(memalign(64, HIDE(SIZE_MAX)), "memalign(64, SIZE_MAX)");
	EXPECT_ENOMEM(memalign(4096, HIDE(PTRDIFF_OVER)), "memalign(4096, PTRDIFF_MAX+1)");

	/* glibc 2.36 rounds a non-power-of-two alignment up to the next power */
	static const size_t odd[] = { 0, 3, 12, 24, 48, 100, 1000, 4097, 40000,
		SIZE_MAX / 2 + 2, SIZE_MAX };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		size_t a = odd[i];
		errno = 0;
		void *p = memalign(HIDE(a), 100);
		int e = errno;
		if (p) {
			size_t want = next_pow2(a ? a : 1);
			CHECK(aligned_to(p, want), "memalign(%zu, 100): expected alignment rounded up "
			      "to %zu as glibc does, got %p", a, want, p);
			memset(p, 1, 100);
			printf("FACT memalign(%zu,100)=block\n", a);
		} else {
			printf("FACT memalign(%zu,100)=NULL errno=%s\n", a, strerror(e));
		}
		free(p);
		/* C17 leaves aligned_alloc with a bad alignment to the
		 * implementation (glibc 2.38 rejects it): note, don't compare */
		if (a != 0 && a < 1u << 20) {
			errno = 0;
			p = aligned_alloc(HIDE(a), 100);
			printf("INFO aligned_alloc(%zu,100)=%s errno=%d\n", a, p ? "block" : "NULL", errno);
			free(p);
		}
	}
}

static void test_valloc_pvalloc(void)
{
	const size_t sizes[] = { 1, 100, page - 1, page, page + 1, 3 * page + 1, (1 << 20) + 1 };
	char what[64];
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i], up = (n + page - 1) / page * page;
		snprintf(what, sizeof what, "valloc(%zu)", n);
		void *p = valloc(HIDE(n));
		check_block(what, p, n, page);
		free(p);
		snprintf(what, sizeof what, "pvalloc(%zu)", n);
		p = pvalloc(HIDE(n));
		check_block(what, p, up, page);
		free(p);
	}
	void *p = valloc(HIDE((size_t)0));
	printf("FACT valloc(0)=%s\n", p ? "block" : "NULL");
	CHECK(p == NULL || aligned_to(p, page), "valloc(0): expected page alignment, got %p", p);
	free(p);
	for (int i = 0; i < 8; i++) { /* after small blocks of the same class */
		void *small = malloc(HIDE((size_t)8));
		void *m = memalign(HIDE((size_t)64), HIDE((size_t)0));
		void *a = aligned_alloc(HIDE((size_t)256), HIDE((size_t)0));

		p = valloc(HIDE((size_t)0));
		CHECK(p == NULL || aligned_to(p, page), "valloc(0) after malloc(8): expected "
		      "page alignment, got %p", p);
		CHECK(m == NULL || aligned_to(m, 64), "memalign(64, 0) after malloc(8): expected "
		      "64-byte alignment, got %p", m);
		CHECK(a == NULL || aligned_to(a, 256), "aligned_alloc(256, 0) after malloc(8): "
		      "expected 256-byte alignment, got %p", a);
		free(small);
		free(p);
		free(m);
		free(a);
	}
	p = pvalloc(HIDE((size_t)0));
	CHECK(p != NULL && aligned_to(p, page), "pvalloc(0): expected a page-aligned block, got %p", p);
	if (shim_mode)
		check_block("pvalloc(0) (one page)", p, page, page);
	else if (p)
		printf("INFO glibc pvalloc(0): malloc_usable_size %zu\n", malloc_usable_size(p));
	free(p);
	EXPECT_ENOMEM(valloc(HIDE(SIZE_MAX)), "valloc(SIZE_MAX)");
	EXPECT_ENOMEM(pvalloc(HIDE(SIZE_MAX)), "pvalloc(SIZE_MAX)");
	EXPECT_ENOMEM(pvalloc(HIDE(SIZE_MAX - page + 2)), "pvalloc(SIZE_MAX-page+2) (rounding overflows)");
	EXPECT_ENOMEM(pvalloc(HIDE(PTRDIFF_OVER)), "pvalloc(PTRDIFF_MAX+1)");
}

static void test_usable_and_free(void)
{
	size_t u = malloc_usable_size(NULL);
	CHECK(u == 0, "malloc_usable_size(NULL): expected 0, got %zu", u);
	for (size_t n = 0; n <= 70000; n += n < 512 ? 1 : n / 7) {
		void *p = malloc(HIDE(n));
		char what[48];
		snprintf(what, sizeof what, "malloc(%zu)", n);
		check_block(what, p, n, 1);
		free(p);
	}
	errno = 4242;
	free(NULL);
	CHECK(errno == 4242, "free(NULL): expected errno unchanged (4242, glibc >= 2.33), got %d", errno);
	static const size_t sizes[] = { 16, 5000, 1 << 20, 64 << 20 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		void *p = malloc(HIDE(sizes[i]));
		memset(p, 1, sizes[i]);
		errno = 4242;
		free(p);
		CHECK(errno == 4242, "free(malloc(%zu)): expected errno unchanged (4242, glibc >= 2.33), "
		      "got %d", sizes[i], errno);
	}
}

static void test_free_sized(void)
{
	free_sized_fn fs = (free_sized_fn)dlsym(RTLD_DEFAULT, "free_sized");
	free_aligned_sized_fn fas = (free_aligned_sized_fn)dlsym(RTLD_DEFAULT, "free_aligned_sized");

	if (!shim_mode && (fs == NULL || fas == NULL)) {
		printf("INFO free_sized/free_aligned_sized absent without the shim (glibc < 2.39)\n");
		return;
	}
	CHECK(fs != NULL && fas != NULL, "dlsym(free_sized/free_aligned_sized): expected both, "
	      "got %p and %p", (void *)fs, (void *)fas);
	if (fs == NULL || fas == NULL)
		return;
	fs(NULL, 0);
	fs(NULL, 100);
	fas(NULL, 64, 0);
	for (size_t n = 1; n < 300000; n += n / 3 + 1) {
		void *p = malloc(HIDE(n));
		memset(p, 2, n);
		fs(p, n);
		p = calloc(HIDE(n), 3);
		fs(p, n * 3);
		p = malloc(HIDE(n));
		p = realloc(p, HIDE(n * 2 + 5));
		fs(p, n * 2 + 5);
		for (size_t a = 16; a <= 65536; a <<= 2) {
			size_t sz = (n + a - 1) / a * a;
			p = aligned_alloc(a, sz);
			CHECK(p != NULL, "aligned_alloc(%zu, %zu): expected a block, got NULL", a, sz);
			if (p)
				memset(p, 3, sz);
			fas(p, a, sz);
		}
	}
	/* freed for real: 4 GiB through 1 MiB blocks must not pile up */
	size_t before = vm_pages();
	for (int i = 0; i < 4096; i++) {
		void *p = malloc(HIDE((size_t)1 << 20));
		((volatile char *)p)[i * 97] = 1;
		fs(p, (size_t)1 << 20);
		p = aligned_alloc(4096, HIDE((size_t)1 << 20));
		((volatile char *)p)[i * 31] = 1;
		fas(p, 4096, (size_t)1 << 20);
	}
	size_t grown = (vm_pages() - before) * page;
	CHECK(grown < ((size_t)1 << 30), "free_sized/free_aligned_sized of 2 x 4096 1 MiB blocks: "
	      "expected them freed (address space growth < 1 GiB), got %zu MiB more", grown >> 20);
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "shim") != 0 && strcmp(argv[1], "ref") != 0)) {
		fprintf(stderr, "usage: %s shim|ref\n", argv[0]);
		return 2;
	}
	shim_mode = strcmp(argv[1], "shim") == 0;
	page = (size_t)sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	deadlock_guard(120);

	test_served();
	test_malloc();
	test_calloc();
	test_realloc();
	test_reallocarray();
	test_posix_memalign();
	test_aligned_alloc_memalign();
	test_valloc_pvalloc();
	test_usable_and_free();
	test_free_sized();
	CHECK_EXIT();
}
