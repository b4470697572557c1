// tests/unit/test_gradcheck_ops.c — every forward kind's backward against
// central finite differences, in double precision, on small random graphs:
//   input -> conv (so the op's input has a parameter upstream and needs a
//   gradient) -> OP -> ... -> linear -> xent.
// Checked: every parameter's gradient (sampled elements) and the gradient of
// the op's input tensor. Each graph is also run through its plan (reuse on) for
// batch 1 and 3 and must give what separate storage gives (ref_check.h).
//
// Tolerances: fd_defaults (ref_check.c) explains them. Max-pool ties cannot
// happen: the pooled values come from a conv of continuous random data, and a
// finite difference that crosses a kink (relu sign, max-pool argmax) is
// detected by the interpreter's decision hash and skipped, never compared.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "tests/unit/graph_builders.h"
#include "tests/unit/ref_check.h"

static int t_failures;

typedef struct {
  ParamTable pt;
  IrGraph g;
  int op_in;  // the op's input: its gradient is checked too
} Case;

static int case_begin(Case *c, IrMode mode, int cin, int h, int w) {
  params_init(&c->pt);
  ir_init(&c->g, &c->pt, mode);
  int x = gb_input(&c->g, 3, h, w);
  gb_labels(&c->g);
  c->op_in = gb_conv_sq(&c->g, "pre", x, cin, 3, 1, 1, 1);
  return c->op_in;
}

static void case_end(Case *c, int y, float smoothing, float weight) {
  c->g.logits = gb_linear(&c->g, "classifier", y, 5);
  gb_xent(&c->g, "xent", c->g.logits, smoothing, weight);
  gb_finish(&c->g);
}

static void case_free(Case *c) {
  ir_free(&c->g);
  params_free(&c->pt);
}

// Differentiates, gradient-checks with batch `batch`, checks the plan.
static void run_case(Case *c, const char *what, int batch, const RefRun *run) {
  char err[512];
  IrGraph *g = &c->g;
  if (ir_autodiff(g, err, sizeof err) < 0) {
    T_CHECK(0, "%s: autodiff: %s", what, err);
    return;
  }
  RefState s;
  ref_init(&s, g, batch);
  gb_random_params(g, &s, 11);
  gb_random_data(g, &s, 12);
  FdOptions o;
  fd_defaults(&o);
  FdStats st;
  int rc = fd_check(g, &s, run, &c->op_in, 1, &o, &st, err, sizeof err);
  T_CHECK(rc == 0, "%s: %s", what, err);
  T_CHECK(st.checked >= 20 && st.max_grad > 1e-3, "%s: %d elements checked, max gradient %g", what,
          st.checked, st.max_grad);
  T_CHECK(st.skipped * 10 <= st.checked, "%s: %d of %d elements skipped at kinks", what,
          st.skipped, st.checked + st.skipped);
  printf("%-40s checked %4d skipped %2d zero %2d max err/tol %.2e max |g| %.3g\n", what,
         st.checked, st.skipped, st.zero_checked, st.max_err, st.max_grad);
  ref_free(&s);
  for (int b = 1; b <= 3; b += 2) {
    rc = pc_plan_matches_ref(g, 1, b, 21, run, err, sizeof err);
    T_CHECK(rc == 0, "%s: plan, batch %d: %s", what, b, err);
  }
}

static const RefRun k_run = {.step = 10, .total_steps = 40, .seed = 7};

// ---------------------------------------------------------------- conv

typedef struct {
  const char *name;
  int cin, cout, kh, kw, sh, sw, pt, pl, pb, pr, groups, h, w;
} ConvCase;

