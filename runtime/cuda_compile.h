// runtime/cuda_compile.h — the device code of a net compiled with NVRTC, one
// unit per kernel, on several threads, through the kernel cache (kcache.h).
//
// Why one unit per kernel: units compile in parallel (NVRTC's cost grows with
// the kernels of a program, its fixed cost per program is small), and a
// kernel shared by many networks (weight sharing, a search) is compiled once
// and then found in the cache by its own text. A unit is the device code's
// preamble followed by one kernel's text; the kernel boundaries are the
// separator comments naoc writes ("// ----...---- NAME" lines, see
// docs/cuda-codegen.md). When the text does not have that shape (every kernel
// of the net found once after a preamble), the whole device code is one unit.
//
// The source may be a whole net.cu (the device code is then the part between
// `#ifdef __CUDACC_RTC__` and its `#endif`) or bare device code (CudaNet's
// device_source).
#ifndef NAO_CUDA_COMPILE_H
#define NAO_CUDA_COMPILE_H

#include <stddef.h>

#include "compiler/cuda_plan.h"
#include "runtime/kcache.h"

typedef struct {
  char *name;     // the kernel's name, or "net" for the whole-source unit
  char *text;     // the unit's NVRTC input
  void *image;    // the cubin (NULL until compiled)
  size_t size;
  int cached;     // 1: found in the cache
} CudaUnit;

typedef struct {
  int n_units;
  CudaUnit *units;
  int *unit_of_kernel;  // (net->n_kernels) the unit that holds each kernel
  int whole;            // 1: one unit for everything (the split did not apply)
  int n_compiled, n_cached, n_damaged;
  double seconds;       // wall time of cuda_compile_net
  int nvrtc_major, nvrtc_minor;
  char nvrtc_path[1024];
} CudaCompiled;

typedef struct {
  const char *arch;      // "sm_90"
  int threads;           // compile threads; <= 0: the online CPUs (at most 64)
  const KCache *cache;   // may be disabled
  const char *const *opts;  // extra NVRTC options
  int n_opts;
  int whole;             // 1: do not split (one unit)
  int verbose;           // 1: a line per compiled unit on stderr
} CudaCompileOptions;

// Splits the source (as above) into out's units without compiling. Returns 0,
// or -1 with a message (no device code found).
int cuda_compile_split(const CudaNet *net, const char *source, int whole, CudaCompiled *out,
                       char *err, size_t errlen);

// Splits and compiles. A unit that NVRTC rejects fails the whole call: the
// message names the kernel, holds NVRTC's log and says where the failing
// source was kept. Returns 0, or -1 with the message.
int cuda_compile_net(const CudaNet *net, const char *source, const CudaCompileOptions *o,
                     CudaCompiled *out, char *err, size_t errlen);
void cuda_compiled_free(CudaCompiled *c);

#endif
