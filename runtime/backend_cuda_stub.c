// runtime/backend_cuda_stub.c — the cuda backend's creator until the CUDA
// backend exists: it says so. The CUDA backend replaces this file with
// runtime/backend_cuda.c defining backend_cuda_create (backend.h).
#include <stdio.h>

#include "runtime/backend.h"

Backend *backend_cuda_create(const NetBuild *nb, ModelState *host, const BackendOptions *opt,
                             char *err, size_t errlen) {
  (void)nb, (void)host, (void)opt;
  snprintf(err, errlen,
           "the cuda backend is not built yet: this build runs --backend cpu only");
  return NULL;
}
