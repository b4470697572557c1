// compiler/cuda_plan.h — what the cuda backend executes: the data half of net.cu.
//
// naoc's CUDA emitter (emit_cuda*.c) turns the IR graphs of a network into a
// CudaNet: generated kernels (device source for NVRTC) plus, per program
// ("train", "eval", "update"), an ordered list of steps. The same structure is
//  - printed into net.cu as `static const` C initializers (the plan section,
//    guarded by #ifndef __CUDACC_RTC__), reachable through nao_net_get();
//  - built in memory by cuda_net_build() (emit_cuda.h) when a program compiles
//    a .nao file in-process; then device_source holds the NVRTC input.
// docs/cuda-codegen.md describes the format for the runtime in prose.
//
// How the runtime executes a program for batch size N:
//  1. Memory. Allocate once: the activation arena (arena_per_image * N floats),
//     the fixed region (fixed_floats floats), the scratch region
//     (scratch_fixed + scratch_per_image * N bytes, ZEROED once at allocation:
//     it holds the reduction kernels' completion counter, which every kernel
//     leaves at 0), the flat parameter arrays of params.h (values, gradients and
//     momentum of n_trainable floats, ZEROED gradients and momentum; buffers of
//     n_buffer floats), a NaoMask table of n_masks entries and one NaoHyper.
//  2. Tensor t of a program lives where cuda_tensor_ptr() says (same rule as
//     plan.h's PlanLoc: arena + scaled * N + unscaled, sample n at
//     + n * sample_stride; fixed tensors at fixed + unscaled).
//  3. Before each run of the "train" program, write the mask table: slot s
//     serves IR node masks[s].node (a dropout or drop-path node); key = the
//     node's per-step mask key (the same key the CPU backend uses, so masks are
//     equal), keep = the keep probability at this step (drop-path: the
//     schedule of ir.h's IrDropAttr), scale = 1.0f / keep computed in float.
//     Write NaoHyper before the "update" program.
//  4. Run the steps in order on one stream. A CUDA_STEP_KERNEL launches
//     kernels[step.kernel] with grid (grid_x, grid_nb ? ceil(N / grid_nb) : 1, 1),
//     block (block, 1, 1), no dynamic shared memory and ONE parameter: a
//     NaoArgs by value whose p[i] is the address of args[arg0 + i] (see
//     CudaArgKind) and whose n is N. Library steps call cuDNN / cuBLAS with the
//     descriptor they index (CudaConvDesc, CudaGemmDesc) on the addresses of
//     their three arguments.
//  Every kernel depends only on N and the pointers: a program's launches can be
//  captured once per batch size as a CUDA graph and replayed.
#ifndef NAO_CUDA_PLAN_H
#define NAO_CUDA_PLAN_H

#include <stddef.h>

#include "compiler/ir.h"
#include "compiler/params.h"
#include "compiler/plan.h"

// Bumped whenever the meaning of any field or of the generated code changes;
// part of the runtime's NVRTC cache key.
#define CUDA_NET_VERSION 1
#define NAO_KARGS_MAX 32

// The one parameter of every generated kernel (mirrored in the device code).
typedef struct {
  void *p[NAO_KARGS_MAX];
  int n;  // the batch size N
} NaoArgs;

// One dropout / drop-path mask of a step (device memory, written per step).
// Element i of the mask is (rng_hash_uniform(key, i) < keep) ? scale : 0.
typedef struct {
  unsigned long long key;
  float keep, scale;
} NaoMask;

// Optimizer hyperparameters of a step (device memory, written per step).
typedef struct {
  float lr, momentum, weight_decay;
  float max_norm;  // gradient clipping by global norm; <= 0: no clipping
} NaoHyper;

typedef enum {
  CUDA_ARG_TENSOR = 0,    // id: tensor of the program (cuda_tensor_ptr)
  CUDA_ARG_PARAM,         // id: parameter index; its values (trainable array + offset)
  CUDA_ARG_GRAD,          // id: parameter index; its gradient (gradient array + offset)
  CUDA_ARG_BUFFER,        // id: parameter index of a buffer (buffer array + offset)
  CUDA_ARG_PARAMS_ALL,    // the trainable array's base
  CUDA_ARG_GRADS_ALL,     // the gradient array's base
  CUDA_ARG_MOMENTUM_ALL,  // the momentum array's base
  CUDA_ARG_SCRATCH,       // the scratch region's base
  CUDA_ARG_MASKS,         // the NaoMask table
  CUDA_ARG_HYPER,         // the NaoHyper
} CudaArgKind;

typedef struct {
  CudaArgKind kind;
  int id;  // tensor or parameter index; 0 for the *_ALL, SCRATCH, MASKS, HYPER kinds
} CudaArg;

typedef enum {
  CUDA_STEP_KERNEL = 0,       // args: as the kernel's comment lists them
  CUDA_STEP_CONV_FWD,         // args: x, w, y        y  = conv(x, w)        (+ beta * y)
  CUDA_STEP_CONV_BWD_DATA,    // args: dy, w, dx      dx = conv_bwd_data     (+ beta * dx)
  CUDA_STEP_CONV_BWD_FILTER,  // args: x, dy, dw      dw = conv_bwd_filter   (+ beta * dw)
  CUDA_STEP_GEMM,             // args: A, B, C        C  = alpha op(A) op(B) (+ beta * C)
} CudaStepKind;

typedef struct {
  CudaStepKind kind;
  int kernel;     // CUDA_STEP_KERNEL: index into CudaNet.kernels; else -1
  int desc;       // CONV_*: index into the program's convs; GEMM: into gemms; else -1
  int arg0;       // first argument, index into the program's args
  int n_args;
  int node;       // the IR node served (the first of a fused kernel's), -1 for none
} CudaStep;

