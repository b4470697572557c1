// runtime/atomic_file.c — temporary file + fsync + rename + fsync of the
// directory (atomic_file.h). No global state: the temporary name's nonce comes
// from the clock, the pid and the AtomicFile's address, and O_EXCL retries on
// a clash.
#include "runtime/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/rng.h"

static int fail_errno(char *err, size_t errlen, const char *path, const char *what) {
  snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errno));
  return -1;
}

// Directory part of path ("." when there is none), in a new string.
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return xstrdup(".");
  if (slash == path) return xstrdup("/");
  size_t n = (size_t)(slash - path);
  char *d = xmalloc(n + 1);
  memcpy(d, path, n);
  d[n] = 0;
  return d;
}

int atomic_open(AtomicFile *af, const char *path, char *err, size_t errlen) {
  af->fd = -1;
  af->path = af->tmp = NULL;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (!*base) {
    snprintf(err, errlen, "%s: not a file name", path);
    return -1;
  }
  char *dir = dir_of(path);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t nonce = rng_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                             (uint64_t)(uintptr_t)af ^ ((uint64_t)getpid() << 40));
  StrBuf sb = {0};
  for (int attempt = 0; attempt < 100; attempt++) {
    sb.len = 0;
    sb_printf(&sb, "%s/.%s.tmp.%ld.%08llx", dir, base, (long)getpid(),
              (unsigned long long)(rng_mix64(nonce + (uint64_t)attempt) & 0xffffffffu));
    af->fd = open(sb.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (af->fd >= 0 || errno != EEXIST) break;
  }
  free(dir);
  if (af->fd < 0) {
    fail_errno(err, errlen, sb.data, "cannot create temporary file");
    sb_free(&sb);
    return -1;
  }
  af->tmp = sb_steal(&sb);
  af->path = xstrdup(path);
  return 0;
}

int atomic_write(AtomicFile *af, const void *data, size_t n, char *err, size_t errlen) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(af->fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail_errno(err, errlen, af->tmp, "write");
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void atomic_release(AtomicFile *af) {
  free(af->path);
  free(af->tmp);
  af->path = af->tmp = NULL;
  af->fd = -1;
}

void atomic_abort(AtomicFile *af) {
  if (af->fd >= 0) close(af->fd);
  if (af->tmp) unlink(af->tmp);
  atomic_release(af);
}

// fsync of the directory makes the rename durable. Some file systems refuse
// fsync on directories (EINVAL); the rename is then as durable as they allow.
static int sync_dir(const char *path, char *err, size_t errlen) {
  char *dir = dir_of(path);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = 0;
  if (dfd < 0) rc = fail_errno(err, errlen, dir, "open directory for fsync");
  else {
    if (fsync(dfd) != 0 && errno != EINVAL) rc = fail_errno(err, errlen, dir, "fsync directory");
    close(dfd);
  }
  free(dir);
  return rc;
}

int atomic_commit(AtomicFile *af, char *err, size_t errlen) {
  if (fsync(af->fd) != 0) {
    fail_errno(err, errlen, af->tmp, "fsync");
    atomic_abort(af);
    return -1;
  }
  int fd = af->fd;
  af->fd = -1;
  if (close(fd) != 0) {
    fail_errno(err, errlen, af->tmp, "close");
    atomic_abort(af);
    return -1;
  }
  if (rename(af->tmp, af->path) != 0) {
    snprintf(err, errlen, "%s: cannot rename %s over it: %s", af->path, af->tmp, strerror(errno));
    atomic_abort(af);
    return -1;
  }
  int rc = sync_dir(af->path, err, errlen);
  atomic_release(af);
  return rc;
}

int atomic_write_file(const char *path, const void *data, size_t n, char *err, size_t errlen) {
  AtomicFile af;
  if (atomic_open(&af, path, err, errlen) != 0) return -1;
  if (atomic_write(&af, data, n, err, errlen) != 0) {
    atomic_abort(&af);
    return -1;
  }
  return atomic_commit(&af, err, errlen);
}
