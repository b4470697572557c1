// runtime/exec_cpu_internal.h — the CpuExec structure and the helpers shared
// by exec_cpu.c (allocation, dispatch) and exec_cpu_check.c (validation).
#ifndef NAO_EXEC_CPU_INTERNAL_H
#define NAO_EXEC_CPU_INTERNAL_H

#include "runtime/cpu_kernels.h"
#include "runtime/exec_cpu.h"

struct CpuExec {
  const IrGraph *g;
  const Plan *p;
  int max_batch;
  ThreadPool *tp;
  float *arena, *fixed, *ws;
  size_t arena_floats, fixed_floats, ws_floats;
  unsigned char *concat_is_view;  // per node: a CONCAT whose inputs are views of its output
  char err[512];
  // The run in progress.
  int batch;
  const RunState *rs;
  float *params, *grads, *buffers;
  int conv_algo;  // CpuConvAlgo of every convolution (cpu_exec_set_conv_algo)
  // Profiling (cpu_exec_set_profile): per-step times added here, or NULL.
  double *prof_ms;
  int prof_cpu_clock;
};

static inline const IrTensor *ex_t(const CpuExec *ex, int t) { return &ex->g->tensors[t]; }

static inline int ex_batched(const IrTensor *t) {
  return t->kind == IR_T_ACT || t->kind == IR_T_LABELS;
}

// The node whose attributes a node uses: a backward node's forward node.
static inline const IrNode *ex_attr_node(const CpuExec *ex, const IrNode *nd) {
  if (nd->kind >= IR_CONV_BWD_DATA && nd->fwd >= 0 && nd->fwd < ex->g->n_nodes)
    return &ex->g->nodes[nd->fwd];
  return nd;
}

// Checks node `i` (kind, arity, shapes, accumulate bits, parameters).
// Returns 0, or -1 with a message in ex->err.
int ex_check_node(CpuExec *ex, int i);
// Checks the plan location of tensor t for batches 1..max_batch.
int ex_check_loc(CpuExec *ex, int node, int t);
// Workspace floats node i needs with max_batch images.
size_t ex_node_ws(const CpuExec *ex, int i);
CpuConvShape ex_conv_shape(const IrConvAttr *a, const IrTensor *x, const IrTensor *y, int n);

#endif