// A cuDNN convolution (cross-correlation, NCHW float32, dilation 1). Shapes
// and strides describe the tensors exactly as cudnnSetTensor4dDescriptorEx
// takes them; an input that the IR crops (negative padding) is described by
// an element offset and smaller dimensions. x element (n, c, y, x) is at
// x_addr + x_offset + n * x_ns + c * x_cs + y * x_hs + x; y likewise with
// y_ns and the dense strides (h_out * w_out, w_out, 1). For CONV_BWD_DATA the
// x fields describe dx, for CONV_BWD_FILTER the gradient dw has the weight's
// shape [c_out, c_in / groups, kh, kw] (dense).
typedef struct {
  int c_in, h_in, w_in;
  long long x_offset, x_ns, x_cs, x_hs;
  int c_out, h_out, w_out;
  long long y_ns;
  int kh, kw, stride_h, stride_w, groups;
  int pad_h, pad_w;          // before (top, left); cudnnSetConvolution2dDescriptor's
  int pad_h_end, pad_w_end;  // after (bottom, right); equal to pad_h / pad_w unless
                             //   `asymmetric` (then only the backend API expresses it)
  int asymmetric;
  float beta;                // 0: write the output, 1: add to it (gradient accumulation)
  int tf32;                  // 1: TF32 tensor-op math allowed (PyTorch's default for convs)
} CudaConvDesc;

// A cuBLAS SGEMM in cuBLAS's column-major terms, strided-batched when
// batch != 1. A dimension written (X_n, X) is X_n * N + X.
typedef struct {
  int trans_a, trans_b;       // 1: CUBLAS_OP_T
  int m_n, n_n, k_n, batch_n;
  long long m, n, k, batch;
  long long lda, ldb, ldc;
  long long stride_a, stride_b, stride_c;  // floats between batch entries
  float alpha, beta;
  int tf32;                   // 1: CUBLAS_TF32_TENSOR_OP_MATH allowed
} CudaGemmDesc;

typedef enum { CUDA_MASK_DROPOUT = 0, CUDA_MASK_DROPPATH = 1 } CudaMaskKind;

typedef struct {
  int node;                   // the IR node (IR_DROPOUT or IR_DROPPATH)
  CudaMaskKind kind;
  IrDropAttr attr;            // keep, cell, n_cells: for the per-step keep
} CudaMaskInfo;

// A generated kernel. Launch: grid (grid_x, grid_nb ? ceil(N / grid_nb) : 1, 1),
// block (block, 1, 1); all shared memory is static (smem_bytes, for reports).
typedef struct {
  const char *name;
  const char *pattern;        // the driver: "pw", "dwconv", "pool", ...
  int block;
  int grid_x;
  int grid_nb;
  int smem_bytes;
  int n_args;                 // NaoArgs.p entries used
  int reduces;                // 1: uses the scratch region's counter and partials
} CudaKernel;

typedef struct {
  const char *name;           // "train", "eval", "update"
  int mode;                   // IrMode of the graph (update: IR_MODE_TRAIN)
  int n_nodes;                // the IR graph (0 for "update")
  const IrNode *nodes;
  int n_tensors;              // IR tensors [0, n_ir_tensors), then internal ones
  int n_ir_tensors;
  const IrTensor *tensors;
  const PlanLoc *locs;        // one per tensor; LOC_NONE: never materialized (fused away)
  size_t arena_per_image;     // floats
  size_t fixed_floats;
  int n_order;
  const int *order;           // IR nodes in the order their work is done (plan.h's steps)
  int n_steps;
  const CudaStep *steps;
  int n_args;
  const CudaArg *args;
  int n_convs;
  const CudaConvDesc *convs;
  int n_gemms;
  const CudaGemmDesc *gemms;
  int n_masks;
  const CudaMaskInfo *masks;
  int input, labels, logits, aux_logits, loss;  // well-known tensors, -1 when absent
} CudaProgram;

typedef struct {
  int version;                // CUDA_NET_VERSION
  const char *source;         // the .nao file name as given
  const char *options;        // the emitter options, as text
  int n_params;
  const ParamInfo *params;
  size_t n_trainable, n_buffer;
  int n_kernels;
  const CudaKernel *kernels;
  int n_programs;
  const CudaProgram *programs;
  size_t scratch_fixed;       // bytes
  size_t scratch_per_image;   // bytes
  const char *device_source;  // in-memory builds: the NVRTC input; NULL in net.cu
                              //   (compile the whole net.cu text instead)
} CudaNet;

// Address of tensor t of program p for batch size n (arena / fixed bases).
static inline float *cuda_tensor_ptr(const CudaProgram *p, int t, float *arena, float *fixed,
                                     int n) {
  const PlanLoc *l = &p->locs[t];
  if (l->region == LOC_FIXED) return fixed + l->unscaled;
  if (l->region == LOC_NONE) return NULL;
  return arena + l->scaled * (size_t)n + l->unscaled;
}

// The program named `name`, or NULL.
static inline const CudaProgram *cuda_net_program(const CudaNet *net, const char *name) {
  for (int i = 0; i < net->n_programs; i++) {
    const char *a = net->programs[i].name, *b = name;
    while (*a && *a == *b) a++, b++;
    if (*a == *b) return &net->programs[i];
  }
  return NULL;
}

// A dimension of a CudaGemmDesc for batch size n.
static inline long long cuda_dim(int per_n, long long fixed, int n) {
  return (long long)per_n * n + fixed;
}

#endif
