/*
 * What jemalloc's heap profiler needs from libm and libgcc_s, without
 * making every process load them.
 *
 * jemalloc calls log(), exp() and round() (sampling intervals, profile
 * scaling) and _Unwind_Backtrace()/_Unwind_GetIP() (stack traces) only
 * when its profiler is on (MALLOC_CONF=prof:true), yet linking them made
 * both libraries a dependency of libnumashim.so: loading them cost a short
 * C program 0.12 ms more per start, 18 % of glibc's whole start-up on this
 * host (bench "startup": 400 processes in 0.28 s plain, 0.33 s with the
 * two preloaded). shim/jemalloc.syms points jemalloc's references at ours:
 *  - log, exp and round are computed in shim/prof_math.c;
 *  - the unwinder is libgcc's, opened by our constructor only when the
 *    profiler is on. Backtraces jemalloc asks for before that (its own
 *    start-up "warm the unwinder" call, samples from before main) come
 *    back empty. */
#include "shim/shim.h"
#include "shim/log.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>

/* ------------------------------------------------------------ unwinder */

struct _Unwind_Context;
typedef int (*ns_unwind_trace_fn)(struct _Unwind_Context *, void *);

static struct {
	int (*backtrace)(ns_unwind_trace_fn, void *);
	uintptr_t (*getip)(struct _Unwind_Context *);
	int warned;
} U;

#define URC_END_OF_STACK 5 /* libgcc's _URC_END_OF_STACK */

NS_HIDDEN int nsje_unwind_backtrace(ns_unwind_trace_fn fn, void *arg)
{
	int (*bt)(ns_unwind_trace_fn, void *) =
		__atomic_load_n(&U.backtrace, __ATOMIC_ACQUIRE);

	return bt ? bt(fn, arg) : URC_END_OF_STACK;
}

NS_HIDDEN uintptr_t nsje_unwind_getip(struct _Unwind_Context *ctx)
{
	/* Only reached from a callback the real unwinder called. */
	return U.getip ? U.getip(ctx) : 0;
}

void ns_prof_init(bool prof_on)
{
	void *h, *bt, *ip;

	if (!prof_on)
		return;
	h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_GLOBAL);
	bt = h ? dlsym(h, "_Unwind_Backtrace") : NULL;
	ip = h ? dlsym(h, "_Unwind_GetIP") : NULL;
	if (bt == NULL || ip == NULL) {
		ns_log_once(&U.warned, "libgcc_s.so.1", -ENOENT,
			    "jemalloc's heap profiles will have no stack traces");
		return;
	}
	U.getip = (uintptr_t (*)(struct _Unwind_Context *))ip;
	__atomic_store_n(&U.backtrace, (int (*)(ns_unwind_trace_fn, void *))bt,
			 __ATOMIC_RELEASE);
}
