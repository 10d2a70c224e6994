/*
 * The exported allocator API.
 *
 * Until numashim goes active, and for good when it passes through (one
 * node, policy off), every call goes straight to jemalloc. When active:
 *  - malloc is jemalloc's own, unwrapped: jemalloc sends blocks of at
 *    least NUMASHIM_INTERLEAVE_MIN to the interleaved set's arena itself
 *    (its "huge" arena, shim/arena.c ns_arena_adopt_huge). That saved the
 *    size test and jump of a wrapper: 1.45 instructions per op on
 *    bench/simple under 2 emulated nodes (58.1 -> 56.7, jemalloc 51.7);
 *  - calloc, realloc and the aligned calls check the size against
 *    NUMASHIM_INTERLEAVE_MIN and send large blocks to that set;
 *  - free/realloc read the block's tag (one byte per 2 MiB, shim/shim.h):
 *    a block of another node's arenas goes back home instead of into this
 *    thread's cache (origin-aware free).
 *
 * free, the other half of the hot pair, tests inline and jumps to jemalloc
 * directly: it tests whether the tag map exists (NULL while passing
 * through), then the block's tag. calloc and realloc are rarer and keep the
 * dispatch table.
 *
 * A wrapper that re-checked the node on every call measured 1.08-1.10x
 * plain jemalloc in a tight loop (shared/NOTES.md); the node is kept
 * current out of the allocation path instead (shim/thread.c).
 *
 * Calls that arrive before numashim's constructor (from ld.so, other
 * libraries' constructors, dlsym) are served by jemalloc itself, which
 * initialises on first use; those blocks carry no tag and are freed or
 * reallocated later like any other.
 */
#include "shim/shim.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE_FALLBACK 4096

/* ------------------------------------------------------------ checked */

/* jemalloc 5.3's realloc and memalign return NULL without setting errno
 * for sizes they cannot serve; glibc sets ENOMEM. Checked only on NULL. */
static void *enomem(void *p, size_t n)
{
	if (NS_UNLIKELY(p == NULL) && n != 0)
		errno = ENOMEM;
	return p;
}

static void *realloc_plain(void *p, size_t n)
{
	return enomem(nsje_realloc(p, n), n);
}


/* The slow entry points' test for a large block. min is SIZE_MAX while
 * there is no large set, but SIZE_MAX itself must not reach it then. */
static bool is_large(size_t n)
{
	return n >= __atomic_load_n(&ns_large.min, __ATOMIC_ACQUIRE) &&
	       ns_large.tag;
}

static NS_NOINLINE void *malloc_large(size_t n)
{
	if (is_large(n))
		return ns_large_alloc(n, 0, false);
	return nsje_malloc(n);
}

/* A plain read of min: it lets the compiler compare against memory (one
 * instruction fewer than an atomic load), and a stale SIZE_MAX only means
 * a block from the thread's arena; malloc_large reads it again. */
static inline void *malloc_checked(size_t n)
{
	if (NS_UNLIKELY(n >= ns_large.min))
		return malloc_large(n);
	return nsje_malloc(n);
}

/*
 * jemalloc zeroes a block it reuses for calloc with madvise(MADV_DONTNEED)
 * of its whole pages in an arena with its own extent hooks, but with
 * memset in any other: numashim's arenas all have hooks of their own.
 * calloc of 2 MB blocks, reused, one byte touched, ran 20 times slower
 * under 2 emulated nodes than passing through, with 50 times the RSS
 * (found by a review). Blocks from CALLOC_PAGES up are taken unzeroed
 * and zeroed as jemalloc's own arenas do: whole pages given back, the
 * partial ones at either end cleared. Not under transparent huge pages
 * "always" for the heap (jemalloc's opt.thp): that would split them, and
 * jemalloc uses memset there too. A page that cannot be given back (a
 * locked one) is cleared.
 */
#define CALLOC_PAGES ((size_t)64 << 10)
static bool calloc_memset_only;

static size_t page_size(void)
{
	static size_t page;

	if (page == 0) {
		long p = sysconf(_SC_PAGESIZE);

		page = p > 0 ? (size_t)p : PAGE_FALLBACK;
	}
	return page;
}

/* In the system's pages: madvise rounds its length up to a whole page, and
 * with 64 KiB pages (ppc64el, arm64 64K kernels) a range cut at 4 KiB
 * cleared up to 60 KiB past the block, a neighbouring block of its slab. */
static void *zeroed(void *p, size_t n)
{
	uintptr_t pg = page_size(), a = (uintptr_t)p;
	uintptr_t lo = (a + pg - 1) & ~(pg - 1), hi = (a + n) & ~(pg - 1);
	int saved = errno;

	if (p == NULL)
		return NULL;
	if (!calloc_memset_only && hi > lo &&
	    madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) {
		memset(p, 0, lo - a);
		memset((void *)hi, 0, a + n - hi);
	} else {
		memset(p, 0, n);
	}
	errno = saved;
	return p;
}

