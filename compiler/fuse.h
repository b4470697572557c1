// compiler/fuse.h — fusion groups: which IR work runs together as one GPU kernel.
//
// fuse_build() splits every node of an IrGraph into ops (a BN node in training
// becomes a statistics reduction plus a pointwise apply; a linear node a bias
// fill plus a GEMM; ...), writes each pointwise op as an expression over the
// tensors it reads (FxNode, hash-consed so equal subexpressions are one node),
// then decides:
//  1. inlining: a pointwise-defined tensor whose readers are all generated
//     kernels is not stored; each reader recomputes it from its leaves (ReLU
//     into the consumer's prologue, BN apply into the next kernel's loads).
//     Cost rule: inline when the definition reads at most one tensor, or when
//     it has a single reader (recomputing a sum of two tensors in three readers
//     would read more than storing it once).
//  2. groups: every remaining op starts a group; pointwise stores and
//     per-channel reductions then join a group that produces one of their
//     inputs (or writes the tensor they accumulate into) when both iterate over
//     the same (c, h, w) space and the merge keeps the group graph acyclic:
//     BN apply + ReLU + the node's add + drop-path in one pass into the concat
//     slice; BN statistics in the producer's epilogue; gradient contributions
//     summed into one read-modify-write; BN backward's sums in the kernel that
//     finishes its dy.
//  3. a schedule: groups in a topological order (ties: original node order).
// docs/cuda-codegen.md lists the patterns this yields on NAO networks and why.
//
// Invariants: expressions are DAGs over FxNode indices; an FX_LOAD's tensor has
// the shape of the space it is evaluated in (or is a (c,1,1) tensor read with
// FX_LOAD_NC); the result is deterministic (no pointer or hash-order effects).
#ifndef NAO_FUSE_H
#define NAO_FUSE_H

#include <stddef.h>

#include "compiler/ir.h"

// ---------------------------------------------------------------- expressions

typedef enum {
  FX_CONST,    // f
  FX_LOAD,     // tensor t at the current element
  FX_LOAD_NC,  // tensor t of shape (c,1,1) at (n, c): broadcast over the plane
  FX_CHAN_T,   // unbatched statistics tensor t at channel c
  FX_CHAN_P,   // trainable parameter t at channel c (BN gamma/beta, linear bias)
  FX_CHAN_B,   // buffer t at channel c (BN running statistics)
  FX_MASK,     // mask slot t: 0 or 1/keep from the counter hash; f = 1: per sample, 0: per element
  FX_ONEHOT,   // labels tensor t: 1 when c == label[n], else 0
  FX_INV_N,    // 1 / N
  FX_RESULT,   // the group anchor's computed value (epilogues)
  FX_ADD,      // a + b
  FX_SUB,      // a - b
  FX_MUL,      // a * b
  FX_RELU,     // max(a, 0)
  FX_POS,      // a > 0 ? b : 0
  FX_INVSTD,   // 1 / sqrt(a + f)
} FxKind;

typedef struct {
  FxKind kind;
  int a, b;  // operands, -1 when unused
  int t;     // tensor / parameter / mask slot, -1 when unused
  float f;
} FxNode;

typedef struct {
  FxNode *v;
  int n, cap;
  int *hash;  // open addressing over v; -1 empty
  int hcap;
} FxPool;

void fx_init(FxPool *p);
void fx_free(FxPool *p);
// Returns the index of an equal node, adding it when new. Constant operands
// are folded (x*1, x+0, 0*x) so the text stays small.
int fx_node(FxPool *p, FxKind kind, int a, int b, int t, float f);
int fx_const(FxPool *p, float f);
int fx_binary(FxPool *p, FxKind kind, int a, int b);
// 1 when expression e reads tensor t (FX_LOAD / FX_LOAD_NC / FX_CHAN_T / FX_ONEHOT).
int fx_uses_tensor(const FxPool *p, int e, int t);
// Distinct nodes of the DAG under e.
int fx_size(const FxPool *p, int e);
// Calls fn for each distinct tensor leaf under e (LOAD, LOAD_NC, CHAN_T, ONEHOT).
void fx_leaves(const FxPool *p, int e, void (*fn)(void *ctx, FxKind kind, int t), void *ctx);
// Variance of a node: what it depends on.
typedef enum { FXV_CHAN = 0, FXV_SAMPLE = 1, FXV_ELEM = 2 } FxVariance;
FxVariance fx_variance(const FxPool *p, int e);

// ---------------------------------------------------------------- ops

