/*
 * The libm functions jemalloc's heap profiler calls, under the names
 * shim/jemalloc.syms gives its references (shim/prof_math.c, shim/prof.c).
 */
#ifndef NUMASHIM_SHIM_PROF_MATH_H
#define NUMASHIM_SHIM_PROF_MATH_H

double nsje_log(double x);
double nsje_exp(double x);
double nsje_round(double x);

#endif
