// tests/unit/test_autodiff_ref.c — the reference interpreter's semantics
// (ir_ref.h) on cases small enough to work out by hand: the values expected
// here come from the definitions in NAO-SPEC.md and ir.h, computed on paper,
// not from the interpreter. The gradient checks then tie every backward kind
// to these forward kinds.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rng.h"
#include "tests/unit/graph_builders.h"
#include "tests/unit/ref_check.h"

static int t_failures;

typedef struct {
  ParamTable pt;
  IrGraph g;
  RefState s;
  int x;
} R;

static const RefRun k_run = {.step = 0, .total_steps = 1, .seed = 99};

static void r_begin(R *r, int c, int h, int w) {
  params_init(&r->pt);
  ir_init(&r->g, &r->pt, IR_MODE_TRAIN);
  r->x = gb_input(&r->g, c, h, w);
}

// Finishes the graph, sets the input (batch n) and runs it.
static void r_run(R *r, int n, const double *x) {
  gb_finish(&r->g);
  ref_init(&r->s, &r->g, n);
  ref_write(&r->s, r->x, x);
  char err[256];
  T_CHECK(ref_run(&r->s, &k_run, 0, r->g.n_nodes, err, sizeof err) == 0, "%s", err);
}

static void r_free(R *r) {
  ref_free(&r->s);
  ir_free(&r->g);
  params_free(&r->pt);
}

static double *param(R *r, const char *name) {
  const ParamInfo *p = &r->pt.items[params_find(&r->pt, name)];
  return (p->trainable ? r->s.params : r->s.buffers) + p->offset;
}

static void expect(R *r, int t, const double *want, const char *what) {
  size_t n = ir_tensor_numel(&r->g.tensors[t]) * (size_t)(r->s.stride[t] ? r->s.batch : 1);
  double *got = xmalloc(sizeof(double) * n);
  ref_read(&r->s, t, got);
  for (size_t j = 0; j < n; j++)
    T_CHECK(fabs(got[j] - want[j]) <= 1e-12 * fmax(1, fabs(want[j])), "%s[%zu]: %.15g, expected %.15g",
            what, j, got[j], want[j]);
  free(got);
}

// Params must be set after ref_init, so graphs with parameters are run in two
// steps: build, init, set, run.
static void r_init(R *r, int n, const double *x) {
  gb_finish(&r->g);
  ref_init(&r->s, &r->g, n);
  ref_write(&r->s, r->x, x);
}

static void r_go(R *r) {
  char err[256];
  T_CHECK(ref_run(&r->s, &k_run, 0, r->g.n_nodes, err, sizeof err) == 0, "%s", err);
}

// ---------------------------------------------------------------- conv

static void test_conv_crop(void) {
  // FactorizedReduce's two paths on x[i][j] = 10 i + j: path 1 samples (0,0),
  // (0,2), ...; path 2 (pads -1 top/left, +1 bottom/right) samples (1,1),
  // (1,3), ...; on a 5x5 input the last path-2 row/column reads the zero pad.
  for (int size = 4; size <= 5; size++) {
    R r;
    r_begin(&r, 1, size, size);
    int p1 = gb_conv(&r.g, "p1", r.x, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1);
    int p2 = gb_conv(&r.g, "p2", r.x, 1, 1, 1, 2, 2, -1, -1, 1, 1, 1);
    double x[25];
    for (int i = 0; i < size; i++)
      for (int j = 0; j < size; j++) x[i * size + j] = 10 * i + j;
    r_init(&r, 1, x);
    param(&r, "p1.weight")[0] = 1;
    param(&r, "p2.weight")[0] = 1;
    r_go(&r);
    if (size == 4) {
      expect(&r, p1, (double[]){0, 2, 20, 22}, "path1 4x4");
      expect(&r, p2, (double[]){11, 13, 31, 33}, "path2 4x4");
    } else {
      expect(&r, p1, (double[]){0, 2, 4, 20, 22, 24, 40, 42, 44}, "path1 5x5");
      expect(&r, p2, (double[]){11, 13, 0, 31, 33, 0, 0, 0, 0}, "path2 5x5");
    }
    r_free(&r);
  }
}

