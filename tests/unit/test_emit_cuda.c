// tests/unit/test_emit_cuda.c — generated CUDA for small training graphs, run in
// the CPU emulator (tests/cuda_emu) and compared with a double-precision
// reference of the IR: every stored tensor, every gradient, the running
// statistics.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/emu_check.h"

static int failures;

#define CHECK(cond, ...)                                 \
  do {                                                   \
    if (!(cond)) {                                       \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                      \
      fputc('\n', stderr);                               \
      failures++;                                        \
    }                                                    \
  } while (0)

// ReLU -> depthwise 3x3 -> 1x1 -> BN -> ReLU -> GAP -> linear -> loss.
static void test_small_chain(void) {
  TG t;
  tg_init(&t, IR_MODE_TRAIN);
  int x = tg_input(&t, 6, 7, 7);
  int lab = tg_labels(&t);
  int r = tg_relu(&t, "op.0", x);
  int d = tg_conv(&t, "op.1", r, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6);
  int p = tg_conv(&t, "op.2", d, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1);
  int b = tg_bn(&t, "op.3", p);
  int r2 = tg_relu(&t, "op.4", b);
  int gp = tg_gap(&t, "gap", r2);
  int lg = tg_linear(&t, "classifier", gp, 5);
  tg_xent(&t, "loss", lg, lab, 0.1f, 1.0f);
  tg_backward(&t);
  EmuCheck chk = {.n = 5, .print_source = getenv("NAO_PRINT") != NULL};
  CHECK(emu_check(&t, NULL, &chk, "small chain", NULL) == 0, "small chain");
  tg_free(&t);
}

int main(void) {
  test_small_chain();
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  return 0;
}
