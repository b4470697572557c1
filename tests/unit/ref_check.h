// tests/unit/ref_check.h — checks built on the reference interpreter, shared by
// the autodiff, gradient-check and plan tests:
//  - fd_check: central finite differences of the loss (double precision)
//    against the gradients the backward nodes compute;
//  - pc_plan_matches_ref: the graph run through a Plan (one arena, the plan's
//    addresses, reuse) gives bit for bit what it gives with separate storage;
//  - a tiny check macro for test files (each defines `static int t_failures`).
#ifndef NAO_TESTS_REF_CHECK_H
#define NAO_TESTS_REF_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "compiler/ir.h"
#include "tests/unit/ir_ref.h"

#define T_CHECK(cond, ...)                                                     \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      t_failures++;                                                            \
    }                                                                          \
  } while (0)

typedef struct {
  double h;          // central difference step
  double rtol, atol; // |fd - ad| <= atol + rtol * max(|fd|, |ad|)
  int max_elems;     // elements sampled per parameter or tensor (all when fewer)
  uint64_t seed;     // which elements
} FdOptions;

typedef struct {
  int checked;       // elements compared
  int skipped;       // elements whose +-h runs took other discrete choices (a kink)
  int zero_checked;  // elements of parameters with no gradient written, FD checked ~0
  double max_err;    // largest |fd - ad| / (atol + rtol * max(|fd|, |ad|)) seen (<= 1 passes)
  double max_grad;   // largest |ad| seen
} FdStats;

void fd_defaults(FdOptions *o);

// s: separate storage (ref_init), parameters, buffers, input and labels set.
// Runs the whole graph once (analytic gradients), then compares, for sampled
// elements, every trainable parameter the forward nodes use (those whose
// gradient no node writes must have a zero difference quotient) and every
// forward tensor in `tensors` (its gradient tensor is the one with grad_of set
// to it). Runs use run->freeze_buffers = 1. Returns 0, or -1 with the first
// mismatch in err.
int fd_check(const IrGraph *g, RefState *s, const RefRun *run, const int *tensors, int n_tensors,
             const FdOptions *o, FdStats *st, char *err, size_t errlen);

// Builds the plan of g (reuse on or off), checks it with plan_verify, then
// runs g with batch `batch` on random parameters and data (seed) twice: with
// separate storage and through the plan. Logits, aux logits, loss, every
// parameter gradient and buffer must be equal exactly (same kernels, same
// order: any difference is a planning bug), and finite. Returns 0 or -1.
int pc_plan_matches_ref(const IrGraph *g, int reuse, int batch, uint64_t seed, const RefRun *run,
                        char *err, size_t errlen);

#endif
