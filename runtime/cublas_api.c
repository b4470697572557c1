// runtime/cublas_api.c — the cuBLAS table filled from libcublas (cublas_api.h).
//
// cublas_v2.h maps cublasCreate and friends to their _v2 symbols; those are
// the ones looked up. cuBLASLt, which cuBLAS needs, is loaded first from the
// same folder when cuBLAS is found outside the loader's path.
#include "runtime/cublas_api.h"

#include <stdio.h>
#include <string.h>

static const char *status_name(BlasStatus s) {
  switch (s) {
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS";
  }
}

int cublas_api_fail(const CublasApi *api, BlasStatus s, const char *call, const char *what,
                    char *err, size_t errlen) {
  if (s == BLASAPI_STATUS_SUCCESS) return 0;
  const char *str = api && api->get_status_string ? api->get_status_string(s) : NULL;
  snprintf(err, errlen, "%s failed while %s: %s (%d)%s%s", call, what, status_name(s), s,
           str ? ": " : "", str ? str : "");
  return -1;
}

#define LOAD(field, name)                                                                    \
  do {                                                                                       \
    *(void **)&api->field = cuda_lib_sym(lib, name);                                         \
    if (!api->field) {                                                                       \
      snprintf(err, errlen, "cuBLAS %s has no %s: cuBLAS 12 or newer is needed", lib->path,  \
               name);                                                                        \
      cuda_lib_close(lib);                                                                   \
      return -1;                                                                             \
    }                                                                                        \
  } while (0)

int cublas_api_load(CublasApi *api, CudaLib *lib, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  if (cuda_lib_open(&cuda_spec_cublas, lib, err, errlen)) return -1;
  api->name = lib->path;
  LOAD(create, "cublasCreate_v2");
  LOAD(destroy, "cublasDestroy_v2");
  LOAD(get_version, "cublasGetVersion_v2");
  LOAD(get_status_string, "cublasGetStatusString");
  LOAD(set_stream, "cublasSetStream_v2");
  LOAD(set_workspace, "cublasSetWorkspace_v2");
  LOAD(set_math_mode, "cublasSetMathMode");
  LOAD(set_pointer_mode, "cublasSetPointerMode_v2");
  LOAD(sgemm_strided_batched, "cublasSgemmStridedBatched");
  return 0;
}