static void test_convs(void) {
  static const ConvCase cases[] = {
      {"conv 3x3 s1 p1", 4, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6, 6},
      {"conv 3x3 s2 p1 (odd input)", 4, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 7, 7},
      {"conv 5x5 s2 p2", 3, 4, 5, 5, 2, 2, 2, 2, 2, 2, 1, 8, 8},
      {"conv grouped g=2", 4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 5, 5},
      {"conv depthwise 3x3 s2", 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4, 6, 6},
      {"conv depthwise 5x5 s1", 4, 4, 5, 5, 1, 1, 2, 2, 2, 2, 4, 6, 6},
      {"conv 1x3 stride (1,2)", 4, 4, 1, 3, 1, 2, 0, 1, 0, 1, 1, 6, 6},
      {"conv 3x1 stride (2,1)", 4, 4, 3, 1, 2, 1, 1, 0, 1, 0, 1, 6, 6},
      {"conv 1x7 / 7x1 shape (1x7 p3)", 3, 3, 1, 7, 1, 1, 0, 3, 0, 3, 1, 5, 8},
      {"conv asymmetric pads", 3, 4, 3, 3, 1, 1, 0, 2, 2, 1, 1, 5, 6},
      {"conv 1x1 s2 crop (FR path 2)", 4, 3, 1, 1, 2, 2, -1, -1, 1, 1, 1, 6, 6},
      {"conv 1x1 s2 crop, odd input", 4, 3, 1, 1, 2, 2, -1, -1, 1, 1, 1, 7, 7},
      {"conv 3x3 negative top pad", 3, 4, 3, 3, 1, 1, -1, 1, 0, 1, 1, 7, 6},
      {"conv 2x2 valid (aux head)", 4, 6, 2, 2, 1, 1, 0, 0, 0, 0, 1, 2, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const ConvCase *k = &cases[i];
    Case c;
    int x = case_begin(&c, IR_MODE_TRAIN, k->cin, k->h, k->w);
    int y = gb_conv(&c.g, "op", x, k->cout, k->kh, k->kw, k->sh, k->sw, k->pt, k->pl, k->pb,
                    k->pr, k->groups);
    case_end(&c, y, 0, 1);
    run_case(&c, k->name, 2, &k_run);
    case_free(&c);
  }
}

// ---------------------------------------------------------------- bn, relu, add, concat

static void test_bn(int train) {
  Case c;
  int x = case_begin(&c, train ? IR_MODE_TRAIN : IR_MODE_EVAL, 4, 4, 4);
  int y = gb_bn(&c.g, "op", x, train, train);
  y = gb_relu(&c.g, "relu", y);
  y = gb_conv_sq(&c.g, "post", y, 3, 3, 1, 1, 1);
  y = gb_bn(&c.g, "post_bn", y, train, train);  // a BN after a BN: beta's gradient is ~0
  case_end(&c, y, 0, 1);
  run_case(&c, train ? "bn (batch statistics)" : "bn (running statistics)", 3, &k_run);
  case_free(&c);
}

static void test_relu(void) {
  Case c;
  int x = case_begin(&c, IR_MODE_TRAIN, 4, 5, 5);
  case_end(&c, gb_relu(&c.g, "op", x), 0, 1);
  run_case(&c, "relu", 2, &k_run);
  case_free(&c);
}

static void test_add(void) {
  Case c;
  int x = case_begin(&c, IR_MODE_TRAIN, 4, 5, 5);
  int a = gb_relu(&c.g, "a", x);
  int b = gb_conv_sq(&c.g, "b", x, 4, 3, 1, 1, 1);
  int ins[3] = {a, b, x};  // x: used directly too, so three contributions reach it
  case_end(&c, gb_add(&c.g, "op", 3, ins), 0, 1);
  run_case(&c, "add (three inputs, shared source)", 2, &k_run);
  case_free(&c);

  x = case_begin(&c, IR_MODE_TRAIN, 4, 5, 5);
  int twice[2] = {x, x};
  case_end(&c, gb_add(&c.g, "op", 2, twice), 0, 1);
  run_case(&c, "add (x + x)", 2, &k_run);
  case_free(&c);
}

static void test_concat(void) {
  Case c;
  int x = case_begin(&c, IR_MODE_TRAIN, 4, 5, 5);
  int a = gb_conv_sq(&c.g, "a", x, 3, 1, 1, 0, 1);
  int b = gb_relu(&c.g, "b", x);
  int ins[3] = {a, x, b};
  case_end(&c, gb_concat(&c.g, "op", 3, ins), 0, 1);
  run_case(&c, "concat", 2, &k_run);
  case_free(&c);
}

// ---------------------------------------------------------------- pools

typedef struct {
  const char *name;
  int is_max, kh, kw, sh, sw, pt, pl, pb, pr, counted, h, w;
} PoolCase;

static void test_pools(void) {
  static const PoolCase cases[] = {
      {"max 3x3 s1 p1 (pad -inf)", 1, 3, 3, 1, 1, 1, 1, 1, 1, 0, 5, 5},
      {"max 3x3 s2 p1", 1, 3, 3, 2, 2, 1, 1, 1, 1, 0, 6, 6},
      {"max 5x5 s1 p2", 1, 5, 5, 1, 1, 2, 2, 2, 2, 0, 5, 5},
      {"max 2x2 s1, right/bottom 0 counted", 1, 2, 2, 1, 1, 0, 0, 1, 1, 1, 5, 5},
      {"max 2x2 s2, right/bottom 0 counted", 1, 2, 2, 2, 2, 0, 0, 1, 1, 1, 6, 6},
      {"avg 3x3 s1 p1 not counted", 0, 3, 3, 1, 1, 1, 1, 1, 1, 0, 5, 5},
      {"avg 3x3 s2 p1 not counted", 0, 3, 3, 2, 2, 1, 1, 1, 1, 0, 6, 6},
      {"avg 3x3 s1 p1 counted", 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5, 5},
      {"avg 5x5 s2 p2 counted", 0, 5, 5, 2, 2, 2, 2, 2, 2, 1, 6, 6},
      {"avg 2x2 s1, right/bottom 0 counted", 0, 2, 2, 1, 1, 0, 0, 1, 1, 1, 5, 5},
      {"avg 2x2 s2, right/bottom 0 counted", 0, 2, 2, 2, 2, 0, 0, 1, 1, 1, 6, 6},
      {"avg 5x5 s3 valid (aux head)", 0, 5, 5, 3, 3, 0, 0, 0, 0, 1, 8, 8},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const PoolCase *k = &cases[i];
    Case c;
    int x = case_begin(&c, IR_MODE_TRAIN, 3, k->h, k->w);
    int y = gb_pool(&c.g, "op", x, k->is_max, k->kh, k->kw, k->sh, k->sw, k->pt, k->pl, k->pb,
                    k->pr, k->counted);
    case_end(&c, y, 0, 1);
    run_case(&c, k->name, 2, &k_run);
    case_free(&c);
  }
}

// ---------------------------------------------------------------- gap, linear, masks, xent

static void test_gap_linear(void) {
  Case c;
  int x = case_begin(&c, IR_MODE_TRAIN, 4, 5, 5);
  case_end(&c, gb_gap(&c.g, "op", x), 0, 1);
  run_case(&c, "gap", 2, &k_run);
  case_free(&c);

  x = case_begin(&c, IR_MODE_TRAIN, 3, 3, 3);
  int h = gb_linear(&c.g, "op", x, 7);  // a linear feeding a linear: dx of both
  case_end(&c, gb_relu(&c.g, "relu", h), 0, 1);
  run_case(&c, "linear", 3, &k_run);
  case_free(&c);
}

static void test_masks(void) {
  Case c;
  int x = case_begin(&c, IR_MODE_TRAIN, 4, 4, 4);
  case_end(&c, gb_dropout(&c.g, "op", x, 0.7f), 0, 1);
  run_case(&c, "dropout keep 0.7", 2, &k_run);
  case_free(&c);

  // keep 0.5 at step 30 of 40 in cell 3 of 5: keep = 1 - 31/40 * 4/5 * 0.5 = 0.69;
  // with 6 samples some paths are dropped.
  RefRun run = {.step = 30, .total_steps = 40, .seed = 5};
  x = case_begin(&c, IR_MODE_TRAIN, 4, 4, 4);
  case_end(&c, gb_droppath(&c.g, "op", x, 0.5f, 3, 5), 0, 1);
  run_case(&c, "drop-path", 6, &run);
  case_free(&c);
}

static void test_xent(void) {
  Case c;
  int x = case_begin(&c, IR_MODE_TRAIN, 4, 3, 3);
  case_end(&c, x, 0.1f, 0.4f);
  run_case(&c, "xent smoothing 0.1 weight 0.4", 3, &k_run);
  case_free(&c);

  // Two heads summed into g->loss by the accumulate bit ...
  x = case_begin(&c, IR_MODE_TRAIN, 4, 3, 3);
  int aux = gb_linear(&c.g, "aux", gb_gap(&c.g, "aux_gap", x), 5);
  gb_xent(&c.g, "aux_xent", aux, 0.2f, 0.4f);
  c.g.aux_logits = aux;
  case_end(&c, x, 0.1f, 1.0f);
  run_case(&c, "two heads, loss by accumulate", 3, &k_run);
  case_free(&c);

  // ... and by an ADD of loss tensors.
  x = case_begin(&c, IR_MODE_TRAIN, 4, 3, 3);
  aux = gb_linear(&c.g, "aux", gb_gap(&c.g, "aux_gap", x), 5);
  int l1 = gb_xent_own(&c.g, "aux_xent", aux, 0.0f, 0.4f);
  c.g.logits = gb_linear(&c.g, "classifier", x, 5);
  int l2 = gb_xent_own(&c.g, "xent", c.g.logits, 0.1f, 1.0f);
  int ls[2] = {l1, l2};
  c.g.loss = gb_add(&c.g, "loss", 2, ls);
  gb_finish(&c.g);
  run_case(&c, "two heads, loss by add", 3, &k_run);
  case_free(&c);
}

// One parameter serving several nodes (weight sharing inside a graph): the
// gradient slots are written by the first backward node, added to by others.
static void test_shared_params(void) {
  Case c;
  int x = case_begin(&c, IR_MODE_TRAIN, 4, 5, 5);
  int a = gb_conv_sq(&c.g, "shared", x, 4, 3, 1, 1, 1);
  int b = gb_conv_sq(&c.g, "shared", gb_relu(&c.g, "r", x), 4, 3, 1, 1, 1);
  int ab[2] = {gb_bn(&c.g, "bn", a, 1, 0), gb_bn(&c.g, "bn", b, 1, 0)};
  int y = gb_add(&c.g, "sum", 2, ab);
  int g1 = gb_linear(&c.g, "fc", gb_gap(&c.g, "gap", y), 4);
  int g2 = gb_linear(&c.g, "fc", gb_gap(&c.g, "gap2", x), 4);
  int gs[2] = {g1, g2};
  case_end(&c, gb_add(&c.g, "heads", 2, gs), 0, 1);
  run_case(&c, "parameters shared by several nodes", 3, &k_run);
  case_free(&c);
}

int main(void) {
  test_convs();
  test_bn(1);
  test_bn(0);
  test_relu();
  test_add();
  test_concat();
  test_pools();
  test_gap_linear();
  test_masks();
  test_xent();
  test_shared_params();
  if (t_failures) {
    fprintf(stderr, "test_gradcheck_ops: %d checks failed\n", t_failures);
    return 1;
  }
  printf("test_gradcheck_ops: ok\n");
  return 0;
}
