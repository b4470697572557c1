// runtime/cublas_api.h — the part of cuBLAS the cuda backend uses (a handle on
// a stream with its own workspace, the math mode, strided-batched SGEMM),
// declared here and reached through a table filled from libcublas.so.13 or
// .12 (cublas_api_load) or by a test's mock (tests/unit/cublas_mock.c).
//
// Types and constants mirror cublas_api.h: tests/unit/test_cuda_decls.c checks
// them against the installed headers. Names: Blas* types, BLASAPI_ constants.
#ifndef NAO_CUBLAS_API_H
#define NAO_CUBLAS_API_H

#include <stddef.h>

#include "runtime/cuda_api.h"
#include "runtime/cuda_find.h"

typedef int BlasStatus;                      // cublasStatus_t
typedef struct BlasContextSt *BlasHandle;    // cublasHandle_t

enum {
  BLASAPI_STATUS_SUCCESS = 0,
  BLASAPI_STATUS_NOT_INITIALIZED = 1,
  BLASAPI_STATUS_INVALID_VALUE = 7,
  BLASAPI_STATUS_EXECUTION_FAILED = 13,
  BLASAPI_STATUS_NOT_SUPPORTED = 15,
  BLASAPI_OP_N = 0,
  BLASAPI_OP_T = 1,
  BLASAPI_DEFAULT_MATH = 0,          // float32 GEMMs in float32 (no TF32)
  BLASAPI_PEDANTIC_MATH = 2,
  BLASAPI_TF32_TENSOR_OP_MATH = 3,   // TF32 tensor cores allowed
  BLASAPI_POINTER_MODE_HOST = 0,
};

typedef struct CublasApi {
  const char *name;   // library path, or "mock"
  BlasStatus (*create)(BlasHandle *h);
  BlasStatus (*destroy)(BlasHandle h);
  BlasStatus (*get_version)(BlasHandle h, int *version);
  const char *(*get_status_string)(BlasStatus s);
  BlasStatus (*set_stream)(BlasHandle h, CuStream s);
  BlasStatus (*set_workspace)(BlasHandle h, void *ws, size_t bytes);
  BlasStatus (*set_math_mode)(BlasHandle h, int mode);
  BlasStatus (*set_pointer_mode)(BlasHandle h, int mode);
  BlasStatus (*sgemm_strided_batched)(BlasHandle h, int transa, int transb, int m, int n, int k,
                                      const float *alpha, const float *a, int lda,
                                      long long stride_a, const float *b, int ldb,
                                      long long stride_b, const float *beta, float *c, int ldc,
                                      long long stride_c, int batch);
} CublasApi;

// Opens cuBLAS (cuda_find.h: NAOC_CUBLAS_LIB, the loader's path, the toolkit,
// the nvidia-cublas wheel) and fills api. Returns 0, or -1 with a message.
int cublas_api_load(CublasApi *api, CudaLib *lib, char *err, size_t errlen);

// 0 when s is success; else "CALL failed while WHAT: NAME (s): cuBLAS's description" and -1.
int cublas_api_fail(const CublasApi *api, BlasStatus s, const char *call, const char *what,
                    char *err, size_t errlen);

#endif
