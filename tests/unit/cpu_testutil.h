// tests/unit/cpu_testutil.h — support for the CPU backend's unit tests
// (test_cpu_*.c): random data, comparisons against float64 references,
// strided "view" buffers whose gaps must stay untouched, and a simple Plan that
// lays every tensor of a hand-built IrGraph out disjointly (no reuse).
#ifndef NAO_CPU_TESTUTIL_H
#define NAO_CPU_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "compiler/ir.h"
#include "compiler/plan.h"

extern int cput_failures;

#define CPUT_CHECK(cond, ...)                                       \
  do {                                                              \
    if (!(cond)) {                                                  \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                 \
      fputc('\n', stderr);                                          \
      cput_failures++;                                              \
    }                                                               \
  } while (0)

// Uniform floats in [lo, hi) from a seed (xoshiro of runtime/rng.h).
void cput_fill(float *x, size_t n, uint64_t seed, float lo, float hi);

// A batch of n samples of `numel` floats at sample stride ss = numel + gap,
// with the gaps (and a tail guard) filled with NaN: kernels must neither read
// them (NaN would spread into results) nor write them.
typedef struct {
  float *base;  // the allocation
  float *p;     // first sample
  int n;
  size_t numel, ss, total;
} CputView;

CputView cput_view(int n, size_t numel, size_t gap, uint64_t seed);  // random values
void cput_view_free(CputView *v);
int cput_view_gaps_intact(const CputView *v);  // 1 when every gap float is still NaN
// Dense (n, numel) copies in and out of a view.
void cput_view_get(const CputView *v, float *dense);
void cput_view_get_d(const CputView *v, double *dense);
void cput_view_set(CputView *v, const float *dense);

// Largest |got - want| / (atol + rtol*|want|) over n values; <= 1 passes.
double cput_err(const float *got, const double *want, size_t n, double atol, double rtol);
// Checks cput_err <= 1 and reports the worst element with `what`.
void cput_close(const char *what, const float *got, const double *want, size_t n, double atol,
                double rtol);
// Max |want| (for scaling atol).
double cput_maxabs(const double *x, size_t n);

// A plan for g: steps 0..n_nodes-1 in order, every non-view tensor its own
// block (batched: arena, N samples at stride numel; unbatched: fixed region),
// views at their base's location plus the channel offset.
void cput_plan_simple(const IrGraph *g, Plan *p);
void cput_plan_free(Plan *p);

#endif