typedef enum {
  FOP_NOP,             // inputs, labels, concatenations of parts that are already slices
  FOP_DEF,             // tensor out = expr (+= when accumulate)
  FOP_BN_STATS,        // in0 x (expr): mean, invstd (+ running statistics)
  FOP_BNB_REDUCE,      // sums of dy and dy*xhat per channel; g(gamma), g(beta)
  FOP_BIAS_GRAD,       // g(b)[k] (+)= sum over the batch of dy[n, k]
  FOP_CONV_DW,         // depthwise convolution forward
  FOP_CONV_DW_DATA,    // depthwise convolution, gradient of the input
  FOP_CONV_DW_FILTER,  // depthwise convolution, gradient of the weight
  FOP_POOL,
  FOP_POOL_BWD,
  FOP_GAP,
  FOP_XENT,            // softmax, per-sample loss, weighted mean
  FOP_LIB_CONV,        // cuDNN (or cuBLAS for 1x1 stride-1) convolution forward
  FOP_LIB_CONV_DATA,
  FOP_LIB_CONV_FILTER,
  FOP_LIB_GEMM,        // linear layers' products (part: 0 fwd, 1 bwd data, 2 bwd filter)
} FuseOpKind;

enum { FUSE_MAX_RW = 24 };

typedef struct {
  FuseOpKind kind;
  int node;          // the IR node
  int part;          // which piece of the node
  int out;           // the tensor written (DEF, anchors' outputs; -1 none)
  int out2;          // a second tensor (BN stats: invstd; XENT: softmax; -1 none)
  int expr;          // DEF: the value; -1 otherwise
  int in_expr[2];    // expressions read pointwise by anchors and reductions
  int accumulate;    // DEF and anchors: add to out; reductions/lib: see grad_acc
  int grad_acc[2];   // reductions writing parameter gradients: accumulate bits
  int n_reads, n_writes;
  int reads[FUSE_MAX_RW];   // tensors read, after inlining (leaves + memory reads)
  int writes[FUSE_MAX_RW];  // tensors written
  int dead;          // 1: nothing reads what it computes; not run
} FuseOp;

// ---------------------------------------------------------------- groups

typedef enum {
  FG_PW,        // pointwise stores and per-channel reductions over a space
  FG_CONV_DW,   // anchored kernels: the anchor op computes a value per element of
  FG_CONV_DW_BWD,  //   the space (RESULT), pointwise members are its epilogue
  FG_POOL,
  FG_POOL_BWD,
  FG_GAP,
  FG_XENT,
  FG_LIB,       // one library op
} FuseGroupKind;

typedef struct {
  FuseGroupKind kind;
  int batched, c, h, w;  // the space of the epilogue (for FG_CONV_DW_BWD without a
                         //   data part: the output space of the filter reduction)
  int anchor;            // op index of the anchor (the first anchor op), -1 for FG_PW
  int anchor2;           // FG_CONV_DW_BWD: the filter op when both parts run, else -1
  int n_ops;
  int *ops;              // member op indices, increasing
  int merged_into;       // -1, or the group this one was merged into
  int first_op;          // smallest member op index (tie-break of the schedule)
} FuseGroup;

typedef struct {
  int no_fuse;           // 1: no inlining or merging (every op its own kernel)
  int max_expr;          // largest inlined expression (nodes); 0: 64
} FuseOptions;

typedef struct {
  const IrGraph *g;
  FxPool fx;
  int n_ops;
  FuseOp *ops;
  int n_groups;
  FuseGroup *groups;     // merged-away groups keep merged_into >= 0
  int n_sched;
  int *sched;            // live group indices in execution order
  // Tensors: the IR's, then internal ones (concat slices, BN backward sums).
  int n_tensors;
  IrTensor *tensors;
  int *def_expr;         // per tensor: inlined definition, or -1 (stored)
  int *stored;           // per tensor: 1 when it needs memory
  int *mem_read;         // per tensor: 1 when a library step or the program reads memory
  int n_masks;
  int *mask_node;        // per mask slot: the IR node
} FusePlan;

// Builds the fusion plan of g. Returns 0, or -1 with a message (a node the GPU
// path cannot run, named).
int fuse_build(const IrGraph *g, const FuseOptions *opt, FusePlan *out, char *err, size_t errlen);
void fuse_free(FusePlan *fp);

// True for a depthwise convolution (generated, not a library call).
int fuse_conv_is_depthwise(const IrConvAttr *a);

// How a library convolution reads its input, in cuDNN's terms: IR padding may
// be negative (a crop) and asymmetric; cuDNN takes a described input region
// (crop, then h_eff x w_eff rows/cols) and one padding per dimension.
typedef struct {
  int crop_t, crop_l;          // input rows / cols skipped at the top / left
  int h_eff, w_eff;            // rows / cols of the described input region
  int pad_t, pad_l, pad_b, pad_r;
  int symmetric;               // pad_t == pad_b, pad_l == pad_r and cuDNN's output size
                               //   equals the IR's: the legacy API computes it exactly
  int covers;                  // the region is the whole input
} FuseConvGeom;
FuseConvGeom fuse_conv_geom(const IrConvAttr *a, int h_in, int w_in, int h_out, int w_out);
const char *fuse_op_kind_name(FuseOpKind k);
// Text view of the groups in schedule order (naoc debugging and tests).
void fuse_dump(const FusePlan *fp, StrBuf *out);

#endif
