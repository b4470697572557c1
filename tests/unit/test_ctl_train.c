// tests/unit/test_ctl_train.c — the float32 controller as the search uses it:
// parameter count and names at the reference's defaults, safetensors save/load
// (round trip and errors), determinism, splitting a batch over threads, that
// training learns a ranking and to reconstruct its inputs, that the inference
// step moves towards higher predictions, and the pairwise accuracy.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"
#include "search/ctl.h"
#include "search/space.h"
#include "runtime/safetensors.h"
#include "tests/unit/ctl_testutil.h"

static char tmpdir[] = "/tmp/naoc-ctl-XXXXXX";

static void check_param_count(void) {
  CtlConfig c;
  CtlLayout lay;
  ctl_config_default(&c, 12, 40);
  ctl_layout_build(&lay, &c);
  CHECK(lay.total == 279533, "parameters %zu, want 279,533", lay.total);
  CHECK(lay.n_encoder == 175073, "encoder parameters %zu, want 175,073", lay.n_encoder);
  CHECK(lay.total - lay.n_encoder == 104460, "decoder parameters %zu, want 104,460", lay.total - lay.n_encoder);
  CHECK(lay.n == 22, "%d tensors, want 22", lay.n);
  CHECK(!strcmp(lay.p[0].name, "encoder.embedding.weight") && lay.p[0].rows == 12 && lay.p[0].cols == 48,
        "first tensor %s", lay.p[0].name);
  CHECK(!strcmp(lay.p[5].name, "encoder.mlp.layer_0.0.weight") && lay.p[5].rows == 200 && lay.p[5].cols == 96,
        "mlp layer 0: %s", lay.p[5].name);
  CHECK(!strcmp(lay.p[lay.n - 3].name, "decoder.attention.output_proj.weight") && lay.p[lay.n - 3].cols == 192,
        "attention output projection: %s", lay.p[lay.n - 3].name);
  CHECK(!strcmp(lay.p[lay.n - 1].name, "decoder.out.bias"), "last tensor %s", lay.p[lay.n - 1].name);
}

// PyTorch's default init: Embedding N(0, 1), LSTM U(+-1/sqrt(H)), Linear
// weight and bias U(+-1/sqrt(fan_in)).
static void check_init(void) {
  CtlConfig c;
  ctl_config_default(&c, 12, 40);
  Ctl ctl;
  Rng r;
  rng_seed(&r, 8);
  ctl_create(&ctl, &c, &r);
  for (int i = 0; i < ctl.lay.n; i++) {
    const CtlParam *t = &ctl.lay.p[i];
    size_t n = (size_t)t->rows * (t->cols ? t->cols : 1);
    const float *x = ctl.p + t->off;
    double sum = 0, sq = 0, mx = 0;
    for (size_t k = 0; k < n; k++) sum += x[k], sq += (double)x[k] * x[k], mx = fmax(mx, fabs(x[k]));
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    if (strstr(t->name, "embedding")) {
      CHECK(fabs(mean) < 0.15 && fabs(sd - 1) < 0.1, "%s: mean %.3f sd %.3f, want N(0, 1)", t->name, mean, sd);
      continue;
    }
    int fan_in = strstr(t->name, ".rnn.") ? 96 : t->cols ? t->cols : (strstr(t->name, "regressor") ? 200 : 0);
    if (!fan_in) fan_in = !strcmp(t->name, "decoder.out.bias") ? 96 : strstr(t->name, "layer_0") ? 96 : 200;
    double bound = 1 / sqrt((double)fan_in);
    CHECK(mx <= bound && (n < 50 || mx > 0.9 * bound) && (n < 1000 || fabs(sd - bound / sqrt(3.0)) < 0.05 * bound),
          "%s: max |x| %.4f, sd %.4f; want U(+-%.4f)", t->name, mx, sd, bound);
  }
  ctl_destroy(&ctl);
}

static CtlConfig small_config(const SearchSpace *sp, int threads) {
  CtlConfig c;
  ctl_config_default(&c, sp->vocab, sp->length);
  c.emb = 16, c.hidden = 32, c.mlp_hidden = 48, c.threads = threads;
  char err[200];
  CHECK(ctl_config_check(&c, err, sizeof err) == 0, "config: %s", err);
  return c;
}

