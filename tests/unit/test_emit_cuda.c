// tests/unit/test_emit_cuda.c — generated CUDA for the hand-built test networks
// (tests/unit/emu_nets.c) run in the CPU emulator (tests/cuda_emu) and compared
// with a double-precision reference of the IR: every stored tensor, every
// gradient, the running statistics, the loss; fused and unfused; with and
// without arena reuse; the optimizer program.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/emu_check.h"
#include "tests/unit/emu_nets.h"

static int failures;

static void check_net(const EmuNet *net, int no_fuse, int reuse, int update, int n, int smem,
                      int vec) {
  TG t;
  emu_net_make(net, &t);
  EmitCudaOptions opt;
  emit_cuda_defaults(&opt);
  opt.no_fuse = no_fuse;
  opt.no_reuse = !reuse;
  if (smem) opt.smem_limit = smem;
  opt.vec = vec;
  EmuCheck chk = {.n = n, .update = update, .print_source = getenv("NAO_PRINT") != NULL};
  char label[96];
  snprintf(label, sizeof label, "%s%s%s%s%s n=%d", net->name, no_fuse ? " unfused" : "",
           reuse ? " reuse" : "", smem ? " direct" : "", vec ? "" : " scalar", n);
  EmuResult res;
  if (emu_check(&t, &opt, &chk, label, &res)) failures++;
  tg_free(&t);
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  for (int i = 0; i < emu_net_count(); i++) {
    const EmuNet *net = emu_net_at(i);
    if (only && strcmp(only, net->name) != 0) continue;
    int train = net->mode == IR_MODE_TRAIN;
    check_net(net, 0, 0, train, 5, 0, 1);
    check_net(net, 1, 0, 0, 3, 0, 1);
    check_net(net, 0, 1, 0, 7, 0, 1);
    // planes too large for shared memory: the direct variants; scalar accesses
    if (strcmp(net->name, "chain") != 0) check_net(net, 0, 0, 0, 4, 64, 0);
  }
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  return 0;
}
