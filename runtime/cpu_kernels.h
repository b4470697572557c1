// runtime/cpu_kernels.h — the float32 CPU kernels: forward and backward of every
// IR kind (compiler/ir.h), masks, and the optimizer's array operations.
//
// The kernels know nothing of IrGraph or Plan: each takes explicit shapes and
// strides, so the executor (exec_cpu.c) and the CUDA backend's checks (as CPU
// references) call them alike.
//
// Conventions:
//  - Activations are NCHW float32. Sample n of a tensor starts at p + n*ss,
//    where ss (the "sample stride", in floats) is >= c*h*w: a channel slice of a
//    concatenation has the concatenation's stride. Within a sample the c*h*w
//    floats are contiguous.
//  - `accumulate` != 0: the output is added to (y += f(x)) instead of written.
//  - Outputs never overlap inputs (the plan gives every live tensor its own
//    space); pointers are used as restrict.
//  - `tp` may be NULL (one thread). Kernels that take `ws` need a workspace of
//    the size their *_ws_floats function gives for tp_threads(tp) threads.
//  - Results do not depend on the number of threads: work is split into tasks
//    fixed by the shapes (samples, channels, fixed-size chunks) and partial sums
//    are combined in a fixed order (docs/cpu-backend.md).
//  - GEMMs call OpenBLAS from inside pool tasks and expect it to run on the
//    calling thread: call cpu_blas_single_thread() once before using a pool of
//    more than one thread.
#ifndef NAO_CPU_KERNELS_H
#define NAO_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/threadpool.h"

// Makes OpenBLAS run every call on the calling thread (openblas_set_num_threads(1)).
void cpu_blas_single_thread(void);

// ---------------------------------------------------------------- convolution
typedef struct {
  int n;               // batch
  int ci, h, w;        // input, per sample
  int co, oh, ow;      // output, per sample
  int kh, kw, sh, sw;  // kernel and stride
  int pt, pl;          // top / left padding, negative = crop: the input row of
                       //   output row oy and tap ky is oy*sh - pt + ky; rows and
                       //   columns outside the image read 0. Bottom/right padding
                       //   follow from oh, ow.
  int groups;          // ci and co divisible by it; ci == co == groups: depthwise
  int algo;            // CpuConvAlgo; 0 (AUTO) unless a test wants one path
} CpuConvShape;
// Weights: [co][ci/groups][kh][kw].

// How convolutions are computed. PORTABLE: im2col + OpenBLAS GEMM for dense
// convolutions, C loops for grouped / depthwise ones. AVX2: direct AVX2
// kernels where they apply (docs/cpu-backend.md lists which passes), the
// portable path elsewhere. WINOGRAD (= AUTO on a CPU with AVX2 and FMA): as
// AVX2, but 3x3 stride-1 convolutions of 8 or more channels by Winograd's
// F(2x2, 3x3). They differ in rounding.
typedef enum { CPU_CONV_AUTO = 0, CPU_CONV_PORTABLE, CPU_CONV_AVX2, CPU_CONV_WINOGRAD } CpuConvAlgo;

typedef enum { CPU_CONV_FWD, CPU_CONV_BWD_DATA, CPU_CONV_BWD_FILTER } CpuConvOp;

// Workspace floats for `op` with `threads` threads (0 when none is needed).
size_t cpu_conv_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads);
// y (+)= conv(x, w).                                   x (n,ci,h,w), y (n,co,oh,ow)
void cpu_conv_fwd(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                  const float *w, float *y, size_t y_ss, int accumulate, float *ws);
// dx (+)= conv_transpose(dy, w).                       dy (n,co,oh,ow), dx (n,ci,h,w)
void cpu_conv_bwd_data(ThreadPool *tp, const CpuConvShape *s, const float *dy, size_t dy_ss,
                       const float *w, float *dx, size_t dx_ss, int accumulate, float *ws);
// dw (+)= sum over the batch of dy (x) x.              dw [co][ci/groups][kh][kw]
void cpu_conv_bwd_filter(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                         const float *dy, size_t dy_ss, float *dw, int accumulate, float *ws);

