// tests/unit/test_cuda_api.c — the CUDA libraries opened at run time, and
// what a machine without a GPU says (runtime/cuda_find.c, cuda_api.c,
// cudnn_api.c, cublas_api.c, backend_cuda_rt.c's driver start):
//  - a library named by its variable that does not exist: the message names
//    the library and the variable;
//  - the toolkit's stub libcuda (when installed): every symbol resolves, cuInit
//    fails with CUDA_ERROR_STUB_LIBRARY, and --backend cuda says there is no
//    driver, through backend_create;
//  - cuDNN and cuBLAS (when installed): loaded with every symbol; creating a
//    handle without a GPU fails with a message naming the call and the
//    library's own error string;
//  - the search: Python wheel folders under VIRTUAL_ENV and PYTHONPATH are
//    searched, a library found there is opened by full path with its siblings
//    loaded first.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/frontend.h"
#include "compiler/util.h"
#include "runtime/backend.h"
#include "runtime/backend_cuda.h"
#include "runtime/cublas_api.h"
#include "runtime/cuda_api.h"
#include "runtime/cudnn_api.h"

static int failures;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      failures++;                                          \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
    }                                                      \
  } while (0)

static const char *stub = "/usr/local/cuda/lib64/stubs/libcuda.so";

static void test_missing(void) {
  CudaApi api;
  CudaLib lib;
  char err[4096];
  setenv("NAOC_CUDA_LIB", "/nonexistent/libcuda.so.1", 1);
  CHECK(cuda_api_load(&api, &lib, err, sizeof err) == -1, "a missing libcuda loaded");
  CHECK(strstr(err, "the CUDA driver (libcuda)") && strstr(err, "NAOC_CUDA_LIB=/nonexistent/libcuda.so.1"),
        "message: %s", err);
  unsetenv("NAOC_CUDA_LIB");
  // without the variable: either this machine has a driver, or the message
  // says what to do
  if (cuda_api_load(&api, &lib, err, sizeof err) == 0) {
    printf("note: this machine has a CUDA driver (%s)\n", lib.path);
    cuda_lib_close(&lib);
  } else {
    CHECK(strstr(err, "libcuda") && strstr(err, "not found") && strstr(err, "NAOC_CUDA_LIB"),
          "message: %s", err);
  }
  CudnnApi dnn;
  setenv("NAOC_CUDNN_LIB", "/nonexistent", 1);
  CHECK(cudnn_api_load(&dnn, &lib, err, sizeof err) == -1 && strstr(err, "cuDNN") &&
            strstr(err, "NAOC_CUDNN_LIB"),
        "cuDNN message: %s", err);
  unsetenv("NAOC_CUDNN_LIB");
  CublasApi blas;
  setenv("NAOC_CUBLAS_LIB", "/nonexistent/libcublas.so.13", 1);
  CHECK(cublas_api_load(&blas, &lib, err, sizeof err) == -1 && strstr(err, "cuBLAS") &&
            strstr(err, "NAOC_CUBLAS_LIB"),
        "cuBLAS message: %s", err);
  unsetenv("NAOC_CUBLAS_LIB");
}

static void test_stub(void) {
  if (access(stub, R_OK) != 0) {
    printf("note: no CUDA toolkit stub at %s: stub checks skipped\n", stub);
    return;
  }
  setenv("NAOC_CUDA_LIB", stub, 1);
  CudaApi api;
  CudaLib lib;
  char err[4096];
  CHECK(cuda_api_load(&api, &lib, err, sizeof err) == 0, "the stub does not load: %s", err);
  if (lib.handle) {
    CuResult r = api.init(0);
    CHECK(r == CUAPI_ERROR_STUB_LIBRARY, "cuInit on the stub: %d", r);
    CHECK(cuda_api_fail(&api, r, "cuInit", "testing", err, sizeof err) == -1 &&
              strstr(err, "cuInit failed while testing: CUDA_ERROR_STUB_LIBRARY (34)"),
          "message: %s", err);
    cuda_lib_close(&lib);
  }
  // the whole path: a network, backend_create(BACKEND_CUDA) and its message
  const char *text = "network n { input 3x16x16; classes 4; stem cifar; channels 4; layers 1; nodes 1;"
                     " aux_weight 0; drop_path_keep 1; dropout_keep 1; }\n"
                     "cell normal { node 2 = conv3x3(0) + identity(1); }\n"
                     "cell reduction { node 2 = max3x3(0) + conv1x1(1); }\n";
  NetSpec ns;
  CHECK(nao_frontend_text("n.nao", text, strlen(text), &ns, stderr) == 0, "the test network");
  NetBuildOptions o;
  netbuild_options_default(&o);
  NetBuild nb;
  CHECK(netbuild_create(&ns, &o, &nb, err, sizeof err) == 0, "netbuild: %s", err);
  ModelState st;
  model_state_init(&st, &nb.params);
  BackendOptions bo = {.threads = 1, .gpus = 1, .max_batch = 2, .max_eval_batch = 2};
  setenv("NAOC_KERNEL_CACHE", "off", 1);
  Backend *b = backend_create(BACKEND_CUDA, &nb, &st, &bo, err, sizeof err);
  CHECK(!b, "the cuda backend started on the stub");
  CHECK(strstr(err, "--backend cuda: cuInit failed") && strstr(err, "CUDA_ERROR_STUB_LIBRARY") &&
            strstr(err, "no NVIDIA driver") && strstr(err, "--backend cpu"),
        "backend message: %s", err);
  backend_destroy(b);
  bo.gpus = 2;
  b = backend_create(BACKEND_CUDA, &nb, &st, &bo, err, sizeof err);
  CHECK(!b && strstr(err, "--gpus 2"), "--gpus 2: %s", err);
  unsetenv("NAOC_KERNEL_CACHE");
  unsetenv("NAOC_CUDA_LIB");
  model_state_free(&st);
  netbuild_free(&nb);
}

