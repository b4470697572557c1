// runtime/dist_cuda.h — data parallelism in the cuda runtime: NCCL attached
// to the process's Dist on the runtime's device, and the gradient buckets'
// all-reduces placed in the training sequence so that they overlap the rest
// of the backward pass (docs/distributed.md, "On the GPU").
//
// How a step runs with it (backend_cuda_exec.c calls the hooks of
// CudaRtComm at these points of the train sequence):
//   ... backward kernels ... step after_step[b] -> launch(b): an event on the
//   main stream, the comm stream waits for it, bucket b's slices of the
//   gradient array are averaged there (one NCCL group, ncclAvg)
//   ... more backward ... -> join: the main stream waits for the comm stream
//   -> gradient norm (the same on every rank), and, before the host reads the
//   step's loss and norm, wait: the main stream is polled with the timeout and
//   NCCL's asynchronous errors (no blocking synchronize that could hang).
// The pattern (event fork, NCCL on a second stream, event join) is legal
// inside CUDA graph capture, so captured steps replay it. Where the driver
// table lacks cuStreamWaitEvent, or NAO_DIST_OVERLAP=0, the all-reduces run
// on the main stream instead (same results, no overlap).
#ifndef NAO_DIST_CUDA_H
#define NAO_DIST_CUDA_H

#include <stddef.h>

#include "compiler/cuda_plan.h"
#include "runtime/cuda_api.h"
#include "runtime/dist.h"
#include "runtime/dist_buckets.h"
#include "runtime/dist_nccl.h"
#include "runtime/netbuild.h"

// The training program's step (index into p->steps) after which each bucket
// of b is complete: the last step with an argument that is the gradient of
// one of its entries (CUDA_ARG_GRAD), or the whole gradient array
// (CUDA_ARG_GRADS_ALL); a bucket none names goes after the last step.
// Placed in launch order, after[b] is made non-decreasing. Returns the number
// of buckets placed before the program's last step (those that overlap
// something).
int dist_cuda_bucket_steps(const DistBuckets *b, const ParamTable *t, const CudaProgram *p, int *after);

// A DistDevice over the driver API on `stream`: device memory by cuMemAlloc,
// copies enqueued on the stream (to the host through a pinned bounce buffer,
// finished when the stream is polled done), the stream polled with
// cuStreamQuery. Allocates nothing until used; dist_cuda_device_free releases.
typedef struct DistCudaDev DistCudaDev;
DistCudaDev *dist_cuda_device(const CudaApi *cu, CuStream stream, DistDevice *out);
void dist_cuda_device_free(DistCudaDev *dd);

// ---------------------------------------------------------------- the hooks
// Everything one rank's cuda runtime needs for data parallelism: NCCL
// attached to d over a DistDevice on the main stream (d becomes DIST_NCCL;
// under MPI its host collectives stay on MPI), the train graph's buckets
// (DIST_BUCKET_CAP_GPU, or $NAO_DIST_BUCKET_MB MiB) and their steps in program p, a comm stream and its
// events. grads: the device gradient array (the ParamTable's flat layout).
// p NULL (no training program): NCCL only, no buckets. Returns NULL with a
// message.
typedef struct DistCudaComm DistCudaComm;
DistCudaComm *dist_cuda_comm_create(Dist *d, const CudaApi *cu, CuStream main, CuDevptr grads,
                                    const NetBuild *nb, const CudaProgram *p,
                                    const DistNcclOptions *no, char *err, size_t errlen);
void dist_cuda_comm_free(DistCudaComm *c);  // NULL is fine
int dist_cuda_n_buckets(const DistCudaComm *c);
const int *dist_cuda_after_steps(const DistCudaComm *c);  // per bucket
int dist_cuda_overlaps(const DistCudaComm *c);            // 1: on the comm stream
const char *dist_cuda_error(const void *c);  // (a DistCudaComm)

// The hooks (user: the DistCudaComm). 0, or -1 with dist_cuda_error set.
int dist_cuda_launch(void *user, int bucket, CuStream main);
int dist_cuda_join(void *user, CuStream main);
int dist_cuda_wait(void *user);

#endif
