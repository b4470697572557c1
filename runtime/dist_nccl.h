// runtime/dist_nccl.h — the NCCL transport of the communicator (dist.h):
// libnccl.so.2 opened at run time behind a table of functions, filled from
// the library (nccl_api_load) or by a test's mock (tests/unit/nccl_mock.c),
// so nothing of NCCL is needed to build and a machine without it runs
// everything else.
//
// The cuda backend attaches NCCL to the process's Dist once its device and
// stream exist (dist_nccl_attach): the unique id comes from the local
// launcher's environment (nao-train --gpus N) or from rank 0 over MPI (mpirun,
// srun), then ncclCommInitRank under a watchdog (a rank that never joins ends
// the process after the timeout with a message, since a blocking init cannot
// be aborted). From then on:
//  - dist_nccl_allreduce_device enqueues the average of device slices on the
//    stream (one NCCL group: ncclAvg, so no scaling kernel; NCCL >= 2.10);
//  - dist_nccl_wait waits for the stream by polling it, and
//    ncclCommGetAsyncError; an asynchronous error or the timeout aborts the
//    communicator (ncclCommAbort) and fails with a message naming the
//    collective; under MPI, the ranks that did not reach it are then named
//    through an MPI probe (dist_mpi.c's arrivals);
//  - the host collectives of dist.h go over MPI when there is MPI, else
//    through a device staging buffer and NCCL (the local launcher's children
//    have nothing else).
//
// Types and constants mirror nccl.h (same values): NcclX for ncclX types,
// NCCLAPI_ for constants. Streams are CUstreams (cudaStream_t is the same).
#ifndef NAO_DIST_NCCL_H
#define NAO_DIST_NCCL_H

#include <stddef.h>

#include "runtime/cuda_find.h"
#include "runtime/dist.h"

typedef int NcclResult;                  // ncclResult_t
typedef struct NcclCommSt *NcclComm;     // ncclComm_t
typedef struct {
  char internal[DIST_NCCL_ID_BYTES];     // NCCL_UNIQUE_ID_BYTES
} NcclUniqueId;

enum {
  NCCLAPI_SUCCESS = 0,
  NCCLAPI_UNHANDLED_CUDA_ERROR = 1,
  NCCLAPI_SYSTEM_ERROR = 2,
  NCCLAPI_INTERNAL_ERROR = 3,
  NCCLAPI_INVALID_ARGUMENT = 4,
  NCCLAPI_INVALID_USAGE = 5,
  NCCLAPI_REMOTE_ERROR = 6,
  NCCLAPI_IN_PROGRESS = 7,
  NCCLAPI_UINT8 = 1,        // ncclUint8
  NCCLAPI_FLOAT32 = 7,      // ncclFloat32
  NCCLAPI_FLOAT64 = 8,      // ncclFloat64
  NCCLAPI_SUM = 0,          // ncclSum
  NCCLAPI_MAX = 2,          // ncclMax
  NCCLAPI_AVG = 4,          // ncclAvg (NCCL >= 2.10)
  NCCLAPI_MIN_VERSION = 21000,  // NCCL_VERSION(2,10,0)
};

typedef struct NcclApi {
  const char *name;  // the library's path, or "mock"
  NcclResult (*get_version)(int *version);
  NcclResult (*get_unique_id)(NcclUniqueId *id);
  NcclResult (*comm_init_rank)(NcclComm *comm, int nranks, NcclUniqueId id, int rank);
  NcclResult (*comm_destroy)(NcclComm comm);
  NcclResult (*comm_abort)(NcclComm comm);
  NcclResult (*comm_get_async_error)(NcclComm comm, NcclResult *async_error);
  NcclResult (*all_reduce)(const void *send, void *recv, size_t count, int dtype, int op,
                           NcclComm comm, void *stream);
  NcclResult (*broadcast)(const void *send, void *recv, size_t count, int dtype, int root,
                          NcclComm comm, void *stream);
  NcclResult (*all_gather)(const void *send, void *recv, size_t count, int dtype, NcclComm comm,
                           void *stream);
  NcclResult (*group_start)(void);
  NcclResult (*group_end)(void);
  const char *(*get_error_string)(NcclResult r);
  const char *(*get_last_error)(NcclComm comm);  // NULL before NCCL 2.13
} NcclApi;

// Opens libnccl.so.2 (cuda_find.h's search: NAOC_NCCL_LIB, the loader's path,
// the Python wheels' nvidia/nccl/lib) and fills api. Returns 0, or -1 with a
// message naming what is missing.
int nccl_api_load(NcclApi *api, CudaLib *lib, char *err, size_t errlen);

// A fresh unique id from the library (the local launcher's parent calls this;
// it keeps NCCL's bootstrap root alive while the children join).
int dist_nccl_unique_id(unsigned char id[DIST_NCCL_ID_BYTES], char *err, size_t errlen);

// What the communicator needs of the device: the cuda backend implements it
// over the driver API, tests over host memory.
typedef struct {
  void *user;
  void *stream;  // the CUstream the collectives are enqueued on
  int (*alloc)(void *user, size_t bytes, void **dptr, char *err, size_t errlen);
  void (*free)(void *user, void *dptr);
  // Enqueued on the stream (host memory need not be pinned).
  int (*h2d)(void *user, void *dst, const void *src, size_t bytes, char *err, size_t errlen);
  int (*d2h)(void *user, void *dst, const void *src, size_t bytes, char *err, size_t errlen);
  // The stream: 1 when everything enqueued is done, 0 while not, -1 on an
  // error (message in err).
  int (*query)(void *user, char *err, size_t errlen);
} DistDevice;

typedef struct {
  const NcclApi *api;  // NULL: DistOptions.nccl_api, else libnccl, opened here
  // Called when ncclCommInitRank has not returned within the timeout (it
  // cannot be aborted); NULL: print msg and _exit(70). Tests override it.
  void (*init_timeout)(void *user, const char *msg);
  void *init_timeout_user;
} DistNcclOptions;

// Gives d (a LOCAL or MPI communicator of world > 1) the NCCL transport on
// device dev. Returns 0, or -1 with a message (no NCCL, too old, init failed).
int dist_nccl_attach(Dist *d, const DistDevice *dev, const DistNcclOptions *o, char *err,
                     size_t errlen);
int dist_nccl_attached(const Dist *d);
// Takes NCCL off d before its device goes away (the cuda backend's destroy):
// waits for the stream (with the timeout), destroys the communicator (or
// aborts it after a failure), frees the staging buffer, and gives d back the
// host collectives it had (MPI's; the local launcher's children have none).
void dist_nccl_detach(Dist *d);

// Enqueues the average (op MEAN) or sum of float slices of device memory
// dbase over the ranks, in place, as one NCCL group on `stream` (NULL: the
// device's): one collective of dist.h (its sequence number, heartbeat). Does
// not wait. Returns 0, or -1 with dist_error(d) set.
int dist_nccl_allreduce_device(Dist *d, float *dbase, const DistRange *r, int n, DistOp op,
                               void *stream, const char *what);
// Waits for the stream with the timeout and the async error polling (see
// above). Returns 0, or -1 with dist_error(d) set (the communicator aborted).
int dist_nccl_wait(Dist *d, const char *what);

#endif
