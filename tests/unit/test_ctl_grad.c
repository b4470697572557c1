// tests/unit/test_ctl_grad.c — gradient checks of every part of the
// controller's backward pass, in double, against central differences: the
// LSTM (with and without an initial state, i.e. decoder and encoder), the L2
// normalisation, the attention, the output layer with log-softmax and NLL, the
// pooling + predictor (MLP, ReLU, dropout, sigmoid) as the inference step's
// gradient w.r.t. the encoder outputs O, and the whole model's loss (MSE + NLL)
// w.r.t. every parameter tensor (embeddings included), with and without
// dropout masks. The code under test is the same source the float32 controller
// runs (ctl_net.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/ctl.h"
#include "search/ctl_net.h"
#include "tests/unit/ctl_testutil.h"

static unsigned long long seed = 12345;

static double *vec(size_t n, double scale) {
  double *x = xcalloc(n, sizeof(double));
  t_fill(x, n, scale, &seed);
  return x;
}

static double dotw(const double *w, const double *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += w[i] * x[i];
  return s;
}

// ---------------------------------------------------------------- LSTM
typedef struct {
  int n, steps, h, with_state;
  double *gx, *whh, *h0, *c0, *wobj;       // inputs and objective weights
  double *gates, *cs, *tcs, *hs;           // outputs
} LstmCase;

static double lstm_obj(void *p) {
  LstmCase *k = p;
  size_t ng = (size_t)k->steps * k->n * 4 * k->h;
  memcpy(k->gates, k->gx, ng * sizeof(double));
  ctl_lstm_fwd_f64(k->n, k->steps, k->h, k->whh, k->with_state ? k->h0 : NULL, k->with_state ? k->c0 : NULL,
                   k->gates, k->cs, k->tcs, k->hs);
  return dotw(k->wobj, k->hs, (size_t)k->steps * k->n * k->h);
}

