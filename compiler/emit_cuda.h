// compiler/emit_cuda.h — naoc's CUDA back end: fused kernels and the plan the
// cuda runtime executes (cuda_plan.h), in memory or as the text of net.cu.
//
// A CudaNetBuild collects programs: cuda_net_add_graph() fuses one IR graph
// (fuse.h), plans its memory, generates its kernels (deduplicated across all
// programs of the build by the hash of their source) and its library steps;
// cuda_net_add_update() adds the optimizer program. cuda_net_get() returns
// the CudaNet with the device source for NVRTC; cuda_net_write() prints
// net.cu. Output is byte-for-byte deterministic for the same graphs and
// options. docs/cuda-codegen.md describes patterns, kernels and the format.
#ifndef NAO_EMIT_CUDA_H
#define NAO_EMIT_CUDA_H

#include <stddef.h>

#include "compiler/cuda_plan.h"
#include "compiler/ir.h"
#include "compiler/netspec.h"
#include "compiler/util.h"

typedef struct {
  int train;       // 1: programs "train", "update" and "eval"; 0: "eval" only
  int tf32;        // library convolutions may use TF32 tensor cores (PyTorch's default): 1
  int plan_batch;  // the batch size launch geometry is tuned for: 128
  int block;       // threads per block of the generated kernels: 256 (a multiple of 32)
  int smem_limit;  // bytes of static shared memory a kernel may use: 32768
  int vec;         // float4 accesses where shapes and alignment allow: 1
  int no_fuse;     // 1: one kernel per op, every tensor stored (debugging, parity checks)
  int no_reuse;    // 1: no arena reuse: every stored tensor keeps its value to the end
  int num_sms;     // multiprocessors the grids are sized for: 132 (H100/H200 SXM)
} EmitCudaOptions;

void emit_cuda_defaults(EmitCudaOptions *o);
// "train tf32 batch=128 block=256 smem=32768 vec" — for the header and cache keys.
void emit_cuda_options_text(const EmitCudaOptions *o, StrBuf *out);

typedef struct CudaNetBuild CudaNetBuild;

// source: the .nao file name as given (printed in net.cu; never made absolute).
CudaNetBuild *cuda_net_new(const ParamTable *params, const char *source,
                           const EmitCudaOptions *opt);
// Adds program `name` ("train", "eval") made from g. Returns 0, or -1 with a
// message naming the node the GPU path cannot run.
int cuda_net_add_graph(CudaNetBuild *b, const IrGraph *g, const char *name, char *err,
                       size_t errlen);
// Adds program "update": gradient norm and SGD with momentum over all
// trainable parameters of the table.
void cuda_net_add_update(CudaNetBuild *b);
// The finished net (valid until cuda_net_free); device_source is set.
const CudaNet *cuda_net_get(CudaNetBuild *b);
// The whole net.cu text.
void cuda_net_write(CudaNetBuild *b, StrBuf *out);
void cuda_net_free(CudaNetBuild *b);

// Statistics for the header and naoc --emit stats.
typedef struct {
  int kernels;           // distinct generated kernels
  int kernel_launches;   // generated kernel steps, all programs
  int library_steps;     // cuDNN / cuBLAS steps, all programs
  size_t arena_bytes_per_image[4];  // per program
} CudaNetStats;
void cuda_net_stats(CudaNetBuild *b, CudaNetStats *out);

// naoc FILE -o net.cu: lowers the network (training graph with its backward
// pass and evaluation graph), builds and prints net.cu. Returns 0, or -1 with
// a message.
int emit_net_cu(const NetSpec *ns, const char *source_path, const EmitCudaOptions *opt,
                StrBuf *out, char *err, size_t errlen);

#endif
