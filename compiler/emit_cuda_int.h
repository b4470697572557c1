// compiler/emit_cuda_int.h — shared by the emit_cuda*.c files only.
//
// KGen is one kernel being generated: its argument slots (CudaArg, deduplicated,
// in first-use order so that equal structure gives equal text), its head
// (slot declarations, values hoisted per channel, per-sample mask tables) and
// its body, written by a driver (emit_cuda_pw.c, _conv.c, _pool.c, _misc.c).
// The expression generator and the epilogue (the group's pointwise stores and
// reductions at one element) live in emit_cuda_kern.c.
#ifndef NAO_EMIT_CUDA_INT_H
#define NAO_EMIT_CUDA_INT_H

#include <stdint.h>

#include "compiler/emit_cuda.h"
#include "compiler/fuse.h"

// ---------------------------------------------------------------- the build

typedef struct {
  char *name;
  char *pattern;
  char *body;        // signature line onwards with the name as "@NAME@" (hashed)
  char *comment;     // what it serves (not hashed)
  uint64_t hash;
  int block, grid_x, grid_nb, smem, n_args, reduces;
  size_t scratch_fixed, scratch_per_image;
  int n_served;
} KernelRec;

typedef struct {
  char *name;
  int mode;
  IrNode *nodes;
  int n_nodes;
  IrTensor *tensors;
  int n_tensors, n_ir_tensors;
  PlanLoc *locs;
  size_t arena, fixed;
  int *order;
  int n_order;
  CudaStep *steps;
  int n_steps, cap_steps;
  CudaArg *args;
  int n_args, cap_args;
  CudaConvDesc *convs;
  int n_convs, cap_convs;
  CudaGemmDesc *gemms;
  int n_gemms, cap_gemms;
  CudaMaskInfo *masks;
  int n_masks;
  int input, labels, logits, aux_logits, loss;
} ProgRec;

struct CudaNetBuild {
  EmitCudaOptions opt;
  const ParamTable *params;
  char *source;
  char *options_text;
  KernelRec *kernels;
  int n_kernels, cap_kernels;
  ProgRec *progs;
  int n_progs, cap_progs;
  size_t scratch_fixed, scratch_per_image;
  // cuda_net_get's view
  StrBuf device;
  CudaKernel *knet;
  CudaProgram *pnet;
  CudaNet net;
};

// ---------------------------------------------------------------- kernel generation

enum { KG_MAX_MEMO = 4096, KG_NAME = 40, KG_MAX_RED = 64, KG_MAX_STORES = 32 };

typedef struct {
  int node, lane, scope;  // scope 0: head (kernel-wide), 1: element
  char name[KG_NAME];
} KgMemo;

// Where the expression generator is evaluating: C expressions for the sample,
// local sample (index into per-sample tables; NULL: none), channel and element
// offset within the plane, how many lanes (float4: 4), and the anchor's value.
typedef struct {
  int lanes;
  const char *n, *nl, *c, *e;
  int chan_uniform;  // every thread of the block has the same channel: hoist
  char result[4][KG_NAME];
  int elem_scope;    // memo scope id of this site (memo entries of other sites unused)
  int sc, sh, sw;    // the space evaluated in: loads must have this shape
} FxCtx;

typedef struct KGenS {
  CudaNetBuild *nb;
  ProgRec *pr;
  const FusePlan *fp;
  const FuseGroup *G;
  StrBuf head, body;
  int indent;
  CudaArg args[NAO_KARGS_MAX];
  int arg_write[NAO_KARGS_MAX];  // slot is written
  int n_args;
  int overflow;                  // too many slots: the build fails
  KgMemo *memo;
  int n_memo;
  int next_var;
  int site;                      // current element scope id
  int mask_table[64];            // mask slots (arg slot) with a per-sample smem table
  int n_mask_tables;
  int table_nb;                  // size of per-sample tables (samples per block)
  // the epilogue's state at the current element
  int value_tensor[KG_MAX_STORES];
  char value_name[KG_MAX_STORES][4][KG_NAME];
  int n_values;
  int store_tensor[KG_MAX_STORES];
  int n_stores;
  // per-thread reduction accumulators: op index and value count
  int red_op[KG_MAX_RED];
  int red_n[KG_MAX_RED];
  int n_red;
  int red_values;                // total values per channel
  int smem;                      // bytes of static shared memory
  // geometry chosen by the driver
  int block, grid_x, grid_nb;
  const char *pattern;
  // finalize of reductions registered with op -1 (the optimizer's gradient norm)
  void (*custom_finalize)(struct KGenS *k, int red, const char *cc);
  char tag[96];                  // name words: "bnapply_relu_add"
  char err[256];
} KGen;

