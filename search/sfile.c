// search/sfile.c — atomic file replacement, fsynced appends, folders (sfile.h).
#include "search/sfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/util.h"

static int fail(char *err, size_t errlen, const char *path, const char *what) {
  snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errno));
  return -1;
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len) {
    ssize_t k = write(fd, p, len);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    p += k, len -= (size_t)k;
  }
  return 0;
}

static int fsync_parent(const char *path) {
  char *copy = xstrdup(path);
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  free(copy);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

static int write_replace(const char *path, const void *data, size_t len, int durable, char *err, size_t errlen) {
  StrBuf tmp = {0};
  sb_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fail(err, errlen, tmp.data, "cannot create");
    sb_free(&tmp);
    return -1;
  }
  int rc = 0;
  if (write_all(fd, data, len) != 0) rc = fail(err, errlen, tmp.data, "write failed");
  else if (durable && fsync(fd) != 0) rc = fail(err, errlen, tmp.data, "fsync failed");
  if (close(fd) != 0 && rc == 0) rc = fail(err, errlen, tmp.data, "close failed");
  if (rc == 0 && rename(tmp.data, path) != 0) rc = fail(err, errlen, path, "rename failed");
  if (rc != 0) unlink(tmp.data);
  else if (durable && fsync_parent(path) != 0) rc = fail(err, errlen, path, "fsync of its folder failed");
  sb_free(&tmp);
  return rc;
}

int sf_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
  return write_replace(path, data, len, 1, err, errlen);
}

int sf_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen) {
  return write_replace(path, data, len, 0, err, errlen);
}

int sf_append(const char *path, const void *data, size_t len, char *err, size_t errlen) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return fail(err, errlen, path, "cannot open for appending");
  int rc = 0;
  if (write_all(fd, data, len) != 0) rc = fail(err, errlen, path, "write failed");
  else if (fsync(fd) != 0) rc = fail(err, errlen, path, "fsync failed");
  if (close(fd) != 0 && rc == 0) rc = fail(err, errlen, path, "close failed");
  return rc;
}

int sf_truncate(const char *path, size_t len, char *err, size_t errlen) {
  if (truncate(path, (off_t)len) != 0) return fail(err, errlen, path, "truncate failed");
  return 0;
}

int sf_mkdir(const char *dir, char *err, size_t errlen) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return 0;
    snprintf(err, errlen, "%s: exists and is not a folder", dir);
    return -1;
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) return fail(err, errlen, dir, "cannot create folder");
  return 0;
}

int sf_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}
