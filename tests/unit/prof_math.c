/*
 * shim/prof_math.c: the log, exp and round that stand in for libm's in
 * jemalloc's heap profiler, checked against libm itself over the inputs
 * jemalloc gives them (probabilities in (0, 1], negative ratios) and well
 * beyond, including the special values.
 */
#include "shim/prof_math.h"
#include "tests/unit/unit.h"

#include <math.h>

/* Units in the last place between a and b (both finite, same sign). */
static double ulps(double a, double b)
{
	if (a == b)
		return 0;
	return fabs(a - b) / fabs(nextafter(b, INFINITY) - b);
}

static uint64_t rng = 88172645463325252ULL;

static double uniform(void) /* in (0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static void log_matches_libm(void **state)
{
	double worst = 0;

	for (int i = 0; i < 200000; i++) {
		/* magnitudes from 1e-300 to 1e300, and (0, 1) itself */
		double x = i & 1 ? uniform() : exp((uniform() - 0.5) * 1380);
		double u = ulps(nsje_log(x), log(x));

		if (u > worst)
			worst = u;
	}
	print_message("log: worst %.2f ulp\n", worst);
	assert_true(worst <= 2);
	/* jemalloc's own argument: 1 - 2^-lg_prof_sample (default 19) */
	assert_true(ulps(nsje_log(1.0 - 1.0 / 524288), log(1.0 - 1.0 / 524288)) <= 2);
	assert_true(nsje_log(1.0) == 0);
	assert_true(nsje_log(0.0) == -INFINITY);
	assert_true(isnan(nsje_log(-1.0)));
	assert_true(isnan(nsje_log(NAN)));
	assert_true(nsje_log(INFINITY) == INFINITY);
	assert_true(ulps(nsje_log(4.9e-324), log(4.9e-324)) <= 2); /* subnormal */
}

static void exp_matches_libm(void **state)
{
	double worst = 0;

	for (int i = 0; i < 200000; i++) {
		double x = (uniform() - 0.5) * 1400; /* -700 .. 700 */
		double u;

		if (i & 1)
			x = -uniform() * 20; /* jemalloc's exp(-size/rate) */
		u = ulps(nsje_exp(x), exp(x));
		if (u > worst)
			worst = u;
	}
	print_message("exp: worst %.2f ulp\n", worst);
	assert_true(worst <= 2);
	assert_true(nsje_exp(0) == 1);
	assert_true(nsje_exp(710) == INFINITY);
	assert_true(nsje_exp(-746) == 0);
	assert_true(isnan(nsje_exp(NAN)));
	assert_true(nsje_exp(-INFINITY) == 0);
	assert_true(nsje_exp(INFINITY) == INFINITY);
}

static void round_matches_libm(void **state)
{
	static const double x[] = {
		0.5, -0.5, 1.5, -1.5, 2.5, 0.49999999999999994, -0.49999999999999994,
		2.4999999999999996, 1e15 + 0.5, 4503599627370495.5, 4503599627370496.0,
		1e300, -1e300, 0.0, -0.0, 3.7, -3.7, 123456.49, -123456.51,
	};

	for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++) {
		double a = nsje_round(x[i]), b = round(x[i]);

		print_message("round(%.17g) = %.17g, libm %.17g\n", x[i], a, b);
		assert_true(a == b && signbit(a) == signbit(b));
	}
	assert_true(isnan(nsje_round(NAN)));
	assert_true(nsje_round(-INFINITY) == -INFINITY);
	for (int i = 0; i < 100000; i++) {
		double v = (uniform() - 0.5) * 1e6;

		assert_true(nsje_round(v) == round(v));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(log_matches_libm),
		cmocka_unit_test(exp_matches_libm),
		cmocka_unit_test(round_matches_libm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