static void check_lstm(int with_state) {
  LstmCase k = {3, 4, 5, with_state, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  size_t ng = (size_t)k.steps * k.n * 4 * k.h, nh = (size_t)k.steps * k.n * k.h, s = (size_t)k.n * k.h;
  k.gx = vec(ng, 1.5), k.whh = vec(4 * k.h * k.h, 0.7), k.h0 = vec(s, 0.8), k.c0 = vec(s, 0.8);
  k.wobj = vec(nh, 1);
  k.gates = vec(ng, 0), k.cs = vec(nh, 0), k.tcs = vec(nh, 0), k.hs = vec(nh, 0);
  double *dg = vec(ng, 0), *dwhh = vec(4 * k.h * k.h, 0), *dh0 = vec(s, 0), *dc0 = vec(s, 0), *scr = vec(2 * s, 0);
  lstm_obj(&k);
  ctl_lstm_bwd_f64(k.n, k.steps, k.h, k.whh, with_state ? k.h0 : NULL, with_state ? k.c0 : NULL, k.gates, k.cs,
                   k.tcs, k.hs, k.wobj, dg, dwhh, with_state ? dh0 : NULL, with_state ? dc0 : NULL, scr);
  t_gradcheck(with_state ? "lstm(h0,c0) d input gates" : "lstm(0) d input gates", k.gx, dg, ng, lstm_obj, &k);
  t_gradcheck(with_state ? "lstm(h0,c0) d W_hh" : "lstm(0) d W_hh", k.whh, dwhh, 4 * k.h * k.h, lstm_obj, &k);
  if (with_state) {
    t_gradcheck("lstm d h0", k.h0, dh0, s, lstm_obj, &k);
    t_gradcheck("lstm d c0", k.c0, dc0, s, lstm_obj, &k);
  }
  double *bufs[] = {k.gx, k.whh, k.h0, k.c0, k.wobj, k.gates, k.cs, k.tcs, k.hs, dg, dwhh, dh0, dc0, scr};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

// ---------------------------------------------------------------- L2 normalisation
typedef struct {
  int rows, dim;
  double *x, *y, *norms, *wobj;
} NormCase;

static double norm_obj(void *p) {
  NormCase *k = p;
  ctl_l2norm_fwd_f64(k->rows, k->dim, k->x, k->y, k->norms);
  return dotw(k->wobj, k->y, (size_t)k->rows * k->dim);
}

static void check_norm(void) {
  NormCase k = {4, 6, vec(24, 2), vec(24, 0), vec(4, 0), vec(24, 1)};
  double *dx = vec(24, 0);
  norm_obj(&k);
  for (int r = 0; r < k.rows; r++) {  // unit length after normalisation
    double s = 0;
    for (int j = 0; j < k.dim; j++) s += k.y[r * k.dim + j] * k.y[r * k.dim + j];
    CHECK(fabs(s - 1) < 1e-12, "normalised row %d has squared length %.17g", r, s);
  }
  ctl_l2norm_bwd_f64(k.rows, k.dim, k.y, k.norms, k.wobj, dx);
  t_gradcheck("l2 normalisation", k.x, dx, 24, norm_obj, &k);
  // Below F.normalize's eps the divisor is the constant 1e-12: dx = dy / eps.
  double tiny[3] = {1e-14, -2e-14, 0}, ty[3], tn[1], dy[3] = {1, 2, 3}, tdx[3];
  ctl_l2norm_fwd_f64(1, 3, tiny, ty, tn);
  CHECK(fabs(ty[0] - 1e-2) < 1e-15 && fabs(ty[1] + 2e-2) < 1e-15, "tiny row: y = x / 1e-12, got %g %g", ty[0], ty[1]);
  ctl_l2norm_bwd_f64(1, 3, ty, tn, dy, tdx);
  CHECK(fabs(tdx[2] - 3e12) < 1, "tiny row: dx = dy / 1e-12, got %g", tdx[2]);
  free(k.x), free(k.y), free(k.norms), free(k.wobj), free(dx);
}

// ---------------------------------------------------------------- attention
typedef struct {
  int n, D, T, H;
  double *hs, *O, *w_in, *w_out, *K, *alpha, *ctx, *ht, *wobj;
} AttnCase;

static double attn_obj(void *p) {
  AttnCase *k = p;
  ctl_attn_keys_f64(k->n, k->T, k->H, k->O, k->w_in, k->K);
  ctl_attn_fwd_f64(k->n, k->D, k->T, k->H, k->hs, k->O, k->K, k->w_out, k->alpha, k->ctx, k->ht);
  return dotw(k->wobj, k->ht, (size_t)k->D * k->n * k->H);
}

static void check_attention(void) {
  AttnCase k = {2, 5, 4, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // n, D, T (<= D), H
  size_t dh = (size_t)k.D * k.n * k.H, th = (size_t)k.T * k.n * k.H, hh = (size_t)k.H * k.H;
  k.hs = vec(dh, 1), k.O = vec(th, 1), k.w_in = vec(hh, 1), k.w_out = vec(2 * hh, 0.6);
  k.K = vec(th, 0), k.alpha = vec((size_t)k.D * k.n * k.T, 0), k.ctx = vec(dh, 0), k.ht = vec(dh, 0);
  k.wobj = vec(dh, 1);
  double *g_ht = vec(dh, 0), *g_ctx = vec(dh, 0), *g_alpha = vec((size_t)k.D * k.n * k.T, 0);
  double *dw_in = vec(hh, 0), *dw_out = vec(2 * hh, 0), *g_O = vec(th, 0), *g_hs = vec(dh, 0);
  attn_obj(&k);
  for (int r = 0; r < k.D * k.n; r++) {  // attention weights are a distribution
    double s = 0;
    for (int j = 0; j < k.T; j++) s += k.alpha[r * k.T + j];
    CHECK(fabs(s - 1) < 1e-12, "attention row %d sums to %.17g", r, s);
  }
  memcpy(g_ht, k.wobj, dh * sizeof(double));
  ctl_attn_bwd_f64(k.n, k.D, k.T, k.H, k.hs, k.O, k.K, k.w_in, k.w_out, k.alpha, k.ctx, k.ht, g_ht, g_ctx,
                   g_alpha, dw_in, dw_out, g_O, g_hs);
  t_gradcheck("attention d decoder h", k.hs, g_hs, dh, attn_obj, &k);
  t_gradcheck("attention d encoder O", k.O, g_O, th, attn_obj, &k);
  t_gradcheck("attention d W_in", k.w_in, dw_in, hh, attn_obj, &k);
  t_gradcheck("attention d W_out", k.w_out, dw_out, 2 * hh, attn_obj, &k);
  double *bufs[] = {k.hs, k.O, k.w_in, k.w_out, k.K, k.alpha, k.ctx, k.ht, k.wobj, g_ht, g_ctx, g_alpha,
                    dw_in, dw_out, g_O, g_hs};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

// ---------------------------------------------------------------- output + NLL
typedef struct {
  int rows, H, V;
  double *x, *w, *b, *logp;
  int *tgt;
} OutCase;

static double out_obj(void *p) {
  OutCase *k = p;
  ctl_out_fwd_f64(k->rows, k->H, k->V, k->x, k->w, k->b, k->logp);
  return ctl_nll_f64(k->rows, k->V, k->logp, k->tgt, 0.37);
}

static void check_output(void) {
  int tgt[6] = {0, 3, 6, 2, 2, 5};
  OutCase k = {6, 5, 7, vec(30, 1), vec(35, 1), vec(7, 1), vec(42, 0), tgt};
  double *gl = vec(42, 0), *gx = vec(30, 0), *dw = vec(35, 0), *db = vec(7, 0);
  out_obj(&k);
  for (int r = 0; r < 6; r++) {
    double s = 0;
    for (int v = 0; v < 7; v++) s += exp(k.logp[r * 7 + v]);
    CHECK(fabs(s - 1) < 1e-12, "log-softmax row %d: probabilities sum to %.17g", r, s);
  }
  ctl_out_bwd_f64(k.rows, k.H, k.V, k.x, k.w, k.logp, k.tgt, 0.37, gl, gx, dw, db);
  t_gradcheck("output+log-softmax+NLL d x", k.x, gx, 30, out_obj, &k);
  t_gradcheck("output+log-softmax+NLL d W", k.w, dw, 35, out_obj, &k);
  t_gradcheck("output+log-softmax+NLL d b", k.b, db, 7, out_obj, &k);
  free(k.x), free(k.w), free(k.b), free(k.logp), free(gl), free(gx), free(dw), free(db);
}

// ---------------------------------------------------------------- whole model
typedef struct {
  CtlConfig cfg;
  CtlLayout lay;
  CtlWork_f64 w;
  int n;
  double *p, *g, *targets, *masks;
  int *tokens;
  int use_masks;
} ModelCase;

static double model_loss(void *ctx) {
  ModelCase *k = ctx;
  ctl_forward_f64(&k->cfg, &k->lay, k->p, &k->w, k->n, k->tokens, k->use_masks ? k->masks : NULL, 1);
  return ctl_loss_f64(&k->cfg, &k->w, k->tokens, k->targets).loss;
}

static double model_sum_pred_of_O(void *ctx) {  // sum_n yhat_n as a function of O
  ModelCase *k = ctx;
  ctl_head_fwd_f64(&k->cfg, &k->lay, k->p, &k->w, NULL);
  double s = 0;
  for (int i = 0; i < k->n; i++) s += k->w.yhat[i];
  return s;
}

static void model_setup(ModelCase *k, int mlp_layers) {
  memset(k, 0, sizeof *k);
  ctl_config_default(&k->cfg, 7, 8);  // 7 tokens, 8 per sequence
  k->cfg.enc_len = 4, k->cfg.emb = 3, k->cfg.hidden = 6;
  k->cfg.mlp_layers = mlp_layers, k->cfg.mlp_hidden = 5, k->cfg.mlp_dropout = 0.25;
  char err[200];
  CHECK(ctl_config_check(&k->cfg, err, sizeof err) == 0, "config: %s", err);
  ctl_layout_build(&k->lay, &k->cfg);
  k->n = 3;
  ctl_work_init_f64(&k->w, &k->cfg, k->n);
  k->p = vec(k->lay.total, 0.6), k->g = vec(k->lay.total, 0);
  k->targets = vec(k->n, 0);
  for (int i = 0; i < k->n; i++) k->targets[i] = 0.5 + 0.5 * t_uniform(&seed);
  size_t nm = (size_t)(mlp_layers ? mlp_layers : 1) * k->n * k->cfg.mlp_hidden;
  k->masks = vec(nm, 0);
  for (size_t i = 0; i < nm; i++) k->masks[i] = t_uniform(&seed) < -0.5 ? 0 : 1 / 0.75;
  k->tokens = xcalloc((size_t)k->n * 8, sizeof(int));
  for (int i = 0; i < k->n * 8; i++) k->tokens[i] = (int)((t_uniform(&seed) + 1) * 3.5) % 7;
}

static void model_free(ModelCase *k) {
  ctl_work_free_f64(&k->w);
  free(k->p), free(k->g), free(k->targets), free(k->masks), free(k->tokens);
}

static void check_model(int mlp_layers, int use_masks) {
  ModelCase k;
  model_setup(&k, mlp_layers);
  k.use_masks = use_masks;
  model_loss(&k);
  CtlLoss l = ctl_loss_f64(&k.cfg, &k.w, k.tokens, k.targets);
  CHECK(fabs(l.loss - (0.8 * l.mse + 0.2 * l.nll)) < 1e-12, "loss %.17g != 0.8 mse + 0.2 nll", l.loss);
  ctl_backward_f64(&k.cfg, &k.lay, k.p, &k.w, k.tokens, k.targets, k.g);
  for (int i = 0; i < k.lay.n; i++) {
    const CtlParam *t = &k.lay.p[i];
    char what[128];
    snprintf(what, sizeof what, "%s%s", t->name, use_masks ? " (dropout)" : "");
    size_t count = (size_t)t->rows * (t->cols ? t->cols : 1);
    t_gradcheck(what, k.p + t->off, k.g + t->off, count, model_loss, &k);
  }
  model_free(&k);
}

// The inference step's gradient: d(sum yhat)/dO through pooling, the
// normalisation of e, the MLP and the sigmoid.
static void check_grad_O(void) {
  ModelCase k;
  model_setup(&k, 3);
  ctl_forward_f64(&k.cfg, &k.lay, k.p, &k.w, k.n, k.tokens, NULL, 0);
  ctl_grad_O_f64(&k.cfg, &k.lay, k.p, &k.w);
  size_t count = (size_t)k.cfg.enc_len * k.n * k.cfg.hidden;
  double *g = vec(count, 0);
  memcpy(g, k.w.g_O, count * sizeof(double));
  t_gradcheck("inference d sum(pred) / d O", k.w.O, g, count, model_sum_pred_of_O, &k);
  free(g);
  model_free(&k);
}

int main(void) {
  check_lstm(0);
  check_lstm(1);
  check_norm();
  check_attention();
  check_output();
  check_grad_O();
  check_model(3, 0);
  check_model(3, 1);
  check_model(0, 0);  // predictor without hidden layers: regressor on e
  if (t_failures) fprintf(stderr, "%d checks failed\n", t_failures);
  return t_failures ? 1 : 0;
}
