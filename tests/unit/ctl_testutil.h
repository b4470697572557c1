// tests/unit/ctl_testutil.h — small helpers shared by the controller and search
// unit tests: a CHECK macro that counts failures, and a central-difference
// gradient check in double.
#ifndef NAO_CTL_TESTUTIL_H
#define NAO_CTL_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int t_failures;

#define CHECK(cond, ...)                                          \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "%s:%d: check failed: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                               \
      fputc('\n', stderr);                                        \
      t_failures++;                                               \
    }                                                             \
  } while (0)

typedef double (*TObjective)(void *ctx);

// Compares analytic[i] with (f(x + h e_i) - f(x - h e_i)) / 2h for every i and
// fails on |a - num| > atol + rtol * max(|a|, |num|). Prints the worst case.
static inline int t_gradcheck(const char *what, double *x, const double *analytic, size_t n, TObjective f,
                       void *ctx) {
  const double h = 1e-6, atol = 1e-8, rtol = 1e-5;
  double worst = 0;
  size_t worst_i = 0, bad = 0;
  for (size_t i = 0; i < n; i++) {
    double save = x[i];
    x[i] = save + h;
    double fp = f(ctx);
    x[i] = save - h;
    double fm = f(ctx);
    x[i] = save;
    double num = (fp - fm) / (2 * h), a = analytic[i];
    double scale = fmax(fabs(a), fabs(num));
    double excess = fabs(a - num) / (atol + rtol * scale);
    if (excess > 1) {
      if (bad < 5)
        fprintf(stderr, "  %s[%zu]: analytic %.10g numeric %.10g\n", what, i, a, num);
      bad++;
    }
    if (excess > worst) worst = excess, worst_i = i;
  }
  printf("gradcheck %-28s %5zu values, worst at [%zu]: %.3f of tolerance%s\n", what, n, worst_i, worst,
         bad ? "  FAIL" : "");
  CHECK(bad == 0, "%s: %zu of %zu gradient values differ from central differences", what, bad, n);
  return bad == 0;
}

static inline double t_uniform(unsigned long long *s) {  // splitmix64 -> [-1, 1)
  unsigned long long z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static inline void t_fill(double *x, size_t n, double scale, unsigned long long *s) {
  for (size_t i = 0; i < n; i++) x[i] = scale * t_uniform(s);
}

#endif
