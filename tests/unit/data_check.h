// tests/unit/data_check.h — tiny assertion helpers for the data, safetensors
// and JSON unit tests (header only: nothing is linked into other tests).
//
// CHECK(cond, fmt, ...) records a failure with its line and goes on;
// CHECK_ERR(rc, err, needle...) checks that a call failed and that its message
// holds every needle. A test's main returns check_report().
#ifndef NAO_TEST_DATA_CHECK_H
#define NAO_TEST_DATA_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond, ...)                                                    \
  do {                                                                      \
    check_count++;                                                          \
    if (!(cond)) {                                                          \
      check_failures++;                                                     \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                         \
      fputc('\n', stderr);                                                  \
    }                                                                       \
  } while (0)

// The message must contain each of up to three needles (NULL to skip).
static inline int check_has(const char *msg, const char *a, const char *b, const char *c) {
  return (!a || strstr(msg, a)) && (!b || strstr(msg, b)) && (!c || strstr(msg, c));
}

static inline const char *check_s(const char *s) { return s ? s : ""; }

#define CHECK_ERR(rc, msg, a, b, c)                                          \
  CHECK((rc) != 0 && check_has((msg), (a), (b), (c)),                        \
        "rc %d, message '%s', wanted '%s' '%s' '%s'", (int)(rc), (msg),     \
        check_s(a), check_s(b), check_s(c))

static inline int check_report(const char *name) {
  if (check_failures) {
    fprintf(stderr, "%s: %d of %d checks failed\n", name, check_failures, check_count);
    return 1;
  }
  printf("%s: %d checks passed\n", name, check_count);
  return 0;
}

// ---------------------------------------------------------------- temp files

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

// A fresh directory under $TMPDIR (or /tmp); the caller frees the string.
static inline char *check_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  char *p = malloc(4096);
  if (!p) abort();
  snprintf(p, 4096, "%s/naoc-%s.XXXXXX", base && *base ? base : "/tmp", tag);
  if (!mkdtemp(p)) {
    perror("mkdtemp");
    exit(1);
  }
  return p;
}

// rm -r, without following symbolic links.
static inline void check_rmtree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char *p = malloc(strlen(dir) + strlen(e->d_name) + 2);
      if (!p) abort();
      sprintf(p, "%s/%s", dir, e->d_name);
      struct stat sb;
      if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) check_rmtree(p);
      else remove(p);
      free(p);
    }
    closedir(d);
  }
  remove(dir);
}

// dir/name into buf (static size 4096).
static inline const char *check_path(char *buf, const char *dir, const char *name) {
  snprintf(buf, 4096, "%s/%s", dir, name);
  return buf;
}

static inline void check_write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

#endif
