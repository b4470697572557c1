// tests/unit/nccl_decls.cpp — our declarations of NCCL (runtime/dist_nccl.h)
// against the library's own nccl.h, at compile time; tests/e2e/dist_nccl_decls.sh
// compiles it (g++ -fsyntax-only) where nccl.h is installed.
//
// "The same" is what the C calling convention sees: every field of NcclApi
// has the signature of the symbol nccl_api_load binds, parameter by
// parameter, up to: an enum and an integer of the same size are alike (ours
// are ints), pointers to opaque structures and void pointers are alike
// (handles, streams, buffers), a structure passed by value is alike to
// another of the same size (the unique id). Constants have nccl.h's values.
#include <cstddef>
#include <type_traits>

#include <nccl.h>

extern "C" {
#include "runtime/dist_nccl.h"
}

template <int N> struct Int {};
template <int N> struct Blob {};   // a structure passed by value, N bytes
struct Opaque {};                  // a pointer to a structure, or void
template <class T> struct Ptr {};
template <class R, class... A> struct Fn {};

template <class T, class = void> struct Canon { using type = T; };
template <class T> using canon_t = typename Canon<typename std::remove_cv<T>::type>::type;
template <class T>
struct Canon<T, typename std::enable_if<std::is_integral<T>::value || std::is_enum<T>::value>::type> {
  using type = Int<sizeof(T)>;
};
template <class T>
struct Canon<T, typename std::enable_if<std::is_class<T>::value>::type> { using type = Blob<sizeof(T)>; };
// Pointers to structures (complete or not) and to void are Opaque; the
// pointee is only canonicalized otherwise (it may be incomplete).
template <class T, class = void> struct PtrCanon { using type = Ptr<canon_t<T>>; };
template <class T>
struct PtrCanon<T, typename std::enable_if<std::is_class<T>::value || std::is_void<T>::value>::type> {
  using type = Opaque;
};
template <class T> struct Canon<T *, void> { using type = typename PtrCanon<typename std::remove_cv<T>::type>::type; };
template <class R, class... A> struct Canon<R(A...), void> { using type = Fn<canon_t<R>, canon_t<A>...>; };

#define SAME(field, sym)                                                                       \
  static_assert(std::is_same<canon_t<std::remove_pointer<decltype(NcclApi::field)>::type>,     \
                             canon_t<decltype(sym)>>::value,                                  \
                #field " does not have the signature of " #sym)

SAME(get_version, ncclGetVersion);
SAME(get_unique_id, ncclGetUniqueId);
SAME(comm_init_rank, ncclCommInitRank);
SAME(comm_destroy, ncclCommDestroy);
SAME(comm_abort, ncclCommAbort);
SAME(comm_get_async_error, ncclCommGetAsyncError);
SAME(all_reduce, ncclAllReduce);
SAME(broadcast, ncclBroadcast);
SAME(all_gather, ncclAllGather);
SAME(group_start, ncclGroupStart);
SAME(group_end, ncclGroupEnd);
SAME(get_error_string, ncclGetErrorString);
SAME(get_last_error, ncclGetLastError);

static_assert(sizeof(NcclUniqueId) == sizeof(ncclUniqueId) && DIST_NCCL_ID_BYTES == NCCL_UNIQUE_ID_BYTES,
              "the unique id");
static_assert(NCCLAPI_SUCCESS == ncclSuccess && NCCLAPI_UNHANDLED_CUDA_ERROR == ncclUnhandledCudaError &&
                  NCCLAPI_SYSTEM_ERROR == ncclSystemError && NCCLAPI_INTERNAL_ERROR == ncclInternalError &&
                  NCCLAPI_INVALID_ARGUMENT == ncclInvalidArgument &&
                  NCCLAPI_INVALID_USAGE == ncclInvalidUsage && NCCLAPI_REMOTE_ERROR == ncclRemoteError &&
                  NCCLAPI_IN_PROGRESS == ncclInProgress,
              "ncclResult_t values");
static_assert(NCCLAPI_UINT8 == ncclUint8 && NCCLAPI_FLOAT32 == ncclFloat32 && NCCLAPI_FLOAT64 == ncclFloat64,
              "ncclDataType_t values");
static_assert(NCCLAPI_SUM == ncclSum && NCCLAPI_MAX == ncclMax && NCCLAPI_AVG == ncclAvg, "ncclRedOp_t values");
static_assert(NCCLAPI_MIN_VERSION == NCCL_VERSION(2, 10, 0), "the oldest NCCL with ncclAvg");
