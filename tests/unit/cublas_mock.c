// tests/unit/cublas_mock.c — cuBLAS's strided-batched SGEMM on the CPU
// (cuda_mock.h): operands checked against device memory, a workspace
// required (set explicitly, as graph capture needs), the product run on the
// handle's stream with OpenBLAS, column-major as cuBLAS defines it. GEMMs are
// counted by math mode so tests can check the TF32 policy.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "tests/unit/cuda_mock.h"

struct BlasContextSt {
  CuStream stream;
  int math, ptr_mode;
  void *ws;
  size_t ws_bytes;
};

typedef struct {
  int ta, tb, m, n, k, lda, ldb, ldc, batch;
  long long sa, sb, sc;
  float alpha, beta;
  const float *a, *b;
  float *c;
} GemmJob;

static BlasStatus create(BlasHandle *h) {
  *h = xcalloc(1, sizeof **h);
  return 0;
}
static BlasStatus destroy(BlasHandle h) {
  free(h);
  return 0;
}
static BlasStatus version(BlasHandle h, int *v) {
  (void)h;
  *v = 130100;
  return 0;
}
static const char *status_string(BlasStatus s) {
  return s == 0 ? "CUBLAS_STATUS_SUCCESS" : s == BLASAPI_STATUS_INVALID_VALUE ? "CUBLAS_STATUS_INVALID_VALUE"
                                                                               : "CUBLAS_STATUS_(mock)";
}
static BlasStatus set_stream(BlasHandle h, CuStream s) {
  h->stream = s;
  return 0;
}
static BlasStatus set_ws(BlasHandle h, void *ws, size_t n) {
  if (n && !cuda_mock_in_memory(ws, n, "cublasSetWorkspace")) return BLASAPI_STATUS_INVALID_VALUE;
  h->ws = ws;
  h->ws_bytes = n;
  return 0;
}
static BlasStatus set_math(BlasHandle h, int m) {
  if (m != BLASAPI_DEFAULT_MATH && m != BLASAPI_TF32_TENSOR_OP_MATH && m != BLASAPI_PEDANTIC_MATH)
    return BLASAPI_STATUS_INVALID_VALUE;
  h->math = m;
  return 0;
}
static BlasStatus set_ptr(BlasHandle h, int m) {
  h->ptr_mode = m;
  return m == BLASAPI_POINTER_MODE_HOST ? 0 : BLASAPI_STATUS_NOT_SUPPORTED;
}

static void run_gemm(const void *payload) {
  const GemmJob *j = payload;
  for (int i = 0; i < j->batch; i++)
    cblas_sgemm(CblasColMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                j->m, j->n, j->k, j->alpha, j->a + (size_t)i * (size_t)j->sa, j->lda,
                j->b + (size_t)i * (size_t)j->sb, j->ldb, j->beta, j->c + (size_t)i * (size_t)j->sc,
                j->ldc);
}

// Bytes spanned by a column-major rows x cols operand with leading dimension
// ld, over `batch` entries `stride` floats apart.
static size_t span(int rows, int cols, int ld, int batch, long long stride) {
  return 4 * ((size_t)(cols - 1) * (size_t)ld + (size_t)rows + (size_t)(batch - 1) * (size_t)stride);
}

static BlasStatus sgemm(BlasHandle h, int ta, int tb, int m, int n, int k, const float *alpha,
                        const float *a, int lda, long long sa, const float *b, int ldb, long long sb,
                        const float *beta, float *c, int ldc, long long sc, int batch) {
  int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  if (m < 1 || n < 1 || k < 1 || batch < 1 || lda < ar || ldb < br || ldc < m || sa < 0 || sb < 0 ||
      sc < 0) {
    cuda_mock_violate("cublasSgemmStridedBatched: m %d n %d k %d lda %d ldb %d ldc %d batch %d", m, n,
                      k, lda, ldb, ldc, batch);
    return BLASAPI_STATUS_INVALID_VALUE;
  }
  if (!h->ws) {
    cuda_mock_violate("cublasSgemmStridedBatched before cublasSetWorkspace");
    return BLASAPI_STATUS_NOT_INITIALIZED;
  }
  if (!cuda_mock_in_memory(a, span(ar, ac, lda, batch, sa), "cublasSgemmStridedBatched A") ||
      !cuda_mock_in_memory(b, span(br, bc, ldb, batch, sb), "cublasSgemmStridedBatched B") ||
      !cuda_mock_in_memory(c, span(m, n, ldc, batch, sc), "cublasSgemmStridedBatched C"))
    return BLASAPI_STATUS_INVALID_VALUE;
  if (h->math == BLASAPI_TF32_TENSOR_OP_MATH) cuda_mock_stats_rw()->gemm_tf32++;
  else cuda_mock_stats_rw()->gemm_plain++;
  GemmJob j = {ta, tb, m, n, k, lda, ldb, ldc, batch, sa, sb, sc, *alpha, *beta, a, b, c};
  return cuda_mock_enqueue(h->stream, run_gemm, &j, sizeof j) ? BLASAPI_STATUS_EXECUTION_FAILED : 0;
}

static const CublasApi mock_blas = {
    .name = "mock cuBLAS",
    .create = create,
    .destroy = destroy,
    .get_version = version,
    .get_status_string = status_string,
    .set_stream = set_stream,
    .set_workspace = set_ws,
    .set_math_mode = set_math,
    .set_pointer_mode = set_ptr,
    .sgemm_strided_batched = sgemm,
};

const CublasApi *cublas_mock_api(void) { return &mock_blas; }
