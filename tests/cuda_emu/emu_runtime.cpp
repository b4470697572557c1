// tests/cuda_emu/emu_runtime.cpp — runs a generated kernel on the CPU (cuda_emu.h).
//
// nao_emu_launch() runs the blocks of the grid in order (x fastest); a block's
// threads are fibers made with makecontext on stacks reused between blocks. A
// scheduler runs every ready fiber until it blocks at __syncthreads() or a
// warp shuffle, then releases a barrier once every live thread of the block
// (warp) waits at it. Errors (a barrier some threads never reach, a barrier
// after threads returned, a shuffle in a partial warp) stop the launch with a
// message; the caller's test fails. Under AddressSanitizer the fiber
// switches are announced to it (__sanitizer_*_switch_fiber) so it tracks
// the stacks correctly.
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include "cuda_emu.h"

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifdef EMU_ASAN
#include <sanitizer/common_interface_defs.h>
static const size_t kStack = 1 << 20;
#else
static const size_t kStack = 256 << 10;
#endif

enum { F_READY, F_SYNC, F_SHFL, F_DONE };

struct EmuArgs {
  void *p[32];
  int n;
};

struct Fiber {
  ucontext_t ctx;
  dim3 tid;
  int state;
  uint64_t val, res;
  int mode, arg;
  char *stack;
  void *fake;
};

dim3 nao_emu_block_idx, nao_emu_block_dim, nao_emu_grid_dim;

static Fiber *g_fibers;
static int g_cap, g_n, g_cur = -1;
static ucontext_t g_sched;
static void (*g_kernel)(EmuArgs);
static EmuArgs g_args;
#ifdef EMU_ASAN
static const void *g_sched_bottom;
static size_t g_sched_size;
#endif

extern "C" const dim3 *nao_emu_thread_idx(void) { return &g_fibers[g_cur].tid; }

static void to_scheduler(void) {
  Fiber *f = &g_fibers[g_cur];
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(&f->fake, g_sched_bottom, g_sched_size);
#endif
  swapcontext(&f->ctx, &g_sched);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(f->fake, &g_sched_bottom, &g_sched_size);
#endif
}

extern "C" void nao_emu_syncthreads(void) {
  g_fibers[g_cur].state = F_SYNC;
  to_scheduler();
}

extern "C" uint64_t nao_emu_shfl(uint64_t v, int mode, int arg) {
  Fiber *f = &g_fibers[g_cur];
  f->val = v;
  f->mode = mode;
  f->arg = arg;
  f->state = F_SHFL;
  to_scheduler();
  return g_fibers[g_cur].res;
}

static void fiber_entry(void) {
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(NULL, &g_sched_bottom, &g_sched_size);
#endif
  g_kernel(g_args);
  g_fibers[g_cur].state = F_DONE;
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(NULL, g_sched_bottom, g_sched_size);
#endif
  // returning resumes uc_link: the scheduler
}

static int ensure_fibers(int n) {
  if (n <= g_cap) return 0;
  Fiber *f = (Fiber *)realloc(g_fibers, sizeof(Fiber) * (size_t)n);
  if (!f) return -1;
  g_fibers = f;
  for (int i = g_cap; i < n; i++) {
    g_fibers[i].stack = (char *)malloc(kStack);
    if (!g_fibers[i].stack) return -1;
  }
  g_cap = n;
  return 0;
}

static void switch_to(int i) {
  g_cur = i;
  Fiber *f = &g_fibers[i];
#ifdef EMU_ASAN
  void *fake = NULL;
  __sanitizer_start_switch_fiber(&fake, f->stack, kStack);
#endif
  swapcontext(&g_sched, &f->ctx);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
  g_cur = -1;
}

