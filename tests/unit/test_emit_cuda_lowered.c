// tests/unit/test_emit_cuda_lowered.c — the CUDA programs of real NAO networks
// (the lowering, concat views and autodiff of the project, as emit_net_cu
// builds them), small settings, run in the CPU emulator and compared with both
// references: NAONet-A and NAONet-B cells, CIFAR and ImageNet stems, auxiliary
// head, drop-path and dropout; training and evaluation programs.
#include <stdio.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/emit_cuda.h"
#include "compiler/lower.h"
#include "tests/unit/emu_check.h"

static int failures;

static const char *const ARCH_A =
    "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7";
static const char *const ARCH_B =
    "0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2";

typedef struct {
  const char *label;
  const char *arch;
  DatasetPreset dataset;
  int channels, size;
  double aux;
  int ws;  // the NAO-WS supernet lowering (weight sharing), scoring mode for eval
} Case;

// The supernet's graphs (compiler/lower_ws.c): train with its backward pass,
// and the scoring pass of decision O7 (eval mode, batch statistics).
static int lower_ws(const NetSpec *ns, ParamTable *pt, IrGraph *train, IrGraph *eval, char *err,
                    size_t errlen) {
  ir_init(train, pt, IR_MODE_TRAIN);
  ir_init(eval, pt, IR_MODE_EVAL);
  if (lower_ws_declare_params(ns, pt, err, errlen)) return -1;
  LowerOptions lo;
  lower_options_init(&lo, IR_MODE_TRAIN);
  if (lower_ws_network(ns, &lo, pt, train, err, errlen) ||
      ir_concat_to_views(train, err, errlen) < 0 || ir_autodiff(train, err, errlen))
    return -1;
  lower_options_init(&lo, IR_MODE_EVAL);
  lo.bn_batch_stats = 1;
  if (lower_ws_network(ns, &lo, pt, eval, err, errlen) || ir_concat_to_views(eval, err, errlen) < 0)
    return -1;
  return 0;
}

static void run_case(const Case *c, int n) {
  NetSpec ns;
  netspec_init(&ns);
  netspec_apply_dataset(&ns, c->dataset);
  char err[1024];
  if (netspec_parse_arch(&ns, c->arch, err, sizeof err)) {
    fprintf(stderr, "%s: %s\n", c->label, err);
    failures++;
    return;
  }
  ns.channels = c->channels;
  ns.layers = 1;
  ns.aux_weight = c->aux;
  ns.classes = 10;
  if (c->size) ns.in_height = ns.in_width = c->size;
  ParamTable pt;
  params_init(&pt);
  IrGraph train, eval;
  EmitCudaOptions opt;
  emit_cuda_defaults(&opt);
  opt.no_reuse = 1;
  int bad = c->ws ? lower_ws(&ns, &pt, &train, &eval, err, sizeof err)
                  : emit_cuda_lower(&ns, emit_cuda_smoothing(&ns, &opt), 1, &pt, &train, &eval,
                                    err, sizeof err);
  if (bad) {
    fprintf(stderr, "%s: %s\n", c->label, err);
    failures++;
  } else {
    EmuCheck chk = {.n = n};
    char label[96];
    snprintf(label, sizeof label, "%s train", c->label);
    if (emu_check_graph(&train, &opt, &chk, label, NULL)) failures++;
    snprintf(label, sizeof label, "%s eval", c->label);
    if (emu_check_graph(&eval, &opt, &chk, label, NULL)) failures++;
  }
  ir_free(&train);
  ir_free(&eval);
  params_free(&pt);
}

int main(int argc, char **argv) {
  const Case cases[] = {
      {"naonet-b cifar", ARCH_B, DATASET_CIFAR10, 6, 0, 0.4, 0},
      {"naonet-a cifar", ARCH_A, DATASET_CIFAR10, 4, 0, 0.4, 0},
      {"naonet-a imagenet", ARCH_A, DATASET_IMAGENET, 4, 64, 0.0, 0},
      {"nao-ws supernet", ARCH_B, DATASET_CIFAR10, 4, 0, 0.0, 1},
  };
  size_t n_cases = sizeof cases / sizeof cases[0];
#if defined(__SANITIZE_ADDRESS__)
  n_cases = 1;  // instrumented emulation is slow: the depthwise-heavy network only
#endif
  for (size_t i = 0; i < n_cases; i++)
    if (argc < 2 || strstr(cases[i].label, argv[1])) run_case(&cases[i], 4);
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  return 0;
}
