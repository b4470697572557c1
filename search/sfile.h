// search/sfile.h — files the search writes so that a kill at any moment leaves
// either the old or the new version: whole-file atomic replacement (temporary
// file in the same folder, write, fsync, rename, fsync of the folder) and
// append-only journals whose torn last line a reader ignores.
#ifndef NAO_SFILE_H
#define NAO_SFILE_H

#include <stddef.h>

// Replaces path with data. Returns 0, or -1 with "PATH: what failed: strerror".
int sf_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
// Replaces path with data through a temporary file and rename, without
// fsync: safe against a kill (never a half-written file), not against power
// loss. For outputs that a resumed step rewrites anyway.
int sf_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen);
// Appends data to path (created if missing) and fsyncs it. Returns 0 or -1.
int sf_append(const char *path, const void *data, size_t len, char *err, size_t errlen);
// Truncates path to len bytes (a journal back to its last committed size).
int sf_truncate(const char *path, size_t len, char *err, size_t errlen);
// mkdir -p for one level: creates dir unless it exists as a folder.
int sf_mkdir(const char *dir, char *err, size_t errlen);
// 1 when path exists (any kind).
int sf_exists(const char *path);

#endif
