// runtime/kcache.h — the on-disk cache of compiled kernels (NVRTC cubins) and
// of the cuda backend's other measured choices (cuDNN algorithms).
//
// Folder: the --kernel-cache option, else $XDG_CACHE_HOME/naoc, else
// ~/.cache/naoc; created on first use. An entry is one file named by its key,
// written to a temporary file in the folder and renamed into place (readers
// see the old entry, none, or the whole new one; no fsync: a lost entry is
// rebuilt). Each entry carries a header (magic, payload length, payload hash,
// its key): a file that does not match is ignored, removed and rebuilt.
//
// Key of a cubin: a 128-bit hash of the unit's source text, the target
// architecture, the NVRTC options, NVRTC's version, CUDA_NET_VERSION (the
// generated code's format) and KCACHE_VERSION (this cache's own).
//
// A compile failure keeps the failing source in DIR/failed/NAME-KEY.cu so
// that it can be compiled by hand; kcache_keep_failed says where.
//
// A KCache is plain data after kcache_open: several threads may get and put
// entries concurrently (distinct keys, or the same key: the last rename wins
// with identical content).
#ifndef NAO_KCACHE_H
#define NAO_KCACHE_H

#include <stddef.h>
#include <stdint.h>

#define KCACHE_VERSION 1

typedef struct {
  char dir[1024];  // "" when caching is off
  int enabled;
  char note[600];  // why caching is off, when kcache_open turned it off
} KCache;

// dir: the folder, or NULL for the default. An explicit folder that cannot be
// created is an error (-1 with a message); a default one that cannot be
// created turns caching off (0, note set) so that training still runs.
// dir "" or "off" turns caching off on purpose.
int kcache_open(KCache *c, const char *dir, char *err, size_t errlen);

// The default folder ($XDG_CACHE_HOME/naoc or $HOME/.cache/naoc), "" when
// neither variable is set.
void kcache_default_dir(char *out, size_t n);

typedef struct {
  uint64_t a, b;
  char hex[33];
} KCacheKey;

// The key of a compilation unit.
void kcache_key(KCacheKey *k, const char *source, size_t len, const char *arch,
                const char *options, int nvrtc_major, int nvrtc_minor);
// A key of arbitrary bytes (the cuDNN algorithm table's name, tests).
void kcache_key_bytes(KCacheKey *k, const void *data, size_t len);

// Looks up an entry of `kind` ("cubin"). Returns 1 with *data (malloc'd, the
// caller frees) and *len on a hit; 0 on a miss. A damaged entry is removed
// and counts as a miss (*damaged set to 1 when damaged is not NULL).
int kcache_get(const KCache *c, const KCacheKey *k, const char *kind, void **data, size_t *len,
               int *damaged);
// Stores an entry. Returns 0, or -1 with a message (the caller warns and goes
// on: a cache that cannot be written only costs time).
int kcache_put(const KCache *c, const KCacheKey *k, const char *kind, const void *data,
               size_t len, char *err, size_t errlen);
// The path an entry has (for messages and tests).
void kcache_entry_path(const KCache *c, const KCacheKey *k, const char *kind, char *out,
                       size_t n);

// Writes `source` to DIR/failed/NAME-KEY.cu (or, with caching off, to
// $TMPDIR) and its log beside it (.log). Returns 0 with the source's path in
// path_out, or -1 with a message.
int kcache_keep_failed(const KCache *c, const char *name, const KCacheKey *k, const char *source,
                       const char *log, char *path_out, size_t n, char *err, size_t errlen);

#endif
