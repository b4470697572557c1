// tests/unit/ir_ref.h — the reference interpreter of IrGraphs: the executable
// semantics of every IR kind, in double precision, with naive loops.
//
// This is the oracle that the fast CPU kernels and the CUDA kernels are checked
// against, and that the gradient checks differentiate by finite differences.
// It is written for clarity and exactness, one function per kind (ir_ref.c:
// forward kinds, ir_ref_bwd.c: backward kinds), and follows compiler/ir.h to
// the letter. Where ir.h leaves a choice open, the choice made here is the
// definition (and is repeated in docs/autodiff-and-plan.md):
//  - conv/pool geometry: out = (in + p_begin + p_end - k) / s + 1 (floor); input
//    row = out_row * s - p_top + k_row; rows/cols outside [0, H) read 0 (conv,
//    padded-and-counted pool) or are skipped (pool with pad_counted 0).
//  - max pool ties: the first maximum in row-major window order takes the
//    gradient (PyTorch's rule); with pad_counted 1 a padded cell (value 0) can
//    be that maximum, and its gradient is dropped.
//  - BN train: normalise with the biased batch variance over (N, H, W);
//    out1 = mean, out2 = 1/sqrt(var + eps); when update_running is set, running
//    mean/var += momentum * (batch - running), the variance unbiased by
//    M/(M-1), M = N*H*W (biased when M = 1). BN eval: running statistics.
//  - masks: element i of a mask is kept iff rng_hash_uniform(key, i) < keep_f,
//    keep_f = (float)keep; kept elements are 1/keep_f, others 0. The counter i
//    is the element's flat index in the batched tensor (n * C*H*W + j) for
//    dropout, the sample n for drop-path. The key of each node comes from the
//    run state (RefRun). Drop-path keep at step t of T for cell i of n_cells:
//    max(keep, 1 - (t+1)/T * (i+1)/n_cells * (1 - keep)), in double.
//  - xent: q = (1-eps) onehot(label) + eps/K, loss = weight * mean_n sum_k
//    -q_k log softmax_k; dlogits = weight / N * (softmax - q).
//  - accumulate bit k: output k is added to instead of written; bit
//    IR_MAX_OUT + k likewise for the gradient of parameter k.
//  - concat: copying an input that already is the output's slice (the in-place
//    concats of ir_concat_to_views) writes the values it holds: no change.
//
// Storage: every root tensor its own double block (filled with NaN at init, so
// a read of something never written shows up), views resolved to their root;
// or, with ref_init_planned, one arena laid out exactly as a Plan says, to
// check plans: same kernels, the plan's addresses. Parameters, gradients and
// buffers are double arrays in the ParamTable's layout.
#ifndef NAO_TESTS_IR_REF_H
#define NAO_TESTS_IR_REF_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/ir.h"
#include "compiler/plan.h"

typedef struct {
  long step, total_steps;  // drop-path schedule: step t (0-based) of T
  uint64_t seed;           // default mask key of node i: ref_mask_key(seed, step, i)
  // When set, the mask key of node `node` (overrides the default).
  uint64_t (*mask_key)(const void *ctx, int node);
  const void *mask_ctx;
  int freeze_buffers;      // 1: BN never updates running statistics
} RefRun;

typedef struct {
  const IrGraph *g;
  int batch;
  double **ptr;            // per tensor: its first element of sample 0 (NULL: no storage)
  size_t *stride;          // per tensor: elements between samples (0: unbatched)
  double *store;           // every tensor's storage
  size_t store_len;
  double *params, *grads, *buffers;  // ParamTable layout (trainable, trainable, buffers)
  uint64_t decisions;      // hash of the discrete choices of the nodes run (relu signs,
                           //   max-pool argmaxes), to spot finite differences across a kink
} RefState;

uint64_t ref_mask_key(uint64_t seed, long step, int node);

// Separate storage per root tensor, all NaN; params/grads/buffers NaN too.
void ref_init(RefState *s, const IrGraph *g, int batch);
// One arena of plan->arena_per_image * batch doubles plus the fixed region,
// tensors where the plan puts them, all NaN. Tensors the plan does not place
// get no storage.
void ref_init_planned(RefState *s, const IrGraph *g, const Plan *plan, int batch);
void ref_free(RefState *s);

// Element j of sample n of tensor t (views resolved).
double *ref_at(const RefState *s, int t, int n, size_t j);
void ref_read(const RefState *s, int t, double *dst);        // (N, numel) or (numel)
void ref_write(RefState *s, int t, const double *src);
void ref_set_labels(RefState *s, int t, const int *labels);  // N labels

// Runs node i / nodes [from, to) in index order / the plan's steps. Returns 0,
// or -1 with a message (a shape the kind's contract does not allow, a label
// out of range, a missing storage).
int ref_run_node(RefState *s, const RefRun *run, int i, char *err, size_t errlen);
int ref_run(RefState *s, const RefRun *run, int from, int to, char *err, size_t errlen);
int ref_run_plan(RefState *s, const RefRun *run, const Plan *plan, char *err, size_t errlen);

// ---------------------------------------------------------------- internals
// Shared by ir_ref.c and ir_ref_bwd.c.
typedef struct {
  RefState *s;
  const RefRun *run;
  const IrNode *n;
  int node;                      // its index (mask keys)
  int N;
  double *out[IR_MAX_OUT];       // per output: N * numel (or numel) scratch, zeroed
  double *pgrad[IR_MAX_PARAM];   // per parameter gradient: numel scratch, zeroed
  char *err;
  size_t errlen;
} RefCtx;

// Input k of the node: element j of sample n.
double ref_in(const RefCtx *c, int k, int n, size_t j);
const IrTensor *ref_tin(const RefCtx *c, int k);
const IrTensor *ref_tout(const RefCtx *c, int k);
const double *ref_param(const RefCtx *c, int k);   // trainable value or buffer
int ref_fail(RefCtx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ref_decide(RefCtx *c, uint64_t v);

int ref_conv_bwd_data(RefCtx *c);
int ref_conv_bwd_filter(RefCtx *c);
int ref_bn_bwd(RefCtx *c);
int ref_relu_bwd(RefCtx *c);
int ref_pool_bwd(RefCtx *c);
int ref_gap_bwd(RefCtx *c);
int ref_linear_bwd(RefCtx *c);
int ref_mask_bwd(RefCtx *c);
int ref_xent_bwd(RefCtx *c);
int ref_accum(RefCtx *c);

// Pool geometry shared by forward and backward: the input cells of window
// (oy, ox) in row-major order; returns the count; cells outside the image
// have inside[k] = 0.
int ref_pool_window(const IrPoolAttr *a, int H, int W, int oy, int ox, int *ys, int *xs,
                    int *inside);

#endif
