// runtime/nvrtc.h — NVRTC opened at run time (dlopen), so programs built here
// run on machines without the CUDA toolkit and say clearly why they cannot
// compile device code.
//
// nvrtc_open() looks for the library as $NAO_NVRTC (a path), then
// libnvrtc.so.13, libnvrtc.so.12 and libnvrtc.so through the dynamic loader
// (system paths, LD_LIBRARY_PATH), then under $CUDA_HOME/lib64 and
// /usr/local/cuda/lib64. Every NVRTC call is checked; a failure message names
// the call, the program (kernel file) name and nvrtcGetErrorString's text,
// and a failed compilation carries NVRTC's log.
#ifndef NAO_NVRTC_H
#define NAO_NVRTC_H

#include <stddef.h>

typedef struct NvrtcLib NvrtcLib;

NvrtcLib *nvrtc_open(char *err, size_t errlen);
void nvrtc_close(NvrtcLib *lib);
const char *nvrtc_path(const NvrtcLib *lib);  // the file that was opened
int nvrtc_version(NvrtcLib *lib, int *major, int *minor, char *err, size_t errlen);

typedef struct {
  char *code;        // cubin (arch "sm_XX") or PTX (arch "compute_XX")
  size_t code_size;
  int is_cubin;
  char *log;         // NVRTC's log, "" when empty; set whenever compilation ran
} NvrtcOutput;

// Compiles `source` as program `name` for `arch` with extra options (e.g.
// "--ptxas-options=-v"). Returns 0, or -1 with a message naming the program;
// out->log holds the log in both cases when compilation ran.
int nvrtc_compile(NvrtcLib *lib, const char *name, const char *source, const char *arch,
                  const char *const *opts, int n_opts, NvrtcOutput *out, char *err,
                  size_t errlen);
void nvrtc_output_free(NvrtcOutput *o);

// One kernel's resources from ptxas's verbose report (--ptxas-options=-v).
typedef struct {
  char name[160];
  char arch[16];
  int registers;
  int smem_bytes;
  int stack_bytes;
  int spill_stores, spill_loads;
  int barriers;
} PtxasInfo;

// Parses the report in `log`. Returns the number of kernels found (*out is
// malloc'd, caller frees), or -1 when the log has no ptxas report.
int nvrtc_parse_ptxas(const char *log, PtxasInfo **out);

#endif
