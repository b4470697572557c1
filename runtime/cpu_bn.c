// runtime/cpu_bn.c — batch normalisation, forward and backward, training and
// evaluation.
//
// One task per channel: it reads the channel's n planes of hw floats (a few
// hundred KiB at most for NAO's shapes, so the passes after the first hit the
// cache), computes the statistics, then writes its output planes. Each plane's
// sum is taken in float (eight lanes, cpu_sum8) and the planes are summed in
// double; the variance is two-pass (mean first), so it is accurate even when
// the mean is large. Nothing is shared between tasks, so results do not depend
// on the thread count.
#include <math.h>
#include <string.h>

#include "runtime/cpu_kernels.h"
#include "runtime/cpu_util.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

typedef struct {
  const CpuBnShape *s;
  const float *x;
  size_t x_ss;
  const float *dy;
  size_t dy_ss;
  const float *gamma, *beta;
  const float *mean, *invstd;  // backward (train): saved statistics
  const float *run_mean, *run_var;
  float *y;  // forward output or dx
  size_t y_ss;
  int acc_dx;
  float *mean_out, *invstd_out;
  float *run_mean_upd, *run_var_upd;
  float *dgamma, *dbeta;
  int acc_param;
} BnCtx;

// y = ((x - m) - m_lo) * scale + shift over one channel of every sample; m + m_lo
// is the mean to more than float precision (x - m is exact for x near m).
static void bn_apply(const BnCtx *c, int ch, float m, float m_lo, float scale, float shift) {
  const CpuBnShape *s = c->s;
  const size_t hw = (size_t)s->hw, off = (size_t)ch * hw;
  for (int n = 0; n < s->n; n++) {
    const float *restrict x = c->x + (size_t)n * c->x_ss + off;
    float *restrict y = c->y + (size_t)n * c->y_ss + off;
    for (size_t i = 0; i < hw; i++) y[i] = ((x[i] - m) - m_lo) * scale + shift;
  }
}

static void bn_fwd_train_task(void *vctx, int ch, int thread) {
  (void)thread;
  const BnCtx *c = vctx;
  const CpuBnShape *s = c->s;
  const size_t hw = (size_t)s->hw, off = (size_t)ch * hw;
  const double count = (double)s->n * (double)hw;
  double sum = 0.0;
  for (int n = 0; n < s->n; n++) sum += cpu_sum8(c->x + (size_t)n * c->x_ss + off, hw);
  const double mean = sum / count;
  const float meanf = (float)mean;
  double sq = 0.0;
  for (int n = 0; n < s->n; n++) sq += cpu_sqdev8(c->x + (size_t)n * c->x_ss + off, meanf, hw);
  // The float mean differs from the exact one by d: correct sum (x - m)^2 for it.
  const double d = mean - (double)meanf;
  const double var = sq / count - d * d;
  const double invstd = 1.0 / sqrt((var > 0 ? var : 0) + (double)s->eps);
  const float scale = (float)((double)c->gamma[ch] * invstd);
  bn_apply(c, ch, meanf, (float)d, scale, c->beta[ch]);
  if (c->mean_out) c->mean_out[ch] = meanf;
  if (c->invstd_out) c->invstd_out[ch] = (float)invstd;
  if (c->run_mean_upd) {
    const double m = (double)s->momentum;
    const double unbiased = count > 1 ? var * count / (count - 1) : var;
    c->run_mean_upd[ch] = (float)((1 - m) * c->run_mean_upd[ch] + m * mean);
    c->run_var_upd[ch] = (float)((1 - m) * c->run_var_upd[ch] + m * unbiased);
  }
}

void cpu_bn_fwd_train(ThreadPool *tp, const CpuBnShape *s, const float *x, size_t x_ss,
                      const float *gamma, const float *beta, float *y, size_t y_ss,
                      float *mean_out, float *invstd_out, float *run_mean, float *run_var) {
  BnCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.x = x;
  c.x_ss = x_ss;
  c.gamma = gamma;
  c.beta = beta;
  c.y = y;
  c.y_ss = y_ss;
  c.mean_out = mean_out;
  c.invstd_out = invstd_out;
  c.run_mean_upd = run_mean && run_var ? run_mean : NULL;
  c.run_var_upd = run_mean && run_var ? run_var : NULL;
  tp_run(tp, s->c, bn_fwd_train_task, &c);
}

static void bn_fwd_eval_task(void *vctx, int ch, int thread) {
  (void)thread;
  const BnCtx *c = vctx;
  const double invstd = 1.0 / sqrt((double)c->run_var[ch] + (double)c->s->eps);
  const float scale = (float)((double)c->gamma[ch] * invstd);
  bn_apply(c, ch, c->run_mean[ch], 0.0f, scale, c->beta[ch]);
}

void cpu_bn_fwd_eval(ThreadPool *tp, const CpuBnShape *s, const float *x, size_t x_ss,
                     const float *gamma, const float *beta, const float *run_mean,
                     const float *run_var, float *y, size_t y_ss) {
  BnCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.x = x;
  c.x_ss = x_ss;
  c.gamma = gamma;
  c.beta = beta;
  c.run_mean = run_mean;
  c.run_var = run_var;
  c.y = y;
  c.y_ss = y_ss;
  tp_run(tp, s->c, bn_fwd_eval_task, &c);
}