// Releases warps whose every lane waits at a shuffle. Returns how many were
// released, or -1 with a message for a shuffle that can never complete.
static int release_warps(char *err, size_t errlen) {
  int released = 0;
  for (int base = 0; base < g_n; base += 32) {
    int lanes = g_n - base < 32 ? g_n - base : 32;
    int at = 0, done = 0;
    for (int l = 0; l < lanes; l++) {
      at += g_fibers[base + l].state == F_SHFL;
      done += g_fibers[base + l].state == F_DONE;
    }
    if (at == 0 || at + done < lanes) continue;
    if (done || lanes < 32) {
      snprintf(err, errlen, "warp shuffle in warp %d with %d of 32 lanes present", base / 32, at);
      return -1;
    }
    for (int l = 0; l < 32; l++) {
      Fiber *f = &g_fibers[base + l];
      int src = f->mode == 0 ? l + f->arg : l ^ f->arg;
      f->res = src >= 0 && src < 32 ? g_fibers[base + src].val : f->val;
    }
    for (int l = 0; l < 32; l++) g_fibers[base + l].state = F_READY;
    released++;
  }
  return released;
}

static int run_block(char *err, size_t errlen) {
  for (int i = 0; i < g_n; i++) {
    Fiber *f = &g_fibers[i];
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack;
    f->ctx.uc_stack.ss_size = kStack;
    f->ctx.uc_link = &g_sched;
    makecontext(&f->ctx, fiber_entry, 0);
    f->state = F_READY;
    f->tid.x = (unsigned)i;
    f->tid.y = f->tid.z = 0;
  }
  int live = g_n;
  while (live > 0) {
    int ran = 0;
    for (int i = 0; i < g_n; i++) {
      if (g_fibers[i].state != F_READY) continue;
      switch_to(i);
      ran++;
      if (g_fibers[i].state == F_DONE) live--;
    }
    int w = release_warps(err, errlen);
    if (w < 0) return -1;
    int sync = 0, done = 0;
    for (int i = 0; i < g_n; i++) {
      sync += g_fibers[i].state == F_SYNC;
      done += g_fibers[i].state == F_DONE;
    }
    int released = w;
    if (sync > 0 && sync + done == g_n) {
      if (done) {
        snprintf(err, errlen, "__syncthreads() reached by %d threads after %d returned", sync, done);
        return -1;
      }
      for (int i = 0; i < g_n; i++) g_fibers[i].state = F_READY;
      released++;
    }
    if (!ran && !released && live > 0) {
      int shfl = 0;
      for (int i = 0; i < g_n; i++) shfl += g_fibers[i].state == F_SHFL;
      snprintf(err, errlen, "deadlock: %d threads at __syncthreads(), %d at shuffles, %d returned",
               sync, shfl, done);
      return -1;
    }
  }
  return 0;
}

// Runs kernel(args) over grid (gx, gy) with bx threads per block.
extern "C" int nao_emu_launch(void *kernel, unsigned gx, unsigned gy, unsigned bx,
                              const void *args, size_t args_size, char *err, size_t errlen) {
  if (args_size != sizeof(EmuArgs)) {
    snprintf(err, errlen, "argument block of %zu bytes, the emulator expects %zu", args_size,
             sizeof(EmuArgs));
    return -1;
  }
  if (bx == 0 || bx > 1024 || gx == 0 || gy == 0) {
    snprintf(err, errlen, "bad launch geometry (%u, %u) x %u", gx, gy, bx);
    return -1;
  }
  if (ensure_fibers((int)bx)) {
    snprintf(err, errlen, "out of memory for %u fibers", bx);
    return -1;
  }
  memcpy(&g_args, args, sizeof g_args);
  g_kernel = (void (*)(EmuArgs))kernel;
  g_n = (int)bx;
  nao_emu_block_dim = dim3{bx, 1, 1};
  nao_emu_grid_dim = dim3{gx, gy, 1};
  for (unsigned y = 0; y < gy; y++)
    for (unsigned x = 0; x < gx; x++) {
      nao_emu_block_idx = dim3{x, y, 0};
      if (run_block(err, errlen)) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "block (%u, %u): ", x, y);
        size_t n = strlen(tmp), m = strlen(err);
        if (n + m + 1 < errlen) {
          memmove(err + n, err, m + 1);
          memcpy(err, tmp, n);
        }
        return -1;
      }
    }
  return 0;
}
