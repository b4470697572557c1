// runtime/cuda_find.h — finding and opening NVIDIA's shared libraries at run
// time (libcuda, libnvrtc, libcudnn, libcublas, libnccl), so that nothing of
// CUDA is needed to build or to run on a machine without a GPU.
//
// Search order for one library (the first that dlopen accepts wins):
//  1. the environment variable of the library (e.g. NAOC_CUDNN_LIB): a path
//     to the file, or a folder that holds it. When set, nothing else is tried:
//     the user asked for that file.
//  2. the dynamic loader's own search, by soname (LD_LIBRARY_PATH, the
//     program's run path, /etc/ld.so.cache);
//  3. the toolkit's folders: $CUDA_HOME/lib64, /usr/local/cuda/lib64, and for
//     the driver the container convention /usr/local/nvidia/lib64;
//  4. Python wheels: site-packages/nvidia/*/lib (nvidia/cudnn/lib,
//     nvidia/cu13/lib, ...) under the usual roots: $VIRTUAL_ENV, every
//     PYTHONPATH entry, the python3 of every PATH folder (../lib/python3*),
//     /opt/*/.venv, /usr/local/lib/python3*, /usr/lib/python3, ~/.local.
// A library found in a folder (steps 3 and 4) gets the sibling libraries its
// spec names loaded first from the same folder, by full path (RTLD_GLOBAL):
// cuBLAS needs cuBLASLt, cuDNN's shim loads its sub-libraries by bare name,
// which only works when they are already loaded or on the loader's path.
//
// The toolkit's stub libcuda (lib64/stubs) is never picked up by the search;
// pointed at through NAOC_CUDA_LIB it loads, and cuInit fails with
// CUDA_ERROR_STUB_LIBRARY, which the driver layer reports.
#ifndef NAO_CUDA_FIND_H
#define NAO_CUDA_FIND_H

#include <stddef.h>

typedef struct {
  const char *what;             // "the CUDA driver (libcuda)", for messages
  const char *env;              // "NAOC_CUDA_LIB"
  const char *const *names;     // sonames in order of preference, NULL-terminated
  const char *const *siblings;  // glob patterns loaded first from the same folder
                                //   (NULL-terminated, may be NULL)
  int toolkit;                  // 1: look in the CUDA toolkit's lib64
  int driver;                   // 1: look in /usr/local/nvidia/lib64 (driver mounts)
  int wheels;                   // 1: look in the Python wheels
} CudaLibSpec;

typedef struct {
  void *handle;                 // dlopen handle; NULL when not open
  char path[1024];              // what was opened (a soname or a full path)
  void *sib[16];                // siblings loaded by full path
  int n_sib;
} CudaLib;

// Opens the library. Returns 0, or -1 with a message that names the library,
// the variable that selects it and everything that was tried.
int cuda_lib_open(const CudaLibSpec *spec, CudaLib *lib, char *err, size_t errlen);
void cuda_lib_close(CudaLib *lib);
// The symbol, or NULL.
void *cuda_lib_sym(const CudaLib *lib, const char *name);

// The folders searched in steps 3 and 4 (toolkit / driver / wheel folders
// that exist), one per line, for diagnostics (check.sh prints them).
void cuda_lib_search_dirs(const CudaLibSpec *spec, char *out, size_t outlen);

// The specs of the libraries the runtime uses.
extern const CudaLibSpec cuda_spec_driver;  // libcuda.so.1           NAOC_CUDA_LIB
extern const CudaLibSpec cuda_spec_nvrtc;   // libnvrtc.so.13 / .12   NAOC_NVRTC_LIB
extern const CudaLibSpec cuda_spec_cudnn;   // libcudnn.so.9          NAOC_CUDNN_LIB
extern const CudaLibSpec cuda_spec_cublas;  // libcublas.so.13 / .12  NAOC_CUBLAS_LIB

#endif