static void *calloc_checked(size_t n, size_t m)
{
	size_t bytes;

	if (NS_UNLIKELY(__builtin_mul_overflow(n, m, &bytes))) {
		errno = ENOMEM;
		return NULL;
	}
	if (NS_UNLIKELY(bytes >= ns_large.min) && is_large(bytes))
		return bytes >= CALLOC_PAGES ? zeroed(ns_large_alloc(bytes, 0, false), bytes)
					     : ns_large_alloc(bytes, 0, true);
	if (bytes >= CALLOC_PAGES)
		return zeroed(nsje_malloc(bytes), bytes); /* malloc sets ENOMEM */
	return nsje_calloc(n, m);
}

/* The thread's own tag first: in an active process nearly every block is
 * tagged, so that one compare decides the common case. */
static inline void free_checked(void *p)
{
	const uint8_t *tags = __atomic_load_n(&ns_tags, __ATOMIC_RELAXED);

	if (NS_LIKELY(tags != NULL)) {
		uint8_t t = tags[(uintptr_t)p >> NS_CHUNK_SHIFT];

		if (NS_UNLIKELY(t != ns_self.tag) && t != 0) {
			ns_free_foreign(p, t);
			return;
		}
	}
	nsje_free(p);
}

/* Moves a block: new one from `alloc`, contents copied, old one freed by
 * the origin-aware path. glibc: on failure NULL, errno ENOMEM, p intact. */
