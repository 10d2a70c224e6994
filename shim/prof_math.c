/*
 * log(), exp() and round() for jemalloc's heap profiler, so that
 * libnumashim.so does not depend on libm (see shim/prof.c for why).
 * libm cannot stand in: it is the very load we avoid, and dlopen from
 * inside malloc is not safe. Results are within 2 units in the last
 * place of libm's (tests/unit/prof_math.c), far finer than sampling needs.
 * No shim state here: the unit test compiles this file alone.
 */
#include "shim/prof_math.h"

#include <math.h>

#define NS_HIDDEN __attribute__((visibility("hidden")))

/* ------------------------------------------------------------ log, exp */

static const double LN2_HI = 6.93147180369123816490e-01; /* ln 2, high bits */
static const double LN2_LO = 1.90821492927058770002e-10; /* ln 2 - LN2_HI */

NS_HIDDEN double nsje_log(double x)
{
	double m, s, s2, sum;
	int e;

	if (isnan(x) || x < 0)
		return NAN;
	if (x == 0)
		return -INFINITY;
	if (isinf(x))
		return x;
	/* x = m * 2^e with m in [sqrt(1/2), sqrt(2)) */
	m = frexp(x, &e);
	if (m < 0.70710678118654752440) {
		m *= 2;
		e--;
	}
	/* log m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716: the series'
	 * terms shrink by s^2 <= 0.0295 each, 13 of them reach 1e-20. */
	s = (m - 1) / (m + 1);
	s2 = s * s;
	sum = 0;
	for (int k = 27; k >= 3; k -= 2) /* Horner, smallest term first */
		sum = (sum + 1.0 / k) * s2;
	sum = s + s * sum;
	return (double)e * LN2_LO + 2 * sum + (double)e * LN2_HI;
}

NS_HIDDEN double nsje_exp(double x)
{
	double k, r, sum;

	if (isnan(x))
		return x;
	if (x > 709.782712893383973096)
		return INFINITY;
	if (x < -745.13321910194110842)
		return 0;
	/* x = k ln2 + r, |r| <= ln2/2: exp x = 2^k exp r; the Taylor terms
	 * of exp r fall below 1e-19 by the 18th. */
	k = x / 0.69314718055994530942;
	k = (double)(long)(k < 0 ? k - 0.5 : k + 0.5); /* |k| < 1100 */
	r = (x - k * LN2_HI) - k * LN2_LO;
	sum = 0;
	for (int n = 18; n >= 2; n--) /* Horner: r/n (1 + r/(n+1) (...)) */
		sum = r / n * (1 + sum);
	sum = 1 + (r + r * sum);
	return ldexp(sum, (int)k);
}

/* Half-way cases away from zero, as C's round(). */
NS_HIDDEN double nsje_round(double x)
{
	double t;

	if (!(fabs(x) < 4503599627370496.0)) /* 2^52: already whole; NaN */
		return x;
	t = (double)(long long)x;
	if (x - t >= 0.5)
		t += 1;
	else if (t - x >= 0.5)
		t -= 1;
	return t == 0 ? copysign(0.0, x) : t;
}
