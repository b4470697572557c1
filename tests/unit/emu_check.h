// tests/unit/emu_check.h — one call that checks a hand-built graph end to end:
// emit CUDA, build it against the emulator, run it on random data, run the
// double-precision reference, compare (emu_harness.h).
#ifndef NAO_TEST_EMU_CHECK_H
#define NAO_TEST_EMU_CHECK_H

#include "compiler/emit_cuda.h"
#include "tests/unit/emu_graph.h"

typedef struct {
  int n;                 // batch size (default 5)
  unsigned long long seed;
  double tol;            // largest accepted relative error (default 1e-4)
  int expect_kernels;    // > 0: exact number of kernel launches of the program
  int max_kernels;       // > 0: at most this many launches
  int print_source;      // print the device code (debugging)
  int update;            // also run the "update" program and check SGD
} EmuCheck;

typedef struct {
  double max_rel;        // worst relative error over all compared tensors
  char worst[160];       // where
  int launches;          // kernel launches of the graph's program
  int library_steps;
  int kernels;           // distinct kernels of the build
  int compared;          // tensors compared
} EmuResult;

// Returns 0 when every compared value is within tol; prints a summary line
// prefixed by `label`. opt NULL: defaults with no_reuse (every stored tensor
// compared).
int emu_check(TG *t, const EmitCudaOptions *opt, const EmuCheck *chk, const char *label,
              EmuResult *res);

#endif