// ---------------------------------------------------------------- batch norm
// x, y: (n, c, hw) with sample strides. Batch statistics are over n*hw values
// per channel: the mean and the biased variance normalise; the running update
// is run = (1-momentum)*run + momentum*batch with the unbiased variance.
typedef struct {
  int n, c, hw;
  float eps, momentum;
} CpuBnShape;

// Training: y = (x - mean) * invstd * gamma + beta with batch statistics.
// mean_out / invstd_out (c floats, may be NULL) receive them for the backward;
// run_mean / run_var are updated when not NULL.
void cpu_bn_fwd_train(ThreadPool *tp, const CpuBnShape *s, const float *x, size_t x_ss,
                      const float *gamma, const float *beta, float *y, size_t y_ss,
                      float *mean_out, float *invstd_out, float *run_mean, float *run_var);
// Evaluation: running statistics.
void cpu_bn_fwd_eval(ThreadPool *tp, const CpuBnShape *s, const float *x, size_t x_ss,
                     const float *gamma, const float *beta, const float *run_mean,
                     const float *run_var, float *y, size_t y_ss);
// Backward through batch statistics (mean, invstd from the forward).
// dgamma / dbeta (+)= per acc_param; dx (+)= per acc_dx (dx may be NULL).
void cpu_bn_bwd_train(ThreadPool *tp, const CpuBnShape *s, const float *x, size_t x_ss,
                      const float *dy, size_t dy_ss, const float *gamma, const float *mean,
                      const float *invstd, float *dx, size_t dx_ss, int acc_dx, float *dgamma,
                      float *dbeta, int acc_param);
// Backward with running statistics (constants): dx = dy * gamma * invstd_run.
void cpu_bn_bwd_eval(ThreadPool *tp, const CpuBnShape *s, const float *x, size_t x_ss,
                     const float *dy, size_t dy_ss, const float *gamma, const float *run_mean,
                     const float *run_var, float *dx, size_t dx_ss, int acc_dx, float *dgamma,
                     float *dbeta, int acc_param);

// ---------------------------------------------------------------- pooling
typedef struct {
  int n, c, h, w, oh, ow;
  int kh, kw, sh, sw;
  int pt, pl;       // as in CpuConvShape
  int is_max;
  int pad_counted;  // 1: cells outside the image are zeros that take part (max
                    //   sees 0, average divides by kh*kw); 0: they are ignored
                    //   (max over in-image cells, average divides by their count;
                    //   a window with no in-image cell gives 0)
} CpuPoolShape;

void cpu_pool_fwd(ThreadPool *tp, const CpuPoolShape *s, const float *x, size_t x_ss, float *y,
                  size_t y_ss);
// Max: dy goes to the first maximum in window order (row-major over the
// window, cells outside the image included when pad_counted, and then lost);
// average: dy / divisor to every in-image cell of the window.
void cpu_pool_bwd(ThreadPool *tp, const CpuPoolShape *s, const float *x, size_t x_ss,
                  const float *dy, size_t dy_ss, float *dx, size_t dx_ss, int accumulate);

// ---------------------------------------------------------------- global average pool
// y[n][c] (+)= mean of x[n][c][:]; dx[n][c][:] (+)= dy[n][c] / hw.
void cpu_gap_fwd(ThreadPool *tp, int n, int c, int hw, const float *x, size_t x_ss, float *y,
                 size_t y_ss, int accumulate);
void cpu_gap_bwd(ThreadPool *tp, int n, int c, int hw, const float *dy, size_t dy_ss, float *dx,
                 size_t dx_ss, int accumulate);

// ---------------------------------------------------------------- element-wise
// All take n samples of `numel` floats each.
void cpu_relu_fwd(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss, float *y,
                  size_t y_ss);
// dx (+)= dy where the forward output y > 0, else 0.
void cpu_relu_bwd(ThreadPool *tp, int n, size_t numel, const float *y, size_t y_ss,
                  const float *dy, size_t dy_ss, float *dx, size_t dx_ss, int accumulate);
// y (+)= x[0] + x[1] + ... (summed in input order).
void cpu_add(ThreadPool *tp, int n, size_t numel, int n_in, const float *const *x,
             const size_t *x_ss, float *y, size_t y_ss, int accumulate);
