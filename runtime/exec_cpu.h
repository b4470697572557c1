// runtime/exec_cpu.h — the CPU backend's plan executor.
//
// A CpuExec runs one Plan (compiler/plan.h) of one IrGraph on the CPU: it
// allocates, once, the activation arena for up to max_batch images, the fixed
// region and the kernels' workspaces, then cpu_exec_run executes the plan's
// steps in order, dispatching on each node's kind to the kernels of
// cpu_kernels.h. Nothing is allocated per step.
//
// Parameters, gradients and buffers are the caller's flat arrays
// (compiler/params.h): parameter p of the graph's ParamTable lives at
// params + info.offset (its gradient at grads + info.offset) when trainable,
// at buffers + info.offset when a buffer (BN running statistics). Backward
// nodes write (or, with their accumulate bit, add to) the gradient slots.
//
// Lifetime: the graph, its ParamTable and the plan must outlive the CpuExec.
#ifndef NAO_EXEC_CPU_H
#define NAO_EXEC_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/ir.h"
#include "compiler/plan.h"
#include "runtime/threadpool.h"

// What a step depends on beyond the tensors.
typedef struct {
  long long step;         // global step t, 0-based: drop-path schedule, mask keys
  long long total_steps;  // T of the drop-path schedule (<= 0: keep its final value)
  uint64_t seed;          // run seed: mask key = cpu_mask_key(seed, step, node)
  int training;           // 0: dropout and drop-path pass their input through
} RunState;

typedef struct CpuExec CpuExec;

// Checks the graph and plan against the kinds' contract (ir.h) and allocates
// everything. threads <= 0: tp_default_threads(). Returns NULL with a message
// in err (naming the node and what is wrong) for a graph or plan it cannot run.
// Sets OpenBLAS to run single-threaded (cpu_blas_single_thread).
CpuExec *cpu_exec_create(const IrGraph *g, const Plan *p, int max_batch, int threads, char *err,
                         size_t errlen);
void cpu_exec_free(CpuExec *ex);  // NULL is fine

// Runs every step for `batch` images (1..max_batch). The input and labels must
// have been set. grads may be NULL for a forward-only graph. Returns 0, or -1
// with cpu_exec_error() set (e.g. a label outside [0, classes)).
int cpu_exec_run(CpuExec *ex, int batch, const RunState *rs, float *params, float *grads,
                 float *buffers);
const char *cpu_exec_error(const CpuExec *ex);

// Address of tensor t's first element for `batch` images, and its sample
// stride in floats (0 for unbatched tensors).
float *cpu_exec_tensor(CpuExec *ex, int t, int batch, size_t *sample_stride);
// Copy (batch, C, H, W) images into the graph's input / batch int32 labels into
// its labels tensor (which the plan stores in float-sized slots). Tensor
// addresses depend on the batch size: set them for the batch that will run.
void cpu_exec_set_input(CpuExec *ex, const float *x, int batch);
void cpu_exec_set_labels(CpuExec *ex, const int32_t *labels, int batch);
// Copy tensor t out as a dense (batch, c*h*w) array (unbatched: c*h*w floats).
void cpu_exec_read(CpuExec *ex, int t, int batch, float *out);
// The graph's loss tensor after a run (0 when the graph has none).
float cpu_exec_loss(CpuExec *ex);

// Makes every later run compute convolutions with `algo` (a CpuConvAlgo of
// cpu_kernels.h; CPU_CONV_AUTO, the best for the CPU, is the default), for
// tests and benchmarks. Grows the workspace when the choice needs more.
void cpu_exec_set_conv_algo(CpuExec *ex, int algo);

// Profiling: when ms is not NULL, every later cpu_exec_run adds the time of
// plan step k to ms[k] (the plan's n_steps entries, zeroed by the caller):
// wall-clock time, or with cpu_clock the calling thread's CPU time (exact
// for one thread on a busy machine). NULL turns it off.
void cpu_exec_set_profile(CpuExec *ex, double *ms, int cpu_clock);

ThreadPool *cpu_exec_pool(CpuExec *ex);      // for the optimizer kernels
size_t cpu_exec_bytes(const CpuExec *ex);   // arena + fixed region + workspaces
int cpu_exec_max_batch(const CpuExec *ex);

#endif
