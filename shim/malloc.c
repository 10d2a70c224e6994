/*
 * The exported allocator API.
 *
 * malloc, calloc, posix_memalign, valloc and malloc_usable_size are
 * jemalloc's own, exported unwrapped (see shim/je.h): a wrapper costs a
 * call and a few instructions on every allocation, measured at 1.08-1.10x
 * plain jemalloc in a tight loop (shared/NOTES.md), and the node is kept
 * current out of the allocation path (shim/thread.c).
 *
 * free and realloc are ours: one tag-map load tells whether the block
 * belongs to the calling thread's node; if not, it goes back to its home
 * arena instead of into this thread's cache (origin-aware free).
 *
 * Calls that arrive before numashim's constructor (from ld.so, other
 * libraries' constructors, dlsym) are served by jemalloc itself, which
 * initialises on first use; those blocks live in jemalloc's default arena,
 * carry no tag, and are freed or reallocated later like any other.
 */
#include "shim/shim.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define PAGE_FALLBACK 4096

static inline bool is_foreign(uint8_t tag)
{
	return tag != 0 && tag != ns_self.tag;
}

/* The thread's own tag first: in an active process nearly every block
 * is tagged, so that one compare decides the common case. */
static void free_checked(void *p)
{
	uint8_t t = ns_tag_of(p);

	if (NS_LIKELY(t == ns_self.tag) || t == 0) {
		nsje_free(p);
		return;
	}
	ns_free_foreign(p);
}

/* realloc of another node's block: the new block is this thread's, the old
 * one goes home. glibc semantics: realloc(p, 0) frees p and returns NULL. */
static void *realloc_foreign(void *p, size_t n)
{
	void *q;
	size_t old;

	if (ns_thread_recheck() && !is_foreign(ns_tag_of(p)))
		return nsje_realloc(p, n);
	if (n == 0) {
		ns_free_foreign(p);
		return NULL;
	}
	q = malloc(n);
	if (q == NULL)
		return NULL; /* errno is ENOMEM; p is intact */
	old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	ns_free_foreign(p);
	return q;
}

static void *realloc_checked(void *p, size_t n)
{
	uint8_t t = ns_tag_of(p);

	if (NS_LIKELY(t == ns_self.tag) || t == 0)
		return nsje_realloc(p, n);
	return realloc_foreign(p, n);
}

/*
 * free and realloc dispatch through a pointer: straight to jemalloc until
 * numashim goes active (nothing is tagged before), and for good when it
 * passes through (one node, policy off); with the tag check once per-node
 * arenas exist. The check costs ~7 instructions a call that a one-node
 * machine need not pay; the indirect jump costs one.
 */
struct ns_dispatch ns_dispatch = { nsje_free, nsje_realloc };

void ns_dispatch_checked(void)
{
	__atomic_store_n(&ns_dispatch.realloc, realloc_checked, __ATOMIC_RELEASE);
	__atomic_store_n(&ns_dispatch.free, free_checked, __ATOMIC_RELEASE);
}

NS_EXPORT void free(void *p)
{
	ns_dispatch.free(p);
}

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

NS_EXPORT void *memalign(size_t align, size_t n)
{
	size_t a = glibc_alignment(align);

	if (a == 0) {
		errno = EINVAL;
		return NULL;
	}
	return nsje_memalign(a, n);
}

NS_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

static size_t page_size(void)
{
	static size_t page;

	if (page == 0) {
		long p = sysconf(_SC_PAGESIZE);

		page = p > 0 ? (size_t)p : PAGE_FALLBACK;
	}
	return page;
}

NS_EXPORT void *pvalloc(size_t n)
{
	size_t page = page_size(), rounded;

	if (n > SIZE_MAX - page) {
		errno = ENOMEM;
		return NULL;
	}
	rounded = n == 0 ? page : (n + page - 1) & ~(page - 1);
	return nsje_memalign(page, rounded);
}

/* C23. The size is not handed to jemalloc's sized free: a wrong size from a
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

/* glibc's malloc_trim would trim glibc's (unused) heap: purge ours. */
NS_EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	return nsje_mallctl("arena." NS_STR(MALLCTL_ARENAS_ALL) ".purge", NULL,
			    NULL, NULL, 0) == 0;
}
