// runtime/cpu_linear.c — the classifier: y = x w^T + b, and its backward.
//
// Every product is an sgemm with the activations' sample strides as leading
// dimensions, so channel-slice views need no copy. The work is split into
// blocks of LIN_BLOCK output columns (forward: classes; backward: features of
// dx, rows of dw), fixed by the shapes, so results do not depend on the
// thread count; each element's sum over the batch or the features runs inside
// one GEMM call.
#include <cblas.h>
#include <string.h>

#include "runtime/cpu_kernels.h"
#include "runtime/cpu_util.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

enum { LIN_BLOCK = 128 };

typedef struct {
  int n, d, k;
  const float *x, *dy, *w, *b;
  size_t x_ss, dy_ss;
  float *y, *dx, *dw, *db;
  size_t y_ss, dx_ss;
  int acc_y, acc_dx, acc_dw, acc_db;
  int dx_blocks;  // backward: tasks [0, dx_blocks) are dx, the rest dw
} LinCtx;

static void lin_fwd_task(void *vctx, int t, int thread) {
  (void)thread;
  const LinCtx *c = vctx;
  const int k0 = t * LIN_BLOCK, kb = cpu_min(LIN_BLOCK, c->k - k0);
  // y[:, k0:k0+kb] (+)= x (n, d) . w[k0:k0+kb]^T (d, kb)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->n, kb, c->d, 1.0f, c->x, (int)c->x_ss,
              c->w + (size_t)k0 * (size_t)c->d, c->d, c->acc_y ? 1.0f : 0.0f, c->y + k0,
              (int)c->y_ss);
  if (c->b)
    for (int i = 0; i < c->n; i++) {
      float *restrict yr = c->y + (size_t)i * c->y_ss + k0;
      for (int j = 0; j < kb; j++) yr[j] += c->b[k0 + j];
    }
}

void cpu_linear_fwd(ThreadPool *tp, int n, int d, int k, const float *x, size_t x_ss,
                    const float *w, const float *b, float *y, size_t y_ss, int accumulate) {
  if (n <= 0 || k <= 0) return;
  LinCtx c;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.d = d;
  c.k = k;
  c.x = x;
  c.x_ss = x_ss;
  c.w = w;
  c.b = b;
  c.y = y;
  c.y_ss = y_ss;
  c.acc_y = accumulate;
  tp_run(tp, (int)cpu_div_up((size_t)k, LIN_BLOCK), lin_fwd_task, &c);
}

static void lin_bwd_task(void *vctx, int t, int thread) {
  (void)thread;
  const LinCtx *c = vctx;
  if (t < c->dx_blocks) {
    // dx[:, d0:d0+db] (+)= dy (n, k) . w[:, d0:d0+db] (k, db)
    const int d0 = t * LIN_BLOCK, dbk = cpu_min(LIN_BLOCK, c->d - d0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->n, dbk, c->k, 1.0f, c->dy,
                (int)c->dy_ss, c->w + d0, c->d, c->acc_dx ? 1.0f : 0.0f, c->dx + d0, (int)c->dx_ss);
    return;
  }
  // dw[k0:k0+kb, :] (+)= dy[:, k0:k0+kb]^T (kb, n) . x (n, d); db likewise
  const int k0 = (t - c->dx_blocks) * LIN_BLOCK, kb = cpu_min(LIN_BLOCK, c->k - k0);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kb, c->d, c->n, 1.0f, c->dy + k0,
              (int)c->dy_ss, c->x, (int)c->x_ss, c->acc_dw ? 1.0f : 0.0f,
              c->dw + (size_t)k0 * (size_t)c->d, c->d);
  if (!c->db) return;
  for (int j = k0; j < k0 + kb; j++) {
    double s = 0.0;
    for (int i = 0; i < c->n; i++) s += c->dy[(size_t)i * c->dy_ss + (size_t)j];
    c->db[j] = c->acc_db ? c->db[j] + (float)s : (float)s;
  }
}

void cpu_linear_bwd(ThreadPool *tp, int n, int d, int k, const float *x, size_t x_ss,
                    const float *dy, size_t dy_ss, const float *w, float *dx, size_t dx_ss,
                    int acc_dx, float *dw, int acc_dw, float *db, int acc_db) {
  LinCtx c;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.d = d;
  c.k = k;
  c.x = x;
  c.x_ss = x_ss;
  c.dy = dy;
  c.dy_ss = dy_ss;
  c.w = w;
  c.dx = dx;
  c.dx_ss = dx_ss;
  c.acc_dx = acc_dx;
  c.dw = dw;
  c.acc_dw = acc_dw;
  c.db = db;
  c.acc_db = acc_db;
  if (n <= 0) {  // an empty batch: zero gradients (unless accumulating)
    if (!acc_dw) memset(dw, 0, sizeof(float) * (size_t)k * (size_t)d);
    if (db && !acc_db) memset(db, 0, sizeof(float) * (size_t)k);
    return;
  }
  c.dx_blocks = dx ? (int)cpu_div_up((size_t)d, LIN_BLOCK) : 0;
  tp_run(tp, c.dx_blocks + (int)cpu_div_up((size_t)k, LIN_BLOCK), lin_bwd_task, &c);
}