static void check_save_load(void) {
  SearchSpace sp;
  char err[512], path[256], path2[256];
  space_init(&sp, "nao-small", err, sizeof err);
  CtlConfig c = small_config(&sp, 1);
  Ctl a, b;
  Rng r1, r2;
  rng_seed(&r1, 1), rng_seed(&r2, 2);
  ctl_create(&a, &c, &r1);
  ctl_create(&b, &c, &r2);
  CHECK(memcmp(a.p, b.p, a.lay.total * sizeof(float)) != 0, "different seeds gave the same weights");
  snprintf(path, sizeof path, "%s/a.safetensors", tmpdir);
  CHECK(ctl_save(&a, path, err, sizeof err) == 0, "save: %s", err);
  CHECK(ctl_load(&b, path, err, sizeof err) == 0, "load: %s", err);
  CHECK(!memcmp(a.p, b.p, a.lay.total * sizeof(float)), "weights differ after save and load");
  SafeTensors *f;
  CHECK(st_open(path, &f, err, sizeof err) == 0, "read back: %s", err);
  CHECK(st_count(f) == a.lay.n && st_meta_get(f, "hidden") && !strcmp(st_meta_get(f, "hidden"), "32"),
        "file holds %d tensors, hidden %s", st_count(f), st_meta_get(f, "hidden"));
  st_close(f);
  // A controller with one predictor layer fewer lacks a tensor; another width has other shapes.
  CtlConfig c2 = c;
  c2.mlp_layers = 2;
  Ctl d;
  ctl_create(&d, &c2, &r1);
  snprintf(path2, sizeof path2, "%s/d.safetensors", tmpdir);
  CHECK(ctl_save(&d, path2, err, sizeof err) == 0, "save: %s", err);
  CHECK(ctl_load(&b, path2, err, sizeof err) != 0 && strstr(err, "no tensor 'encoder.mlp.layer_2.0.weight'"),
        "missing tensor: %s", err);
  c2 = c, c2.hidden = 48, c2.emb = 24;
  Ctl e;
  ctl_create(&e, &c2, &r1);
  CHECK(ctl_load(&e, path, err, sizeof err) != 0 && strstr(err, "'encoder.embedding.weight'") && strstr(err, "expected"),
        "wrong shape: %s", err);
  // A truncated file and a file that is not safetensors are errors, not crashes.
  size_t len;
  const char *why;
  char *raw = nao_read_file(path, &len, &why);
  FILE *fp = fopen(path2, "wb");
  fwrite(raw, 1, len / 2, fp);
  fclose(fp);
  CHECK(ctl_load(&b, path2, err, sizeof err) != 0 && strstr(err, path2), "truncated file: %s", err);
  fp = fopen(path2, "wb");
  fputs("hello, world", fp);
  fclose(fp);
  CHECK(ctl_load(&b, path2, err, sizeof err) != 0 && strstr(err, path2) && strstr(err, "not safetensors"), "garbage: %s", err);
  free(raw);
  ctl_destroy(&a), ctl_destroy(&b), ctl_destroy(&d), ctl_destroy(&e);
}

// A learnable toy objective on nb201 cells: weighted op counts.
static float toy_target(const int *tok) {
  static const float w[5] = {0.0f, 0.3f, 0.6f, 1.0f, 0.2f};
  float s = 0;
  for (int e = 0; e < 6; e++) s += w[tok[2 * e + 1] - 4];
  return s / 6;
}

typedef struct {
  SearchSpace sp;
  int n, *tok, *test_tok;
  float *y, *test_y;
} Toy;

static void toy_data(Toy *t, int n) {
  char err[200];
  Rng r;
  space_init(&t->sp, "nb201", err, sizeof err);
  rng_seed(&r, 11);
  t->n = n;
  t->tok = xmalloc((size_t)n * 12 * sizeof(int)), t->test_tok = xmalloc((size_t)n * 12 * sizeof(int));
  t->y = xmalloc((size_t)n * sizeof(float)), t->test_y = xmalloc((size_t)n * sizeof(float));
  for (int i = 0; i < n; i++) {
    space_random(&t->sp, &r, t->tok + i * 12), t->y[i] = toy_target(t->tok + i * 12);
    space_random(&t->sp, &r, t->test_tok + i * 12), t->test_y[i] = toy_target(t->test_tok + i * 12);
  }
}

static void train(Ctl *ctl, const Toy *t, int epochs, uint64_t seed, CtlLoss *last) {
  Rng r;
  rng_seed(&r, seed);
  ctl_adam_reset(ctl);
  for (int e = 0; e < epochs; e++) *last = ctl_train_epoch(ctl, t->n, t->tok, t->y, space_augment, (void *)&t->sp, &r);
}

static void check_determinism_and_threads(const Toy *t) {
  CtlConfig c1 = small_config(&t->sp, 1), c2 = small_config(&t->sp, 2);
  Ctl a, b, m;
  Rng ra, rb, rm;
  rng_seed(&ra, 3), rng_seed(&rb, 3), rng_seed(&rm, 3);
  ctl_create(&a, &c2, &ra);
  ctl_create(&b, &c2, &rb);
  ctl_create(&m, &c1, &rm);
  CtlLoss la, lb, lm;
  train(&a, t, 3, 9, &la);
  train(&b, t, 3, 9, &lb);
  CHECK(!memcmp(a.p, b.p, a.lay.total * sizeof(float)) && la.loss == lb.loss,
        "two runs with one seed differ (loss %.9g vs %.9g)", la.loss, lb.loss);
  train(&m, t, 3, 9, &lm);
  CHECK(fabs(lm.loss - la.loss) < 1e-4 * fabs(la.loss), "1 thread: loss %.9g; 2 threads: %.9g", lm.loss, la.loss);
  // One step's gradient: the same function, summed in another order.
  Rng r1, r2;
  rng_seed(&r1, 4), rng_seed(&r2, 4);
  memcpy(m.p, a.p, a.lay.total * sizeof(float));
  ctl_train_step(&a, t->n < 100 ? t->n : 100, t->tok, t->y, &r1);
  ctl_train_step(&m, t->n < 100 ? t->n : 100, t->tok, t->y, &r2);
  double num = 0, den = 0;
  for (size_t i = 0; i < a.lay.total; i++) num += pow(a.g[i] - m.g[i], 2), den += pow(m.g[i], 2);
  CHECK(sqrt(num / den) < 1e-5, "gradients of 1 and 2 threads differ by %.3g (relative norm)", sqrt(num / den));
  ctl_destroy(&a), ctl_destroy(&b), ctl_destroy(&m);
}

