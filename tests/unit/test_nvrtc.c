// tests/unit/test_nvrtc.c — runtime/nvrtc.c: a missing library is reported
// with every path tried; a kernel compiles to a cubin for sm_90 and to PTX;
// a broken kernel fails with the program's name, NVRTC's error string and the
// log; ptxas's verbose report is parsed (registers, shared memory, stack,
// spills) from NVRTC and from a fixed sample. NVRTC itself must be present
// (CI machines have the CUDA toolkit): without it the test fails and says so.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/nvrtc.h"

static int failures;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
      failures++;                                          \
    }                                                      \
  } while (0)

static void test_missing(void) {
  const char *paths[2] = {"/nonexistent/libnvrtc.so.99", "libnvrtc-nope.so"};
  char err[2048];
  NvrtcLib *lib = nvrtc_open_from(paths, 2, err, sizeof err);
  CHECK(lib == NULL, "a missing library opened");
  CHECK(strstr(err, "not found") && strstr(err, "/nonexistent/libnvrtc.so.99") &&
            strstr(err, "libnvrtc-nope.so") && strstr(err, "NAO_NVRTC"),
        "the message names what was tried and how to fix it: %s", err);
}

static void test_parse_sample(void) {
  const char *log =
      "ptxas info    : 0 bytes gmem\n"
      "ptxas info    : Compiling entry function 'k1_a' for 'sm_90'\n"
      "ptxas info    : Function properties for k1_a\n"
      "ptxas         .     16 bytes stack frame, 12 bytes spill stores, 8 bytes spill loads\n"
      "ptxas info    : Used 40 registers, used 1 barriers, 16 bytes cumulative stack size, 1352 bytes smem\n"
      "ptxas info    : Compiling entry function 'k2_b' for 'sm_90'\n"
      "ptxas info    : Function properties for k2_b\n"
      "ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
      "ptxas info    : Used 32 registers, used 0 barriers\n";
  PtxasInfo *v = NULL;
  int n = nvrtc_parse_ptxas(log, &v);
  CHECK(n == 2, "two kernels, got %d", n);
  if (n == 2) {
    CHECK(strcmp(v[0].name, "k1_a") == 0 && strcmp(v[0].arch, "sm_90") == 0, "names");
    CHECK(v[0].registers == 40 && v[0].smem_bytes == 1352 && v[0].stack_bytes == 16 &&
              v[0].spill_stores == 12 && v[0].spill_loads == 8 && v[0].barriers == 1,
          "k1_a: %d regs %d smem %d stack %d/%d spills", v[0].registers, v[0].smem_bytes,
          v[0].stack_bytes, v[0].spill_stores, v[0].spill_loads);
    CHECK(v[1].registers == 32 && v[1].smem_bytes == 0 && v[1].spill_stores == 0, "k2_b");
  }
  free(v);
  CHECK(nvrtc_parse_ptxas("no report here\n", &v) == -1 && v == NULL, "no report");
}

static const char *const GOOD =
    "extern \"C\" __global__ void __launch_bounds__(128, 4) k0_scale(float *y, const float *x, int n) {\n"
    "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i < n) y[i] = 2.0f * x[i];\n"
    "}\n";

static void test_compile(NvrtcLib *lib) {
  char err[8192];
  NvrtcOutput out;
  const char *v[1] = {"--ptxas-options=-v"};
  int rc = nvrtc_compile(lib, "scale.cu", GOOD, "sm_90", v, 1, &out, err, sizeof err);
  CHECK(rc == 0, "compile: %s", err);
  if (rc == 0) {
    CHECK(out.is_cubin && out.code_size > 4 && memcmp(out.code, "\177ELF", 4) == 0,
          "a cubin (ELF) for sm_90");
    PtxasInfo *info = NULL;
    int n = nvrtc_parse_ptxas(out.log, &info);
    CHECK(n == 1 && strcmp(info[0].name, "k0_scale") == 0 && info[0].registers > 0,
          "ptxas report of the kernel: %s", out.log);
    free(info);
  }
  nvrtc_output_free(&out);
  rc = nvrtc_compile(lib, "scale.cu", GOOD, "compute_80", NULL, 0, &out, err, sizeof err);
  CHECK(rc == 0 && !out.is_cubin && strstr(out.code, ".entry k0_scale"), "PTX for compute_80: %s", err);
  nvrtc_output_free(&out);
  const char *bad = "extern \"C\" __global__ void k1_broken(float *y) { y[0] = undeclared; }\n";
  rc = nvrtc_compile(lib, "broken.cu", bad, "sm_90", NULL, 0, &out, err, sizeof err);
  CHECK(rc != 0, "a broken kernel compiled");
  CHECK(strstr(err, "broken.cu") && strstr(err, "nvrtcCompileProgram") &&
            strstr(err, "NVRTC_ERROR_COMPILATION") && strstr(err, "undeclared"),
        "the message names the program, the call, NVRTC's error and the log: %s", err);
  CHECK(out.log && strstr(out.log, "undeclared"), "the log is kept");
  nvrtc_output_free(&out);
}

int main(void) {
  test_missing();
  test_parse_sample();
  char err[2048];
  NvrtcLib *lib = nvrtc_open(err, sizeof err);
  if (!lib) {
    fprintf(stderr, "test_nvrtc: %s\n", err);
    return 1;
  }
  int major = 0, minor = 0;
  CHECK(nvrtc_version(lib, &major, &minor, err, sizeof err) == 0 && major >= 11, "version %d.%d",
        major, minor);
  printf("NVRTC %d.%d from %s\n", major, minor, nvrtc_path(lib));
  test_compile(lib);
  nvrtc_close(lib);
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  return 0;
}