static void *move_block(void *p, size_t n, void *(*alloc)(size_t))
{
	size_t old = malloc_usable_size(p);
	void *q = alloc(n);

	if (q == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	free_checked(p);
	return q;
}

static void *large_alloc_plain(size_t n)
{
	return ns_large_alloc(n, 0, false);
}

/* jemalloc's opt.zero_realloc is "free" (its default, glibc's behaviour):
 * realloc(p, 0) frees p and returns NULL. A user's "alloc" (a block back,
 * p freed) or "abort" is jemalloc's to carry out, as when passing through:
 * freed here, a program that asked for "alloc" took the NULL for a failure,
 * kept p and freed it again (found by a review). */
static bool zero_realloc_frees = true;

/*
 * realloc off the fast path: a block of another node (it becomes this
 * thread's), a large block (stays in the interleaved set while large), or
 * a block growing past the large threshold (moves to the set).
 */
static void *realloc_slow(void *p, size_t n)
{
	uint8_t t;

	if (n == 0) {
		if (!zero_realloc_frees)
			return nsje_realloc(p, 0);
		free_checked(p);
		return NULL;
	}
	t = ns_tag_of(p);
	if (t != 0 && t == ns_large.tag) {
		if (n >= ns_large.min)
			return ns_large_realloc(p, n);
		return move_block(p, n, nsje_malloc);
	}
	if (is_large(n)) /* not n >= min: SIZE_MAX passes that with no set */
		return move_block(p, n, large_alloc_plain);
	if (ns_thread_ensure_bound() && ns_tag_of(p) == ns_self.tag)
		return realloc_plain(p, n);
	return move_block(p, n, nsje_malloc);
}

static void *realloc_checked(void *p, size_t n)
{
	uint8_t t = ns_tag_of(p);

	if (NS_LIKELY((t == ns_self.tag || t == 0) && n < ns_large.min &&
		      n != 0))
		return realloc_plain(p, n);
	if (p == NULL)
		return malloc_checked(n);
	return realloc_slow(p, n);
}

/* ------------------------------------------------------------ dispatch */

struct ns_dispatch ns_dispatch = { nsje_calloc, realloc_plain };

/* Goes live: free already checks tags (the map exists), malloc checks
 * sizes from the moment min leaves SIZE_MAX. */
void ns_dispatch_checked(void)
{
	const char *thp = NULL, *zero = NULL;
	size_t sz = sizeof(thp);

	calloc_memset_only = nsje_mallctl("opt.thp", &thp, &sz, NULL, 0) != 0 ||
			     thp == NULL || strcmp(thp, "always") == 0;
	sz = sizeof(zero);
	zero_realloc_frees = nsje_mallctl("opt.zero_realloc", &zero, &sz, NULL, 0) != 0 ||
			     zero == NULL || strcmp(zero, "free") == 0;
	__atomic_store_n(&ns_dispatch.calloc, calloc_checked, __ATOMIC_RELEASE);
	if (ns_large.tag)
		__atomic_store_n(&ns_large.min, ns.plan.large_min,
				 __ATOMIC_RELEASE);
	ns_large_route();
	__atomic_store_n(&ns_dispatch.realloc, realloc_checked, __ATOMIC_RELEASE);
}

/* malloc itself is jemalloc's (shim/jemalloc.syms leaves its name alone):
 * jemalloc routes large blocks to the large set's arena by itself once
 * ns_large_route has lowered its threshold (shim/large.c, shim/arena.c). */

NS_EXPORT void *calloc(size_t n, size_t m)
{
	return ns_dispatch.calloc(n, m);
}

#if defined(__x86_64__)
/*
 * free_checked, written out so that each exit is a conditional jump
 * straight into jemalloc: GCC 12 funnels all three through one shared
 * "jmp nsje_free", one instruction and one taken branch more per call.
 * Passing through: 3 instructions; active, own or untagged block: 9.
 * free and malloc start on cache lines of their own, as jemalloc's code
 * does (Makefile.am): a trial build whose malloc was a bare 5-byte jmp
 * right in front of free ran bench/simple at 1.54x jemalloc's time; the
 * same code with everything aligned so, 1.15-1.20x.
 * ns_self.tag is the first member of struct ns_thread (asserted below);
 * ns_self is initial-exec TLS, so its offset comes from the GOT.
 */
_Static_assert(offsetof(struct ns_thread, tag) == 0,
	       "free reads ns_self.tag at offset 0");
_Static_assert(NS_CHUNK_SHIFT == 21, "free shifts by NS_CHUNK_SHIFT");
__asm__(
"	.pushsection .text\n"
"	.globl	free\n"
"	.type	free, @function\n"
"	.p2align 6\n"
"free:\n"
"	.cfi_startproc\n"
"	movq	ns_tags(%rip), %rax\n"      /* NULL: passing through */
"	testq	%rax, %rax\n"
"	je	nsje_free@PLT\n"
"	movq	%rdi, %rdx\n"
"	shrq	$21, %rdx\n"
"	movzbl	(%rax,%rdx), %eax\n"       /* the block's tag */
"	movq	ns_self@GOTTPOFF(%rip), %rdx\n"
"	cmpb	%al, %fs:(%rdx)\n"          /* this thread's */
"	je	nsje_free@PLT\n"
"	testb	%al, %al\n"                 /* untagged */
"	je	nsje_free@PLT\n"
"	movzbl	%al, %esi\n"               /* another node's: its tag */
"	jmp	ns_free_foreign@PLT\n"
"	.cfi_endproc\n"
"	.size	free, .-free\n"
"	.popsection\n");
#else
NS_EXPORT void free(void *p)
{
	free_checked(p);
}
#endif

NS_EXPORT void *realloc(void *p, size_t n)
{
	return ns_dispatch.realloc(p, n);
}

NS_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t n;

	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

/* ------------------------------------------------------------ aligned */

/* glibc (2.36) rounds an alignment that is not a power of two up to the
 * next one instead of failing, in memalign and aligned_alloc alike. */
static size_t glibc_alignment(size_t align)
{
	if (align <= sizeof(void *))
		return sizeof(void *);
	if ((align & (align - 1)) == 0)
		return align;
	if (align > (SIZE_MAX >> 1) + 1)
		return 0;
	return (size_t)1 << (64 - __builtin_clzll((unsigned long long)align));
}

/* All aligned allocations end here; align is a power of two. jemalloc
 * 5.3's memalign(a, 0) returns a block that is not aligned (upstream fixed
 * it after 5.3): size 0 asks for 1 byte, which glibc's minimum block also
 * holds. */
static void *aligned(size_t align, size_t n)
{
	if (n == 0)
		n = 1;
	if (is_large(n))
		return ns_large_alloc(n, align, false);
	return enomem(nsje_memalign(align, n), n);
}

NS_EXPORT void *memalign(size_t align, size_t n)
{
	size_t a = glibc_alignment(align);

	if (a == 0) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(a, n);
}

NS_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

NS_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	int saved = errno;
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	if (!is_large(n))
		return nsje_posix_memalign(out, align, n);
	p = ns_large_alloc(n, align, false);
	errno = saved; /* posix_memalign reports through its result only */
	if (p == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

NS_EXPORT void *valloc(size_t n)
{
	return aligned(page_size(), n);
}

NS_EXPORT void *pvalloc(size_t n)
{
	size_t page = page_size(), rounded;

	if (n > SIZE_MAX - page) {
		errno = ENOMEM;
		return NULL;
	}
	rounded = n == 0 ? page : (n + page - 1) & ~(page - 1);
	return aligned(page, rounded);
}

/* ------------------------------------------------------------ C23, glibc */

/* The size is not handed to jemalloc's sized free: a wrong size from a
 * buggy caller would corrupt jemalloc's metadata, where glibc ignores it. */
NS_EXPORT void free_sized(void *p, size_t size)
{
	(void)size;
	free(p);
}

NS_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	(void)size;
	free(p);
}

#define NS_STR_(x) #x
#define NS_STR(x) NS_STR_(x)

/* glibc's malloc_trim would trim glibc's (unused) heap: purge ours. The
 * first mallctl of a process passing through may be this one. */
NS_EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	ns_je_ctl_start();
	return nsje_mallctl("arena." NS_STR(MALLCTL_ARENAS_ALL) ".purge", NULL,
			    NULL, NULL, 0) == 0;
}