// ---------------------------------------------------------------- backward
// sum dy and sum dy * (x - mean) over one channel of every sample.
static void bn_bwd_sums(const BnCtx *c, int ch, float mean, double *sdy, double *sdyx) {
  const CpuBnShape *s = c->s;
  const size_t hw = (size_t)s->hw, off = (size_t)ch * hw;
  double a = 0.0, b = 0.0;
  for (int n = 0; n < s->n; n++) {
    const float *restrict x = c->x + (size_t)n * c->x_ss + off;
    const float *restrict dy = c->dy + (size_t)n * c->dy_ss + off;
    float accd[8] = {0, 0, 0, 0, 0, 0, 0, 0}, accx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= hw; i += 8)
      for (int j = 0; j < 8; j++) {
        accd[j] += dy[i + j];
        accx[j] += dy[i + j] * (x[i + j] - mean);
      }
    float pd = ((accd[0] + accd[1]) + (accd[2] + accd[3])) + ((accd[4] + accd[5]) + (accd[6] + accd[7]));
    float px = ((accx[0] + accx[1]) + (accx[2] + accx[3])) + ((accx[4] + accx[5]) + (accx[6] + accx[7]));
    for (; i < hw; i++) {
      pd += dy[i];
      px += dy[i] * (x[i] - mean);
    }
    a += pd;
    b += px;
  }
  *sdy = a;
  *sdyx = b;
}

static void bn_write_param_grads(const BnCtx *c, int ch, double dgamma, double dbeta) {
  if (c->dgamma) c->dgamma[ch] = c->acc_param ? c->dgamma[ch] + (float)dgamma : (float)dgamma;
  if (c->dbeta) c->dbeta[ch] = c->acc_param ? c->dbeta[ch] + (float)dbeta : (float)dbeta;
}

// dx (+)= a*dy + b*(x - m) + k over one channel of every sample.
static void bn_bwd_apply(const BnCtx *c, int ch, float m, float a, float b, float k) {
  const CpuBnShape *s = c->s;
  const size_t hw = (size_t)s->hw, off = (size_t)ch * hw;
  for (int n = 0; n < s->n; n++) {
    const float *restrict x = c->x + (size_t)n * c->x_ss + off;
    const float *restrict dy = c->dy + (size_t)n * c->dy_ss + off;
    float *restrict dx = c->y + (size_t)n * c->y_ss + off;
    if (c->acc_dx) {
      for (size_t i = 0; i < hw; i++) dx[i] += a * dy[i] + b * (x[i] - m) + k;
    } else {
      for (size_t i = 0; i < hw; i++) dx[i] = a * dy[i] + b * (x[i] - m) + k;
    }
  }
}

// With xhat = (x - mean) * invstd, M = n*hw:
//   dbeta = sum dy, dgamma = sum dy * xhat,
//   dx = gamma * invstd * (dy - dbeta/M - xhat * dgamma/M)
//      = A*dy + B*(x - mean) + K with A = gamma*invstd, B = -A*invstd*dgamma/M,
//        K = -A*dbeta/M.
static void bn_bwd_train_task(void *vctx, int ch, int thread) {
  (void)thread;
  const BnCtx *c = vctx;
  const double M = (double)c->s->n * (double)c->s->hw;
  const double mean = c->mean[ch], invstd = c->invstd[ch];
  double sdy, sdyx;
  bn_bwd_sums(c, ch, (float)mean, &sdy, &sdyx);
  const double dgamma = sdyx * invstd, dbeta = sdy;
  bn_write_param_grads(c, ch, dgamma, dbeta);
  if (!c->y) return;
  const double A = (double)c->gamma[ch] * invstd;
  const double B = -A * invstd * dgamma / M;
  const double K = -A * dbeta / M;
  bn_bwd_apply(c, ch, (float)mean, (float)A, (float)B, (float)K);
}

void cpu_bn_bwd_train(ThreadPool *tp, const CpuBnShape *s, const float *x, size_t x_ss,
                      const float *dy, size_t dy_ss, const float *gamma, const float *mean,
                      const float *invstd, float *dx, size_t dx_ss, int acc_dx, float *dgamma,
                      float *dbeta, int acc_param) {
  BnCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.x = x;
  c.x_ss = x_ss;
  c.dy = dy;
  c.dy_ss = dy_ss;
  c.gamma = gamma;
  c.mean = mean;
  c.invstd = invstd;
  c.y = dx;
  c.y_ss = dx_ss;
  c.acc_dx = acc_dx;
  c.dgamma = dgamma;
  c.dbeta = dbeta;
  c.acc_param = acc_param;
  tp_run(tp, s->c, bn_bwd_train_task, &c);
}

static void bn_bwd_eval_task(void *vctx, int ch, int thread) {
  (void)thread;
  const BnCtx *c = vctx;
  const double mean = c->run_mean[ch];
  const double invstd = 1.0 / sqrt((double)c->run_var[ch] + (double)c->s->eps);
  double sdy, sdyx;
  bn_bwd_sums(c, ch, (float)mean, &sdy, &sdyx);
  bn_write_param_grads(c, ch, sdyx * invstd, sdy);
  if (!c->y) return;
  bn_bwd_apply(c, ch, 0.0f, (float)((double)c->gamma[ch] * invstd), 0.0f, 0.0f);
}

void cpu_bn_bwd_eval(ThreadPool *tp, const CpuBnShape *s, const float *x, size_t x_ss,
                     const float *dy, size_t dy_ss, const float *gamma, const float *run_mean,
                     const float *run_var, float *dx, size_t dx_ss, int acc_dx, float *dgamma,
                     float *dbeta, int acc_param) {
  BnCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.x = x;
  c.x_ss = x_ss;
  c.dy = dy;
  c.dy_ss = dy_ss;
  c.gamma = gamma;
  c.run_mean = run_mean;
  c.run_var = run_var;
  c.y = dx;
  c.y_ss = dx_ss;
  c.acc_dx = acc_dx;
  c.dgamma = dgamma;
  c.dbeta = dbeta;
  c.acc_param = acc_param;
  tp_run(tp, s->c, bn_bwd_eval_task, &c);
}
