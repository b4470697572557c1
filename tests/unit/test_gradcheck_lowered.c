// tests/unit/test_gradcheck_lowered.c — gradient checks of whole networks as the
// compiler lowers them (lower_network / lower_ws_network), not hand-built:
// both op vocabularies, the CIFAR and ImageNet stems, the Fashion-MNIST preset
// with its auxiliary head on 7x7, dropout, drop-path mid-schedule, label
// smoothing, and the weight-sharing supernet. The pipeline is the trainer's:
// lower -> concat views -> autodiff; the oracle is the double-precision
// reference interpreter (tests/unit/ir_ref.c) and central finite differences.
#include <stdio.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/lower.h"
#include "compiler/netspec.h"
#include "tests/unit/graph_builders.h"
#include "tests/unit/ref_check.h"

static int t_failures;

// NAO-SPEC.md §1b: NAONet-B (5-op vocabulary) and NAONet-A (11-op vocabulary).
static const char *const naonet_b =
    "0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2";
static const char *const naonet_a =
    "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7";

typedef struct {
  const char *what;
  const char *arch;
  DatasetPreset dataset;
  int explicit_imagenet_stem;  // 3x64x64 input through the ImageNet stem
  int channels, layers;
  double aux, drop_path_keep, dropout_keep;
  IrMode mode;
  float smoothing;
  int ws;
} Case;

static void make_spec(const Case *c, NetSpec *ns) {
  char err[256];
  netspec_init(ns);
  netspec_apply_dataset(ns, c->dataset);
  if (c->explicit_imagenet_stem) {
    ns->dataset = DATASET_NONE;
    ns->in_channels = 3;
    ns->in_height = ns->in_width = 64;
    ns->classes = 5;
    ns->stem = STEM_IMAGENET;
  }
  ns->channels = c->channels;
  ns->layers = c->layers;
  ns->aux_weight = c->aux;
  ns->drop_path_keep = c->drop_path_keep;
  ns->dropout_keep = c->dropout_keep;
  if (netspec_parse_arch(ns, c->arch, err, sizeof err) != 0) T_CHECK(0, "%s: %s", c->what, err);
}

static void check_case(const Case *c) {
  char err[512];
  NetSpec ns;
  make_spec(c, &ns);
  ParamTable pt;
  params_init(&pt);
  IrGraph g;
  ir_init(&g, &pt, c->mode);
  LowerOptions lo;
  lower_options_init(&lo, c->mode);
  lo.label_smoothing = c->smoothing;
  int rc = c->ws ? lower_ws_network(&ns, &lo, &pt, &g, err, sizeof err)
                 : lower_network(&ns, &lo, &pt, &g, err, sizeof err);
  if (rc == 0 && ir_concat_to_views(&g, err, sizeof err) < 0) rc = -1;
  if (rc == 0 && ir_autodiff(&g, err, sizeof err) < 0) rc = -1;
  T_CHECK(rc == 0, "%s: %s", c->what, err);
  if (rc != 0) goto done;

  RefState s;
  ref_init(&s, &g, 4);  // BN over 1x1 maps sees N values: N=2 is too sharp for FD
  gb_random_params(&g, &s, 7);
  gb_random_data(&g, &s, 8);
  // Mid-schedule, so drop-path keeps are strictly between p and 1.
  RefRun run = {.step = 400, .total_steps = 1000, .seed = 11};
  FdOptions fo;
  fd_defaults(&fo);
  fo.max_elems = 2;
  FdStats st;
  rc = fd_check(&g, &s, &run, NULL, 0, &fo, &st, err, sizeof err);
  T_CHECK(rc == 0, "%s: %s", c->what, err);
  // Enough of the network was really compared, and not mostly across kinks.
  T_CHECK(st.checked > 60 && st.max_grad > 1e-3, "%s: %d checked, max |g| %g", c->what,
          st.checked, st.max_grad);
  T_CHECK(st.skipped * 10 <= st.checked, "%s: %d of %d skipped", c->what, st.skipped,
          st.checked + st.skipped);
  printf("%-44s %4d params %5d nodes: checked %4d skipped %2d max err/tol %.2e\n", c->what, pt.n,
         g.n_nodes, st.checked, st.skipped, st.max_err);
  ref_free(&s);
  rc = pc_plan_matches_ref(&g, 1, 3, 5, &run, err, sizeof err);
  T_CHECK(rc == 0, "%s: plan: %s", c->what, err);
done:
  ir_free(&g);
  params_free(&pt);
}

int main(void) {
  const Case cases[] = {
      {"NAONet-B cells, fashion-mnist, aux on 7x7", naonet_b, DATASET_FASHION_MNIST, 0, 2, 0, 0.4,
       0.7, 0.8, IR_MODE_TRAIN, 0.1f, 0},
      {"NAONet-A cells, cifar10, aux on 8x8", naonet_a, DATASET_CIFAR10, 0, 2, 0, 0.4, 0.8, 0.6,
       IR_MODE_TRAIN, 0.0f, 0},
      {"NAONet-A cells, ImageNet stem, 64x64", naonet_a, DATASET_NONE, 1, 2, 0, 0, 0.9, 1.0,
       IR_MODE_TRAIN, 0.1f, 0},
      {"NAONet-B cells, cifar10, eval mode", naonet_b, DATASET_CIFAR10, 0, 2, 0, 0.4, 0.8, 0.6,
       IR_MODE_EVAL, 0.0f, 0},
      {"NAONet-B arch on the NAO-WS supernet", naonet_b, DATASET_CIFAR10, 0, 2, 0, 0, 0.9, 1.0,
       IR_MODE_TRAIN, 0.0f, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i]);
  if (t_failures) fprintf(stderr, "%d checks failed\n", t_failures);
  return t_failures != 0;
}