static void check_learning(const Toy *t) {
  CtlConfig c = small_config(&t->sp, 2);
  Ctl ctl;
  Rng r;
  rng_seed(&r, 21);
  ctl_create(&ctl, &c, &r);
  CtlLoss first, last;
  train(&ctl, t, 1, 5, &first);
  train(&ctl, t, 200, 6, &last);
  CHECK(last.loss < 0.25 * first.loss, "loss %.5f after training, %.5f after one epoch", last.loss, first.loss);
  float *pred = xmalloc((size_t)t->n * sizeof(float));
  double *a = xmalloc((size_t)t->n * sizeof(double)), *b = xmalloc((size_t)t->n * sizeof(double));
  ctl_predict(&ctl, t->n, t->test_tok, pred);
  for (int i = 0; i < t->n; i++) a[i] = t->test_y[i], b[i] = pred[i];
  double pa = ctl_pairwise_accuracy(a, b, t->n);
  printf("toy task: loss %.5f -> %.5f, held-out pairwise accuracy %.3f\n", first.loss, last.loss, pa);
  CHECK(pa > 0.8, "held-out pairwise accuracy %.3f", pa);
  // Reconstruction (lambda 0) of the training archs.
  int *out = xmalloc((size_t)t->n * 12 * sizeof(int)), exact = 0;
  ctl_generate(&ctl, t->n, t->tok, 0.0, t->sp.allowed, out, NULL);
  for (int i = 0; i < t->n; i++) exact += !memcmp(out + i * 12, t->tok + i * 12, 12 * sizeof(int));
  printf("toy task: reconstructs %d of %d training archs\n", exact, t->n);
  CHECK(exact > 0.9 * t->n, "reconstructs only %d of %d", exact, t->n);
  // The inference step moves towards higher predictions: the archs decoded at
  // lambda 10 score higher, by the predictor and by the true objective.
  float *pin = xmalloc(100 * sizeof(float)), *pout = xmalloc(100 * sizeof(float));
  char err[200];
  ctl_generate(&ctl, 100, t->tok, 10.0, t->sp.allowed, out, pin);
  ctl_predict(&ctl, 100, out, pout);
  double min_in = 0, mout = 0, tin = 0, tout = 0;
  for (int i = 0; i < 100; i++) {
    CHECK(space_check(&t->sp, out + i * 12, err, sizeof err) == 0, "generated arch invalid: %s", err);
    min_in += pin[i], mout += pout[i], tin += t->y[i], tout += toy_target(out + i * 12);
  }
  printf("inference step: predicted %.3f -> %.3f, true %.3f -> %.3f\n", min_in / 100, mout / 100, tin / 100, tout / 100);
  CHECK(mout > min_in + 0.02 && tout > tin + 0.02, "no improvement: predicted %.3f -> %.3f, true %.3f -> %.3f",
        min_in / 100, mout / 100, tin / 100, tout / 100);
  free(pred), free(a), free(b), free(out), free(pin), free(pout);
  ctl_destroy(&ctl);
}

static void check_pairwise(void) {
  double a[3] = {1, 2, 3}, b[3] = {1, 3, 2}, c[2] = {1, 1}, d[2] = {0, 5}, e[2] = {5, 0};
  CHECK(fabs(ctl_pairwise_accuracy(a, b, 3) - 2.0 / 3) < 1e-15, "pairwise (1,2,3) vs (1,3,2)");
  CHECK(ctl_pairwise_accuracy(c, d, 2) == 0, "a tie in a needs b[i] >= b[j]");
  CHECK(ctl_pairwise_accuracy(c, e, 2) == 1, "a tie in a with b[i] >= b[j] counts");
  CHECK(ctl_pairwise_accuracy(a, a, 1) == 0, "no pairs");
}

int main(void) {
  if (!mkdtemp(tmpdir)) return perror("mkdtemp"), 1;
  check_param_count();
  check_init();
  check_save_load();
  Toy t;
  toy_data(&t, 300);
  check_determinism_and_threads(&t);
  check_learning(&t);
  check_pairwise();
  free(t.tok), free(t.test_tok), free(t.y), free(t.test_y);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  if (t_failures) fprintf(stderr, "%d checks failed\n", t_failures);
  return t_failures ? 1 : 0;
}
