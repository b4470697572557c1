// tests/unit/emu_harness.h — running naoc's CUDA programs on the CPU in tests.
//
// emu_build() compiles device code with the host C++ compiler against
// tests/cuda_emu (the CUDA emulator) into a shared object and loads it.
// emu_run() executes a CudaProgram exactly as the cuda runtime must (argument
// resolution, launch geometry from N), with generated kernels in the
// emulator and the library steps (cuDNN convolutions, cuBLAS GEMMs) by plain
// reference loops that implement the descriptors' documented meaning.
// emu_ref.c is an independent double-precision interpreter of the IR to
// compare against.
#ifndef NAO_TEST_EMU_HARNESS_H
#define NAO_TEST_EMU_HARNESS_H

#include <stddef.h>

#include "compiler/cuda_plan.h"
#include "compiler/ir.h"

typedef struct {
  void *so;
  int (*launch)(void *kernel, unsigned gx, unsigned gy, unsigned bx, const void *args,
                size_t args_size, char *err, size_t errlen);
  void **fns;  // per kernel of the net, looked up on first use
  int n_fns;
} EmuModule;

// Compiles `source` (device code without guards, or a whole net.cu when
// whole_file) and loads it. Returns 0, or -1 with the compiler's output.
int emu_build(EmuModule *m, const char *source, int whole_file, char *err, size_t errlen);
void emu_unload(EmuModule *m);

typedef struct {
  const CudaNet *net;
  int n;             // batch size
  float *params;     // flat arrays of the ParamTable (caller-owned)
  float *grads;
  float *momentum;
  float *buffers;
  NaoMask *masks;    // the program's mask table (caller fills)
  NaoHyper hyper;
  // owned, made by emu_alloc
  float *arena, *fixed;
  unsigned char *scratch;
  long long launches;
} EmuMem;

// Allocates the program's arena, fixed region and scratch (arena and fixed
// filled with NaN so a read of anything unwritten shows).
void emu_alloc(EmuMem *mem, const CudaProgram *p);
void emu_release(EmuMem *mem);
int emu_run(EmuModule *m, EmuMem *mem, const CudaProgram *p, char *err, size_t errlen);
float *emu_tensor(EmuMem *mem, const CudaProgram *p, int t);

// Reference semantics of the library steps (exposed for direct tests).
void emu_ref_conv(CudaStepKind kind, const CudaConvDesc *d, int n, const float *a, const float *b,
                  float *c);
void emu_ref_gemm(const CudaGemmDesc *d, int n, const float *a, const float *b, float *c);

// ---------------------------------------------------------------- reference interpreter

typedef struct {
  const IrGraph *g;
  int n;
  double **t;          // per tensor: its root's storage (views share it), N * root numel
  double *params, *grads, *buffers;
  const NaoMask *mask_of_node;  // per node: its mask (dropout / drop-path), or NULL
  const NaoMask **masks;
} EmuRefRun;

// Runs g in double precision. params/buffers are the float arrays (copied);
// masks[node] gives each mask node's key/keep/scale. Returns 0 or -1 (message).
int emu_ref_run(EmuRefRun *r, const IrGraph *g, int n, const float *params, const float *buffers,
            const NaoMask *const *mask_by_node, const float *input, const int *labels, char *err,
            size_t errlen);
void emu_ref_free(EmuRefRun *r);
// Element (n, c, e) of tensor t (views resolved).
double *emu_ref_at(const EmuRefRun *r, int t, int n, int c, int e);

#endif
