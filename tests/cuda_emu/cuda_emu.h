// tests/cuda_emu/cuda_emu.h — just enough of CUDA for naoc's generated device
// code to compile as C++ (g++ or clang++) and run on the CPU.
//
// Include this, then the device code. A launch (emu_runtime.cpp) runs the
// blocks of the grid one after the other; the threads of a block are fibers
// (ucontext) on one OS thread, switched only at __syncthreads() and at warp
// shuffles, which are real barriers: a barrier that not every live thread of
// the block (or warp) reaches is reported as a deadlock, a barrier reached
// after some threads returned as an error. __shared__ is `static` (blocks run
// one at a time, so one copy is the block's). Atomics and fences are plain
// operations. What this cannot show: races between warps that the real
// scheduler would expose (fibers switch only at barriers), timing, and the
// real memory model (every write is visible at once).
#ifndef NAO_CUDA_EMU_H
#define NAO_CUDA_EMU_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3 {
  unsigned int x, y, z;
};

struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};

static inline float4 make_float4(float a, float b, float c, float d) {
  float4 r;
  r.x = a;
  r.y = b;
  r.z = c;
  r.w = d;
  return r;
}

extern "C" {
// The emulator's state for the running block (emu_runtime.cpp).
extern dim3 nao_emu_block_idx, nao_emu_block_dim, nao_emu_grid_dim;
const dim3 *nao_emu_thread_idx(void);
void nao_emu_syncthreads(void);
// Exchange of 8-byte values within the warp: mode 0 = down by `arg`, 1 = xor `arg`.
uint64_t nao_emu_shfl(uint64_t v, int mode, int arg);
}

#define threadIdx (*nao_emu_thread_idx())
#define blockIdx nao_emu_block_idx
#define blockDim nao_emu_block_dim
#define gridDim nao_emu_grid_dim

static inline void __syncthreads(void) { nao_emu_syncthreads(); }
static inline void __threadfence(void) {}

template <typename T>
static inline T nao_emu_shfl_t(T v, int mode, int arg) {
  uint64_t u = 0;
  memcpy(&u, &v, sizeof v);
  u = nao_emu_shfl(u, mode, arg);
  T r;
  memcpy(&r, &u, sizeof r);
  return r;
}

template <typename T>
static inline T __shfl_down_sync(unsigned int mask, T v, int delta) {
  (void)mask;
  return nao_emu_shfl_t(v, 0, delta);
}

template <typename T>
static inline T __shfl_xor_sync(unsigned int mask, T v, int lane_mask) {
  (void)mask;
  return nao_emu_shfl_t(v, 1, lane_mask);
}

static inline unsigned int atomicAdd(unsigned int *p, unsigned int v) {
  unsigned int old = *p;
  *p = old + v;
  return old;
}

static inline float __int_as_float(int i) {
  float f;
  memcpy(&f, &i, sizeof f);
  return f;
}

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }

#endif