static void test_libraries(void) {
  char err[4096];
  CudnnApi dnn;
  CudaLib lib;
  if (cudnn_api_load(&dnn, &lib, err, sizeof err) == 0) {
    size_t v = dnn.get_version();
    CHECK(v >= 90000 && v < 100000, "cuDNN version %zu is not 9.x", v);
    DnnHandle h = NULL;
    DnnStatus s = dnn.create(&h);
    if (s == DNNAPI_STATUS_SUCCESS) {
      printf("note: cudnnCreate works here (a GPU is present)\n");
      dnn.destroy(h);
    } else {
      CHECK(cudnn_api_fail(&dnn, s, "cudnnCreate", "creating the handle", err, sizeof err) == -1 &&
                strstr(err, "cudnnCreate failed while creating the handle: CUDNN_STATUS_"),
            "cuDNN message: %s", err);
    }
    cuda_lib_close(&lib);
  } else {
    printf("note: no cuDNN here (%s)\n", err);
  }
  CublasApi blas;
  if (cublas_api_load(&blas, &lib, err, sizeof err) == 0) {
    BlasHandle h = NULL;
    BlasStatus s = blas.create(&h);
    if (s == BLASAPI_STATUS_SUCCESS) {
      printf("note: cublasCreate works here (a GPU is present)\n");
      blas.destroy(h);
    } else {
      CHECK(cublas_api_fail(&blas, s, "cublasCreate", "creating the handle", err, sizeof err) == -1 &&
                strstr(err, "cublasCreate failed while creating the handle: CUBLAS_STATUS_"),
            "cuBLAS message: %s", err);
    }
    cuda_lib_close(&lib);
  } else {
    printf("note: no cuBLAS here (%s)\n", err);
  }
}

// A fake virtualenv and PYTHONPATH with nvidia/<pkg>/lib folders.
static void test_wheels(void) {
  char root[] = "/tmp/naoc-wheels-XXXXXX";
  if (!mkdtemp(root)) {
    failures++;
    return;
  }
  const char *real = access("/usr/local/cuda/lib64/libcudart.so.13", R_OK) == 0
                         ? "/usr/local/cuda/lib64/libcudart.so.13"
                         : NULL;
  char venv[200], lib[300], pp[300], cmd[1200];
  snprintf(venv, sizeof venv, "%s/venv", root);
  snprintf(lib, sizeof lib, "%s/lib/python3.12/site-packages/nvidia/cu13/lib", venv);
  snprintf(pp, sizeof pp, "%s/site/nvidia/cudnn/lib", root);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", lib, pp);
  CHECK(system(cmd) == 0, "mkdir");
  setenv("VIRTUAL_ENV", venv, 1);
  char site[300];
  snprintf(site, sizeof site, "%s/site", root);
  setenv("PYTHONPATH", site, 1);
  char dirs[8192];
  cuda_lib_search_dirs(&cuda_spec_cudnn, dirs, sizeof dirs);
  CHECK(strstr(dirs, "/venv/lib/python3.12/site-packages/nvidia/cu13/lib") &&
            strstr(dirs, "/site/nvidia/cudnn/lib"),
        "wheel folders not searched:\n%s", dirs);
  if (real) {  // a library only the wheel folder has, with a sibling
    snprintf(cmd, sizeof cmd, "ln -s '%s' '%s/libnaocfake.so.1' && ln -s '%s' '%s/libnaocsib.so.7'", real,
             lib, real, lib);
    CHECK(system(cmd) == 0, "ln");
    static const char *const names[] = {"libnaocfake.so.1", NULL};
    static const char *const sib[] = {"libnaocsib.so.*", NULL};
    CudaLibSpec spec = {"a test library", "NAOC_TEST_FAKE_LIB", names, sib, 0, 0, 1};
    CudaLib l;
    char err[4096];
    CHECK(cuda_lib_open(&spec, &l, err, sizeof err) == 0, "not found in the wheel: %s", err);
    CHECK(strstr(l.path, "/nvidia/cu13/lib/libnaocfake.so.1") && l.n_sib == 1,
          "opened %s with %d siblings", l.path, l.n_sib);
    cuda_lib_close(&l);
    static const char *const none[] = {"libnaocnothere.so.1", NULL};
    CudaLibSpec missing = {"a missing library", "NAOC_TEST_MISSING_LIB", none, NULL, 0, 0, 1};
    CHECK(cuda_lib_open(&missing, &l, err, sizeof err) == -1 && strstr(err, "/nvidia/cu13/lib") &&
              strstr(err, "NAOC_TEST_MISSING_LIB"),
          "missing library message: %s", err);
  }
  unsetenv("VIRTUAL_ENV");
  unsetenv("PYTHONPATH");
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  CHECK(system(cmd) == 0, "rm");
}

int main(void) {
  test_missing();
  test_stub();
  test_libraries();
  test_wheels();
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