static void test_conv_counts(void) {
  // Ones through a 3x3 all-ones kernel, pad 1: the count of in-image cells.
  R r;
  r_begin(&r, 1, 3, 3);
  int y = gb_conv_sq(&r.g, "c", r.x, 1, 3, 1, 1, 1);
  double x[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  r_init(&r, 1, x);
  for (int k = 0; k < 9; k++) param(&r, "c.weight")[k] = 1;
  r_go(&r);
  expect(&r, y, (double[]){4, 6, 4, 6, 9, 6, 4, 6, 4}, "3x3 ones");
  r_free(&r);

  // Groups: 4 channels in, 2 groups, 2 out: y0 = 1*x0 + 2*x1, y1 = 3*x2 + 4*x3.
  r_begin(&r, 4, 1, 1);
  y = gb_conv(&r.g, "g", r.x, 2, 1, 1, 1, 1, 0, 0, 0, 0, 2);
  r_init(&r, 1, (double[]){1, 10, 100, 1000});
  double *w = param(&r, "g.weight");  // [2, 2, 1, 1]
  w[0] = 1, w[1] = 2, w[2] = 3, w[3] = 4;
  r_go(&r);
  expect(&r, y, (double[]){21, 4300}, "grouped conv");
  r_free(&r);
}

// ---------------------------------------------------------------- pools

static void test_pools(void) {
  double pos[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, neg[9];
  for (int k = 0; k < 9; k++) neg[k] = -pos[k];
  R r;
  r_begin(&r, 1, 3, 3);
  int avg_ex = gb_pool(&r.g, "a", r.x, 0, 3, 3, 1, 1, 1, 1, 1, 1, 0);  // count_include_pad False
  int avg_in = gb_pool(&r.g, "b", r.x, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1);  // count_include_pad True
  int avg2 = gb_pool(&r.g, "c", r.x, 0, 2, 2, 1, 1, 0, 0, 1, 1, 1);    // op 13: right/bottom zero
  r_run(&r, 1, pos);
  expect(&r, avg_ex, (double[]){3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7}, "avg 3x3 not counted");
  expect(&r, avg_in, (double[]){12 / 9., 21 / 9., 16 / 9., 27 / 9., 5, 33 / 9., 24 / 9., 39 / 9., 28 / 9.},
         "avg 3x3 counted");
  expect(&r, avg2, (double[]){3, 4, 2.25, 6, 7, 3.75, 3.75, 4.25, 2.25}, "avg 2x2 padded");
  r_free(&r);

  r_begin(&r, 1, 3, 3);
  int max3 = gb_pool(&r.g, "m3", r.x, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0);  // pad -inf
  int max2 = gb_pool(&r.g, "m2", r.x, 1, 2, 2, 1, 1, 0, 0, 1, 1, 1);  // op 10: the 0 counts
  int max2s = gb_pool(&r.g, "m2s", r.x, 1, 2, 2, 2, 2, 0, 0, 1, 1, 1);
  r_run(&r, 1, neg);
  expect(&r, max3, (double[]){-1, -1, -2, -1, -1, -2, -4, -4, -5}, "max 3x3 on negatives");
  expect(&r, max2, (double[]){-1, -2, 0, -4, -5, 0, 0, 0, 0}, "max 2x2 padded on negatives");
  expect(&r, max2s, (double[]){-1, 0, 0, 0}, "max 2x2 s2 padded on negatives");
  r_free(&r);
}

static void test_pool_backward_rules(void) {
  // Ties: the first maximum in row-major order takes the whole gradient.
  ParamTable pt;
  params_init(&pt);
  IrGraph g;
  ir_init(&g, &pt, IR_MODE_TRAIN);
  int x = gb_input(&g, 1, 2, 3);
  int y = gb_pool(&g, "m", x, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0);  // (1, 1, 2)
  int y2 = gb_pool(&g, "z", x, 1, 2, 2, 1, 1, 0, 0, 1, 1, 1); // padded, counted (1, 2, 3)
  int dy = ir_add_tensor(&g, IR_T_ACT, 1, 1, 2, "dy"), dx = ir_add_tensor(&g, IR_T_ACT, 1, 2, 3, "dx");
  int dy2 = ir_add_tensor(&g, IR_T_ACT, 1, 2, 3, "dy2"), dx2 = ir_add_tensor(&g, IR_T_ACT, 1, 2, 3, "dx2");
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = IR_POOL_BWD;
  n.a.pool = g.nodes[g.tensors[y].producer].a.pool;
  n.n_in = 3, n.in[0] = x, n.in[1] = y, n.in[2] = dy, n.n_out = 1, n.out[0] = dx;
  ir_add_node(&g, &n);
  n.a.pool = g.nodes[g.tensors[y2].producer].a.pool;
  n.in[1] = y2, n.in[2] = dy2, n.out[0] = dx2;
  ir_add_node(&g, &n);
  RefState s;
  ref_init(&s, &g, 1);
  ref_write(&s, x, (double[]){5, 5, 1, 5, 5, -3});
  ref_write(&s, dy, (double[]){1, 10});
  ref_write(&s, dy2, (double[]){1, 2, 4, 8, 16, 32});
  char err[256];
  T_CHECK(ref_run(&s, &k_run, 1, g.n_nodes, err, sizeof err) == 0, "%s", err);
  double got[6];
  ref_read(&s, dx, got);
  // Window (0,0): cells 5 5 / 5 5 -> (0,0). Window (0,1): 5 1 / 5 -3 -> (0,1).
  double want[6] = {1, 10, 0, 0, 0, 0};
  for (int k = 0; k < 6; k++) T_CHECK(got[k] == want[k], "tie rule dx[%d] = %g", k, got[k]);
  // Padded windows: (0,2): 1, 0pad / -3, 0pad -> 1 at (0,2); (1,2): -3, pads -> a pad
  // wins, the gradient 32 is dropped; (1,0): 5 5 / pads -> (1,0); (1,1): 5 -3 -> (1,1).
  ref_read(&s, dx2, got);
  double want2[6] = {1, 2, 4, 8, 16, 0};
  for (int k = 0; k < 6; k++) T_CHECK(got[k] == want2[k], "padded max dx[%d] = %g", k, got[k]);
  ref_free(&s);
  ir_free(&g);
  params_free(&pt);
}

// ---------------------------------------------------------------- bn

static void test_bn(void) {
  // Channel 0 over N=2, H*W=2 holds 1 2 | 3 4: mean 2.5, biased var 1.25,
  // unbiased 5/3. Channel 1 holds 0 0 | 0 8: mean 2, var 12, unbiased 16.
  R r;
  r_begin(&r, 2, 1, 2);
  int y = gb_bn(&r.g, "bn", r.x, 1, 1);
  int bn = r.g.tensors[y].producer;
  int mean = r.g.nodes[bn].out[1], invstd = r.g.nodes[bn].out[2];
  r_init(&r, 2, (double[]){1, 2, 0, 0, 3, 4, 0, 8});
  double *gm = param(&r, "bn.weight"), *bt = param(&r, "bn.bias");
  double *rm = param(&r, "bn.running_mean"), *rv = param(&r, "bn.running_var");
  gm[0] = 2, gm[1] = 1, bt[0] = 1, bt[1] = -1, rm[0] = 1, rm[1] = 0, rv[0] = 1, rv[1] = 2;
  r_go(&r);
  double eps = (double)1e-5f, i0 = 1 / sqrt(1.25 + eps), i1 = 1 / sqrt(12 + eps);
  expect(&r, mean, (double[]){2.5, 2}, "batch mean");
  expect(&r, invstd, (double[]){i0, i1}, "batch invstd");
  expect(&r, y,
         (double[]){2 * -1.5 * i0 + 1, 2 * -0.5 * i0 + 1, -2 * i1 - 1, -2 * i1 - 1,
                    2 * 0.5 * i0 + 1, 2 * 1.5 * i0 + 1, -2 * i1 - 1, 6 * i1 - 1},
         "bn train output");
  double m = (double)0.1f;
  T_CHECK(fabs(rm[0] - ((1 - m) * 1 + m * 2.5)) < 1e-15 && fabs(rm[1] - m * 2) < 1e-15,
          "running mean %g %g", rm[0], rm[1]);
  T_CHECK(fabs(rv[0] - ((1 - m) * 1 + m * 5 / 3.)) < 1e-15 && fabs(rv[1] - ((1 - m) * 2 + m * 16)) < 1e-14,
          "running var (unbiased) %g %g", rv[0], rv[1]);
  r_free(&r);

  // Evaluation: running statistics, nothing updated.
  r_begin(&r, 1, 1, 2);
  y = gb_bn(&r.g, "bn", r.x, 0, 0);
  r_init(&r, 1, (double[]){3, 5});
  param(&r, "bn.weight")[0] = 2;
  param(&r, "bn.bias")[0] = 0.5;
  param(&r, "bn.running_mean")[0] = 1;
  param(&r, "bn.running_var")[0] = 4;
  r_go(&r);
  double is = 1 / sqrt(4 + eps);
  expect(&r, y, (double[]){2 * 2 * is + 0.5, 2 * 4 * is + 0.5}, "bn eval output");
  T_CHECK(param(&r, "bn.running_mean")[0] == 1 && param(&r, "bn.running_var")[0] == 4,
          "eval BN changed its running statistics");
  r_free(&r);
}

// ---------------------------------------------------------------- xent, linear, gap

static void test_xent(void) {
  R r;
  r_begin(&r, 3, 1, 1);
  gb_labels(&r.g);
  r.g.logits = r.x;
  int loss = gb_xent(&r.g, "xent", r.x, 0.1f, 0.4f);
  int sm = r.g.nodes[r.g.n_nodes - 1].out[1];
  r_init(&r, 2, (double[]){2, 0, 0, 0, 0, 0});
  int labels[2] = {0, 2};
  ref_set_labels(&r.s, r.g.labels, labels);
  r_go(&r);
  // Sample 0: lse = log(e^2 + 2), q = (0.9 + 0.1/3, 0.1/3, 0.1/3): CE = lse - 2 q0.
  // Sample 1: uniform logits: CE = log 3 whatever q. loss = 0.4 * mean.
  double eps = (double)0.1f, lse = log(exp(2) + 2), q0 = 1 - eps + eps / 3;
  double want = (double)0.4f * ((lse - 2 * q0) + log(3)) / 2;
  expect(&r, loss, &want, "smoothed, weighted loss");
  double e2 = exp(2) / (exp(2) + 2), e0 = 1 / (exp(2) + 2);
  expect(&r, sm, (double[]){e2, e0, e0, 1 / 3., 1 / 3., 1 / 3.}, "softmax");
  r_free(&r);
}

static void test_linear_gap(void) {
  R r;
  r_begin(&r, 2, 1, 2);
  int gap = gb_gap(&r.g, "gap", r.x);
  int y = gb_linear(&r.g, "fc", r.x, 2);
  r_init(&r, 1, (double[]){1, 3, 10, 20});
  double *w = param(&r, "fc.weight"), *b = param(&r, "fc.bias");  // [2, 4], [2]
  for (int k = 0; k < 8; k++) w[k] = k;
  b[0] = 0.5, b[1] = -1;
  r_go(&r);
  expect(&r, gap, (double[]){2, 15}, "gap");
  expect(&r, y, (double[]){0 + 3 + 20 + 60 + 0.5, 4 + 15 + 60 + 140 - 1}, "linear (flattened CHW)");
  r_free(&r);
}

// ---------------------------------------------------------------- masks

static void test_masks(void) {
  // Dropout: element (n, j) is kept iff rng_hash_uniform(key, n*numel + j) < keep.
  R r;
  r_begin(&r, 4, 8, 8);  // 256 per sample
  gb_dropout(&r.g, "drop", r.x, 0.7f);
  int node = r.g.n_nodes - 1, mask = r.g.nodes[node].out[1], y = r.g.nodes[node].out[0];
  double *x = xmalloc(sizeof(double) * 256 * 8);
  for (int k = 0; k < 256 * 8; k++) x[k] = 1 + k % 7;
  r_run(&r, 8, x);
  uint64_t key = ref_mask_key(k_run.seed, k_run.step, node);
  int kept = 0, bad = 0;
  for (int n = 0; n < 8; n++)
    for (int j = 0; j < 256; j++) {
      double want = rng_hash_uniform(key, (uint64_t)(n * 256 + j)) < 0.7f ? 1 / (double)0.7f : 0;
      bad += *ref_at(&r.s, mask, n, (size_t)j) != want ||
             *ref_at(&r.s, y, n, (size_t)j) != x[n * 256 + j] * want;
      kept += want != 0;
    }
  T_CHECK(bad == 0, "%d dropout elements differ from the definition", bad);
  T_CHECK(abs(kept - 1434) < 90, "kept %d of 2048 at keep 0.7", kept);  // 3 sigma = 62
  free(x);
  r_free(&r);

  // Drop-path: keep = max(p, 1 - (t+1)/T (i+1)/n (1-p)), one draw per sample.
  struct { long t, T; double keep; } cases[] = {
      {49, 100, 1 - 0.5 * 0.6 * (1 - (double)0.6f)},  // 0.88
      {199, 100, (double)0.6f},                        // past T: clamped to p
      {-1, 100, 1.0},                                  // before the first step: none dropped
  };
  for (int c = 0; c < 3; c++) {
    r_begin(&r, 2, 2, 2);
    gb_droppath(&r.g, "dp", r.x, 0.6f, 2, 5);
    node = r.g.n_nodes - 1;
    mask = r.g.nodes[node].out[1];
    gb_finish(&r.g);
    ref_init(&r.s, &r.g, 1000);
    for (int n = 0; n < 1000; n++)
      for (int j = 0; j < 8; j++) *ref_at(&r.s, r.x, n, (size_t)j) = 1;
    RefRun run = {.step = cases[c].t, .total_steps = cases[c].T, .seed = 5};
    char err[256];
    T_CHECK(ref_run(&r.s, &run, 0, r.g.n_nodes, err, sizeof err) == 0, "%s", err);
    float kf = (float)cases[c].keep;
    key = ref_mask_key(5, cases[c].t, node);
    bad = kept = 0;
    for (int n = 0; n < 1000; n++) {
      double want = rng_hash_uniform(key, (uint64_t)n) < kf ? 1 / (double)kf : 0;
      bad += *ref_at(&r.s, mask, n, 0) != want;
      kept += want != 0;
    }
    T_CHECK(bad == 0, "drop-path case %d: %d masks differ", c, bad);
    T_CHECK(fabs(kept - 1000 * cases[c].keep) < 60, "drop-path case %d: kept %d", c, kept);
    r_free(&r);
  }
}

// ---------------------------------------------------------------- accumulate bits

static void test_accumulate(void) {
  ParamTable pt;
  params_init(&pt);
  IrGraph g;
  ir_init(&g, &pt, IR_MODE_TRAIN);
  int x = gb_input(&g, 1, 1, 2);
  int out = ir_add_tensor(&g, IR_T_ACT, 1, 1, 2, "sum");
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = IR_ACCUM;
  n.n_in = n.n_out = 1;
  n.in[0] = x;
  n.out[0] = out;
  ir_add_node(&g, &n);
  n.accumulate = 1;
  ir_add_node(&g, &n);
  ir_add_node(&g, &n);
  RefState s;
  ref_init(&s, &g, 1);
  ref_write(&s, x, (double[]){1.5, -2});
  char err[256];
  T_CHECK(ref_run(&s, &k_run, 0, g.n_nodes, err, sizeof err) == 0, "%s", err);
  T_CHECK(*ref_at(&s, out, 0, 0) == 4.5 && *ref_at(&s, out, 0, 1) == -6, "write, add, add");
  ref_free(&s);
  ir_free(&g);
  params_free(&pt);
}

static void test_rejects(void) {
  // A conv whose output shape contradicts its attributes is refused.
  R r;
  r_begin(&r, 1, 4, 4);
  int y = gb_conv_sq(&r.g, "c", r.x, 1, 3, 1, 1, 1);
  r.g.tensors[y].h = 3;
  gb_finish(&r.g);
  ref_init(&r.s, &r.g, 1);
  char err[256] = "";
  T_CHECK(ref_run(&r.s, &k_run, 0, r.g.n_nodes, err, sizeof err) < 0 && strstr(err, "conv"), "%s", err);
  r_free(&r);
  // A label out of range.
  r_begin(&r, 3, 1, 1);
  gb_labels(&r.g);
  gb_xent(&r.g, "xent", r.x, 0, 1);
  r_init(&r, 1, (double[]){0, 0, 0});
  ref_set_labels(&r.s, r.g.labels, (int[]){3});
  T_CHECK(ref_run(&r.s, &k_run, 0, r.g.n_nodes, err, sizeof err) < 0 && strstr(err, "label"), "%s", err);
  r_free(&r);
}

int main(void) {
  test_conv_crop();
  test_conv_counts();
  test_pools();
  test_pool_backward_rules();
  test_bn();
  test_xent();
  test_linear_gap();
  test_masks();
  test_accumulate();
  test_rejects();
  if (t_failures) {
    fprintf(stderr, "test_autodiff_ref: %d checks failed\n", t_failures);
    return 1;
  }
  printf("test_autodiff_ref: ok\n");
  return 0;
}
