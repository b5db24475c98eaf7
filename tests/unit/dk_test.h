/* dk_test: the tiny assert macros of the unit tests.
 * A test file defines tests as `static void test_x(void)` and lists them in main()
 * with DK_RUN(test_x); DK_TEST_MAIN_END prints "name: N checks, F failed" and
 * returns 1 when any check failed. Checks never abort, so one run shows every failure. */
#ifndef DK_TEST_H
#define DK_TEST_H

#include <stdio.h>
#include <string.h>
#include <math.h>

static int dk_test_checks, dk_test_failed;

#define DK_CHECK(cond) do { dk_test_checks++; if (!(cond)) { dk_test_failed++; \
    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define DK_CHECK_INT(a, b) do { long long dk_a_ = (long long)(a), dk_b_ = (long long)(b); \
    dk_test_checks++; if (dk_a_ != dk_b_) { dk_test_failed++; \
    fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, dk_a_, dk_b_); } } while (0)

#define DK_CHECK_STR(a, b) do { const char *dk_a_ = (a), *dk_b_ = (b); dk_test_checks++; \
    if (!dk_a_ || !dk_b_ || strcmp(dk_a_, dk_b_) != 0) { dk_test_failed++; \
    fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b, \
            dk_a_ ? dk_a_ : "(null)", dk_b_ ? dk_b_ : "(null)"); } } while (0)

#define DK_CHECK_NEAR(a, b, tol) do { double dk_a_ = (a), dk_b_ = (b); dk_test_checks++; \
    if (!(fabs(dk_a_ - dk_b_) <= (tol))) { dk_test_failed++; \
    fprintf(stderr, "%s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", __FILE__, __LINE__, #a, #b, \
            (double)(tol), dk_a_, dk_b_); } } while (0)

#define DK_RUN(fn) do { int dk_before_ = dk_test_failed; fn(); \
    if (dk_test_failed != dk_before_) fprintf(stderr, "  in %s\n", #fn); } while (0)

#define DK_TEST_MAIN_END(name) do { printf("%s: %d checks, %d failed\n", name, dk_test_checks, \
    dk_test_failed); return dk_test_failed ? 1 : 0; } while (0)

#endif
