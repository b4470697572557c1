// runtime/atomic_file.h — replace a file so that readers (and a crash) only
// ever see the old or the new complete content.
//
// Protocol: write into a new temporary file in the destination's directory
// (".NAME.tmp.PID.NONCE", created with O_EXCL and mode 0666 & ~umask), fsync
// it, close it, rename it over NAME, then fsync the directory so the rename
// itself is durable. Killing the process at any moment leaves NAME as it was
// or as written (a stray temporary file may remain; it never replaces
// anything). atomic_abort removes the temporary file.
//
// Errors: -1 with "PATH: what failed: strerror" in err; the temporary file is
// removed and the destination untouched.
#ifndef NAO_ATOMIC_FILE_H
#define NAO_ATOMIC_FILE_H

#include <stddef.h>

typedef struct {
  int fd;       // -1 when not open
  char *path;   // destination
  char *tmp;    // temporary file, in the same directory
} AtomicFile;

int atomic_open(AtomicFile *af, const char *path, char *err, size_t errlen);
int atomic_write(AtomicFile *af, const void *data, size_t n, char *err, size_t errlen);
// fsync, close, rename over the destination, fsync the directory. af is
// closed afterwards whatever the result.
int atomic_commit(AtomicFile *af, char *err, size_t errlen);
// Closes and removes the temporary file; the destination is untouched.
void atomic_abort(AtomicFile *af);

// The whole protocol for one buffer.
int atomic_write_file(const char *path, const void *data, size_t n, char *err, size_t errlen);

#endif