// y (+)= x.
void cpu_copy(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss, float *y,
              size_t y_ss, int accumulate);
// y (+)= x * mask. mask_numel is numel (one factor per element) or 1 (one per
// sample, drop-path).
void cpu_mask_mul(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss,
                  const float *mask, size_t mask_numel, size_t mask_ss, float *y, size_t y_ss,
                  int accumulate);

// ---------------------------------------------------------------- dropout and drop-path
// The key of a node's masks at one step: the same seed, step and node give the
// same masks on any thread count (and on the GPU, which computes the same key).
uint64_t cpu_mask_key(uint64_t seed, long long step, int node);
// Drop-path keep probability of cell `cell` of n_cells at step t of T (0-based):
// max(keep, 1 - (t+1)/T * (cell+1)/n_cells * (1 - keep)); T <= 0 gives keep.
float cpu_droppath_keep(float keep, int cell, int n_cells, long long t, long long total);
// Dropout: mask element i (= sample*numel + j) is 1/keep when
// rng_hash_uniform(key, i) < keep, else 0; y = x * mask. keep >= 1: mask 1.
void cpu_dropout_fwd(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss, float *y,
                     size_t y_ss, float *mask, size_t mask_ss, float keep, uint64_t key);
// Drop-path: one draw per sample (i = sample index), mask (n floats at stride
// mask_ss) as for dropout; y = x * mask[sample].
void cpu_droppath_fwd(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss, float *y,
                      size_t y_ss, float *mask, size_t mask_ss, float keep, uint64_t key);

// ---------------------------------------------------------------- linear
// x (n, d) at stride x_ss, w [k][d], b [k] (may be NULL), y (n, k) at y_ss.
void cpu_linear_fwd(ThreadPool *tp, int n, int d, int k, const float *x, size_t x_ss,
                    const float *w, const float *b, float *y, size_t y_ss, int accumulate);
// dx (+)= dy w (dx may be NULL); dw (+)= dy^T x; db (+)= sum_n dy (db may be NULL).
void cpu_linear_bwd(ThreadPool *tp, int n, int d, int k, const float *x, size_t x_ss,
                    const float *dy, size_t dy_ss, const float *w, float *dx, size_t dx_ss,
                    int acc_dx, float *dw, int acc_dw, float *db, int acc_db);

// ---------------------------------------------------------------- cross-entropy
// Label-smoothed cross-entropy: q = (1-eps)*onehot(label) + eps/k,
// *loss = weight * mean_n sum_j -q_j log softmax_j. softmax (n, k) at sm_ss is
// kept for the backward (may be NULL). Labels are int32 at stride lab_ss.
// Returns -1, or the first sample whose label is outside [0, k) (then nothing
// is written).
int cpu_xent_fwd(int n, int k, const float *logits, size_t lg_ss, const int32_t *labels,
                 size_t lab_ss, float eps, float weight, float *loss, float *softmax,
                 size_t sm_ss);
// dlogits (+)= weight * (softmax - q) / n. Returns as cpu_xent_fwd.
int cpu_xent_bwd(ThreadPool *tp, int n, int k, const float *softmax, size_t sm_ss,
                 const int32_t *labels, size_t lab_ss, float eps, float weight, float *dlogits,
                 size_t dl_ss, int accumulate);

// ---------------------------------------------------------------- optimizer arrays
// PyTorch SGD (dampening 0, no Nesterov): d = g + wd*p; buf = first ? d :
// momentum*buf + d; p -= lr*buf.
void cpu_sgd_step(ThreadPool *tp, float *p, const float *g, float *buf, size_t n, float lr,
                  float momentum, float wd, int first);
// Sum of squares of x (in double, summed in fixed chunks): the squared L2 norm.
double cpu_sumsq(ThreadPool *tp, const float *x, size_t n);
// clip_grad_norm_: the factor min(1, max_norm / (norm + 1e-6)).
float cpu_clip_coef(double norm, float max_norm);
// x *= s.
void cpu_scale(ThreadPool *tp, float *x, size_t n, float s);

#endif