void kg_init(KGen *k, CudaNetBuild *nb, ProgRec *pr, const FusePlan *fp, const FuseGroup *G);
void kg_free(KGen *k);
void kg_line(KGen *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kg_head(KGen *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kg_slot(KGen *k, CudaArgKind kind, int id, int write);
const char *kg_ptr(KGen *k, int slot);       // "p3"
// Sample stride (floats) and plane size of tensor t of the program.
long long kg_ss(const KGen *k, int t);
// Per-channel launch: samples per block so the grid fills the device.
int kg_choose_nb(const KGen *k, int channels, long long elems_per_sample);
// Starts an element site (clears element-scope memos and epilogue state).
void kg_site_begin(KGen *k, FxCtx *x);
const char *kg_expr(KGen *k, FxCtx *x, int e, int lane);
// A float literal that is valid C and round-trips ("0.5f", "1.0f", "1e-05f").
void kg_float(char *buf, size_t n, float f);

// Epilogue: declarations before the loop, the per-element code of the group's
// non-anchor ops (stores and reductions), the anchor's own output, and the
// block reduction with the last-block finalize after the loop.
void kg_epilogue_decls(KGen *k);
void kg_set_value(KGen *k, FxCtx *x, int t, int accumulate);  // t (+)= result
void kg_epilogue(KGen *k, FxCtx *x);
void kg_flush_stores(KGen *k, FxCtx *x);
// Extra per-channel values a driver reduces itself (depthwise filter gradient):
// registered with kg_add_reduction(op, count); the driver accumulates into
// r<i>_<j> (names from kg_red_name).
int kg_add_reduction(KGen *k, int op, int count);
void kg_red_name(char *buf, size_t n, int red, int j);
// chan_count_expr: the channels (blockIdx.x is the channel, blockIdx.y the
// chunk), or "1": one set of values for the whole grid.
void kg_reduce_tail(KGen *k, const char *chan_count_expr);
int kg_has_epilogue_work(const KGen *k);
void kg_fill_mask_tables(KGen *k, const char *n0, const char *nb);

// Loop-local variables defined only when the code after `mark` uses them
// (NVRTC warns on unused variables; the CI check wants an empty log).
typedef struct {
  const char *name;
  char def[192];
} KgVar;
void kg_insert_vars(KGen *k, size_t mark, const KgVar *vars, int n);
int kg_uses_ident(const char *text, const char *id);

// Registers the finished kernel (dedup by text) and appends its launch step.
int kg_finish(KGen *k, int node);

// ---------------------------------------------------------------- drivers

int emit_pw(KGen *k);
int emit_conv_dw(KGen *k);
int emit_conv_dw_bwd(KGen *k);
int emit_pool(KGen *k);
int emit_pool_bwd(KGen *k);
int emit_gap(KGen *k);
int emit_xent(KGen *k);
void emit_update_kernels(CudaNetBuild *nb, ProgRec *pr, int norm_tensor);
// The device code every kernel may use: types, the counter hash twin, sums.
void emit_device_preamble(StrBuf *out);

// ---------------------------------------------------------------- programs

int prog_add_arg(ProgRec *pr, CudaArgKind kind, int id);
int prog_add_step(ProgRec *pr, CudaStepKind kind, int kernel, int desc, int arg0, int n_args,
                  int node);
// Library steps of a FG_LIB group.
int emit_lib_step(CudaNetBuild *nb, ProgRec *pr, const FusePlan *fp, const FuseGroup *G,
                  char *err, size_t errlen);
// Arena and fixed-region layout of the stored tensors in schedule order.
void emit_plan_memory(ProgRec *pr, const FusePlan *fp, int reuse);

#endif
