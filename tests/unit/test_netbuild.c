// tests/unit/test_netbuild.c — NetSpec -> train / eval graphs over one table:
// the recipe's overrides reach the graphs (aux head, drop-path, dropout), the
// train graph has a backward pass writing every parameter's gradient, the eval
// graph none and no aux head, both graphs share parameter indices, the plans
// are valid, masks are listed, and bad overrides are refused by name.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/netspec.h"
#include "compiler/plan.h"
#include "runtime/netbuild.h"

static int failures;
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      failures++;                                                                \
    }                                                                            \
  } while (0)

static void spec(NetSpec *ns) {
  char err[256];
  netspec_init(ns);
  netspec_apply_dataset(ns, DATASET_FASHION_MNIST);
  ns->channels = 4;
  ns->layers = 1;
  ns->aux_weight = 0;
  ns->drop_path_keep = 1;
  ns->dropout_keep = 1;
  if (netspec_parse_arch(ns, "0 0 1 3 2 7 0 4  0 2 1 3 2 13 0 4", err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
}

static int count_kind(const IrGraph *g, IrKind k, int from, int to) {
  int n = 0;
  for (int i = from; i < to; i++) n += g->nodes[i].kind == k;
  return n;
}

static void test_plain(void) {
  NetSpec ns;
  spec(&ns);
  NetBuildOptions o;
  netbuild_options_default(&o);
  NetBuild nb;
  char err[512];
  CHECK(netbuild_create(&ns, &o, &nb, err, sizeof err) == 0);
  CHECK(nb.has_train && nb.has_eval);
  CHECK(nb.train.params == &nb.params && nb.eval.params == &nb.params);
  CHECK(nb.train.n_nodes > nb.train.n_fwd_nodes && nb.eval.n_nodes == nb.eval.n_fwd_nodes);
  CHECK(nb.train.aux_logits < 0 && nb.eval.aux_logits < 0);
  CHECK(netbuild_mask_nodes(&nb.train, NULL) == 0);
  int all = 1;
  for (int i = 0; i < nb.params.n; i++) all &= !nb.params.items[i].trainable || nb.grad_written[i];
  CHECK(all);
  CHECK(plan_verify(&nb.train, &nb.train_plan, err, sizeof err) == 0);
  CHECK(plan_verify(&nb.eval, &nb.eval_plan, err, sizeof err) == 0);
  netbuild_free(&nb);
}

static void test_overrides(void) {
  NetSpec ns;
  spec(&ns);
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.aux_weight = 0.4, o.drop_path_keep = 0.7, o.dropout_keep = 0.5, o.label_smoothing = 0.1f;
  NetBuild nb;
  char err[512];
  CHECK(netbuild_create(&ns, &o, &nb, err, sizeof err) == 0);
  CHECK(nb.spec.aux_weight == 0.4 && nb.spec.drop_path_keep == 0.7 && nb.spec.dropout_keep == 0.5);
  CHECK(nb.train.aux_logits >= 0 && nb.eval.aux_logits < 0);
  const IrGraph *g = &nb.train;
  int masks[64];
  int n = netbuild_mask_nodes(g, masks);
  // 2 nodes x 2 branches x 5 cells of drop-path, one dropout
  CHECK(n == 21);
  CHECK(count_kind(g, IR_DROPOUT, 0, g->n_fwd_nodes) == 1);
  CHECK(count_kind(&nb.eval, IR_DROPOUT, 0, nb.eval.n_nodes) == 0);
  int smooth = 0, plain = 0;
  for (int i = 0; i < g->n_fwd_nodes; i++)
    smooth += g->nodes[i].kind == IR_XENT && g->nodes[i].a.xent.smoothing == 0.1f;
  for (int i = 0; i < nb.eval.n_nodes; i++)
    plain += nb.eval.nodes[i].kind == IR_XENT && nb.eval.nodes[i].a.xent.smoothing == 0.0f;
  CHECK(smooth == 2 && plain == 1);  // main + aux head in training; plain CE in evaluation
  // every parameter, the aux head's included, gets a gradient in training
  int all = 1, aux = 0;
  for (int i = 0; i < nb.params.n; i++) {
    all &= !nb.params.items[i].trainable || nb.grad_written[i];
    aux += nb.params.items[i].aux;
  }
  CHECK(all && aux > 0);
  netbuild_free(&nb);
  // out of range
  o.dropout_keep = 0;
  CHECK(netbuild_create(&ns, &o, &nb, err, sizeof err) != 0 && strstr(err, "dropout keep probability 0"));
  o.dropout_keep = -1, o.drop_path_keep = 1.5;
  CHECK(netbuild_create(&ns, &o, &nb, err, sizeof err) != 0 && strstr(err, "drop-path keep probability 1.5"));
  netbuild_free(&nb);
}

static void test_eval_grad_and_layout_error(void) {
  NetSpec ns;
  spec(&ns);
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.train = 0, o.eval_grad = 1;
  NetBuild nb;
  char err[512];
  CHECK(netbuild_create(&ns, &o, &nb, err, sizeof err) == 0);
  CHECK(!nb.has_train && nb.eval.n_nodes > nb.eval.n_fwd_nodes);
  int any = 0;
  for (int i = 0; i < nb.params.n; i++) any |= nb.grad_written[i];
  CHECK(any);
  netbuild_free(&nb);
  ns.in_height = ns.in_width = 30;  // 30 -> 15 -> odd: no layout
  netbuild_options_default(&o);
  CHECK(netbuild_create(&ns, &o, &nb, err, sizeof err) != 0 && strstr(err, "15"));
  netbuild_free(&nb);
}

int main(void) {
  test_plain();
  test_overrides();
  test_eval_grad_and_layout_error();
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
