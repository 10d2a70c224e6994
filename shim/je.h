/*
 * The private jemalloc linked into libnumashim.so. Its entry points, and
 * its non-standard API, are renamed to nsje_* at build time
 * (shim/jemalloc.syms); only malloc_usable_size keeps its name and is
 * exported as it is. jemalloc's own mmap/munmap calls are renamed to
 * nsje_sys_mmap/nsje_sys_munmap, which go straight to the kernel, so our
 * mmap interposition never sees (or places) jemalloc's extents twice.
 */
#ifndef NUMASHIM_JE_H
#define NUMASHIM_JE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define JEMALLOC_NO_DEMANGLE
#include <jemalloc/jemalloc.h>

#define NS_HIDDEN __attribute__((visibility("hidden")))

NS_HIDDEN void *nsje_malloc(size_t n);
NS_HIDDEN void *nsje_calloc(size_t n, size_t m);
NS_HIDDEN int nsje_posix_memalign(void **out, size_t align, size_t n);
NS_HIDDEN void *nsje_valloc(size_t n);
NS_HIDDEN void nsje_free(void *p);
NS_HIDDEN void *nsje_realloc(void *p, size_t n);
NS_HIDDEN void *nsje_memalign(size_t align, size_t n);
NS_HIDDEN void *nsje_aligned_alloc(size_t align, size_t n);
NS_HIDDEN void *nsje_mallocx(size_t n, int flags);
NS_HIDDEN void *nsje_rallocx(void *p, size_t n, int flags);
NS_HIDDEN void nsje_dallocx(void *p, int flags);
NS_HIDDEN size_t nsje_sallocx(const void *p, int flags);
NS_HIDDEN size_t nsje_nallocx(size_t n, int flags);
NS_HIDDEN int nsje_mallctl(const char *name, void *oldp, size_t *oldlenp,
			   void *newp, size_t newlen);
NS_HIDDEN int nsje_mallctlnametomib(const char *name, size_t *mibp,
				    size_t *miblenp);
NS_HIDDEN int nsje_mallctlbymib(const size_t *mib, size_t miblen, void *oldp,
				size_t *oldlenp, void *newp, size_t newlen);

/* jemalloc 5.3's internal threshold from which blocks go to its huge
 * arena, and which each new arena takes as its purge-at-once size (read
 * and written by shim/je.c and shim/arena.c). */
extern size_t je_oversize_threshold;

/* jemalloc 5.3's experimental.thread.activity_callback (not in its public
 * header): called about every 64 KiB a thread allocates or frees. */
typedef void (*nsje_activity_fn)(void *uctx, uint64_t allocated,
				 uint64_t deallocated);
struct nsje_activity_thunk {
	nsje_activity_fn callback;
	void *uctx;
};

#endif
