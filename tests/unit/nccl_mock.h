// tests/unit/nccl_mock.h — NCCL on the CPU for the communicator's tests: the
// function table of runtime/dist_nccl.h over one clique of ranks that are
// threads of the test process, and a device (DistDevice) whose memory is host
// memory and whose stream is the rank's queue of collectives.
//
// Semantics kept from NCCL: a collective returns as soon as it is enqueued;
// it completes when every rank of the clique has enqueued its counterpart
// (the k-th collective of each rank, in order), then its results appear in
// every rank's receive buffer at once (in-place operations included); the
// stream of a rank is done when all it enqueued completed. ncclCommInitRank
// blocks until every rank called it (with the same unique id). Sums run in
// the element type's precision in rank order; ncclAvg divides the sum by the
// world. With `mirror`, one thread is rank 0 of a larger world whose other
// ranks hold the same data (so a mean is the data itself, a sum world times
// it): a data-parallel step then equals a single-process one. Faults to inject: a rank's asynchronous error after some polls, an
// init that never completes (released by nccl_mock_release_init), an old
// version. The state is file-scope: one clique per test process at a time.
#ifndef NAO_TEST_NCCL_MOCK_H
#define NAO_TEST_NCCL_MOCK_H

#include "runtime/dist_nccl.h"

typedef struct {
  int world;                 // ranks of the clique
  int version;               // what ncclGetVersion says (default 22105)
  int async_error_rank;      // -1: none; else that rank's ncclCommGetAsyncError
  int async_error_after;     //   reports ncclRemoteError from this poll on (1: at once)
  int mirror;                // 1: rank 0 is the only real rank; the others contribute
                             //   copies of its data (a one-thread world of `world`)
  int cuda_streams;          // 1: streams are the cuda mock's (cuda_mock.h): collectives
                             //   are operations on them, recorded while capturing
} NcclMockConfig;

void nccl_mock_reset(const NcclMockConfig *cfg);
const NcclApi *nccl_mock_api(void);
// The device of `rank` (its memory: malloc; its stream: the rank's queue).
void nccl_mock_device(int rank, DistDevice *dev);
// Makes blocked ncclCommInitRank calls return ncclSystemError.
void nccl_mock_release_init(void);

typedef struct {
  int inits, destroys, aborts[16];
  long long collectives;     // executed
  int polls[16];             // ncclCommGetAsyncError calls per rank
  int id_mismatch;           // a rank joined with another unique id
} NcclMockStats;
NcclMockStats nccl_mock_stats(void);

#endif
