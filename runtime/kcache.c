// runtime/kcache.c — the on-disk kernel cache (kcache.h).
//
// Entry file: DIR/KEY.KIND, made of a 64-byte header followed by the payload:
//   "NAOKC" VERSION-byte 0 0 | u64 payload length | u64 FNV-1a of the payload |
//   32 hex characters of the key | 8 bytes zero
// Writes go to a mkstemp file in DIR, then rename(2): atomic for readers on
// one file system. Nothing is fsync'd: an entry lost in a crash is rebuilt.
#include "runtime/kcache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/cuda_plan.h"
#include "compiler/util.h"

enum { HDR = 64 };
static const char magic[8] = {'N', 'A', 'O', 'K', 'C', (char)KCACHE_VERSION, 0, 0};

// mkdir -p; 0 or -1 with errno set.
static int mkdir_p(const char *path) {
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
  struct stat st;
  if (stat(tmp, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

void kcache_default_dir(char *out, size_t n) {
  const char *xdg = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  if (xdg && xdg[0] == '/') snprintf(out, n, "%s/naoc", xdg);
  else if (home && *home) snprintf(out, n, "%s/.cache/naoc", home);
  else if (n) out[0] = '\0';
}

int kcache_open(KCache *c, const char *dir, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  if (dir && (!*dir || strcmp(dir, "off") == 0)) {
    snprintf(c->note, sizeof c->note, "the kernel cache is off (--kernel-cache off)");
    return 0;
  }
  char def[1024];
  if (!dir) {
    kcache_default_dir(def, sizeof def);
    if (!def[0]) {
      snprintf(c->note, sizeof c->note,
               "the kernel cache is off: neither XDG_CACHE_HOME nor HOME is set "
               "(--kernel-cache DIR sets a folder)");
      return 0;
    }
  }
  const char *d = dir ? dir : def;
  if (strlen(d) >= sizeof c->dir - 64) {
    snprintf(err, errlen, "kernel cache folder %.200s...: path too long", d);
    return -1;
  }
  if (mkdir_p(d) != 0 || access(d, W_OK) != 0) {
    if (dir) {
      snprintf(err, errlen, "kernel cache folder %s: cannot create or write it: %s", d,
               strerror(errno));
      return -1;
    }
    snprintf(c->note, sizeof c->note, "the kernel cache is off: %s: %s", d, strerror(errno));
    return 0;
  }
  snprintf(c->dir, sizeof c->dir, "%s", d);
  c->enabled = 1;
  return 0;
}

// ---------------------------------------------------------------- keys

static void key_hex(KCacheKey *k) {
  snprintf(k->hex, sizeof k->hex, "%016llx%016llx", (unsigned long long)k->a,
           (unsigned long long)k->b);
}

void kcache_key_bytes(KCacheKey *k, const void *data, size_t len) {
  k->a = nao_hash64(data, len, 0x6b63616368652d61ULL);
  k->b = nao_hash64(data, len, 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)len << 1);
  key_hex(k);
}

void kcache_key(KCacheKey *k, const char *source, size_t len, const char *arch,
                const char *options, int nvrtc_major, int nvrtc_minor) {
  StrBuf m = {0};
  sb_printf(&m, "naoc-kcache %d|net %d|arch %s|nvrtc %d.%d|opts %s|len %zu|", KCACHE_VERSION,
            CUDA_NET_VERSION, arch, nvrtc_major, nvrtc_minor, options ? options : "", len);
  sb_appendn(&m, source, len);
  kcache_key_bytes(k, m.data, m.len);
  sb_free(&m);
}

void kcache_entry_path(const KCache *c, const KCacheKey *k, const char *kind, char *out,
                       size_t n) {
  snprintf(out, n, "%s/%s.%s", c->dir, k->hex, kind);
}

// ---------------------------------------------------------------- entries

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

int kcache_get(const KCache *c, const KCacheKey *k, const char *kind, void **data, size_t *len,
               int *damaged) {
  *data = NULL;
  *len = 0;
  if (damaged) *damaged = 0;
  if (!c->enabled) return 0;
  char path[1200];
  kcache_entry_path(c, k, kind, path, sizeof path);
  size_t n = 0;
  const char *why;
  unsigned char *buf = (unsigned char *)nao_read_file(path, &n, &why);
  if (!buf) return 0;  // a miss (or unreadable: treated alike)
  int ok = n >= HDR && memcmp(buf, magic, 8) == 0;
  uint64_t plen = ok ? get_u64(buf + 8) : 0;
  ok = ok && plen == n - HDR && memcmp(buf + 24, k->hex, 32) == 0;
  ok = ok && get_u64(buf + 16) == nao_hash64(buf + HDR, (size_t)plen, 0);
  if (!ok) {
    free(buf);
    unlink(path);
    if (damaged) *damaged = 1;
    return 0;
  }
  memmove(buf, buf + HDR, (size_t)plen);
  buf[plen] = 0;  // nao_read_file left room for a NUL after the whole file
  *data = buf;
  *len = (size_t)plen;
  return 1;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *q = p;
  while (n) {
    ssize_t w = write(fd, q, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    q += w;
    n -= (size_t)w;
  }
  return 0;
}

// Writes data to path through a temporary file in dir and a rename.
static int write_replace(const char *dir, const char *path, const void *hdr, size_t hn,
                         const void *data, size_t len, char *err, size_t errlen) {
  char tmp[1200];
  snprintf(tmp, sizeof tmp, "%s/.tmp-XXXXXX", dir);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot create a temporary file: %s", dir, strerror(errno));
    return -1;
  }
  int rc = (hn && write_all(fd, hdr, hn)) || write_all(fd, data, len) ? -1 : 0;
  int e = errno;
  if (close(fd) != 0 && !rc) rc = -1, e = errno;
  if (!rc && rename(tmp, path) != 0) rc = -1, e = errno;
  if (rc) {
    unlink(tmp);
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e));
  }
  return rc;
}

int kcache_put(const KCache *c, const KCacheKey *k, const char *kind, const void *data,
               size_t len, char *err, size_t errlen) {
  if (!c->enabled) return 0;
  unsigned char hdr[HDR];
  memset(hdr, 0, sizeof hdr);
  memcpy(hdr, magic, 8);
  put_u64(hdr + 8, len);
  put_u64(hdr + 16, nao_hash64(data, len, 0));
  memcpy(hdr + 24, k->hex, 32);
  char path[1200];
  kcache_entry_path(c, k, kind, path, sizeof path);
  return write_replace(c->dir, path, hdr, sizeof hdr, data, len, err, errlen);
}

int kcache_keep_failed(const KCache *c, const char *name, const KCacheKey *k, const char *source,
                       const char *log, char *path_out, size_t n, char *err, size_t errlen) {
  char dir[1100];
  if (c->enabled) {
    snprintf(dir, sizeof dir, "%s/failed", c->dir);
  } else {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/naoc-failed", t && *t ? t : "/tmp");
  }
  if (mkdir_p(dir) != 0) {
    snprintf(err, errlen, "%s: cannot create the folder: %s", dir, strerror(errno));
    return -1;
  }
  char safe[128];
  size_t j = 0;
  for (const char *p = name; *p && j < sizeof safe - 1; p++)
    safe[j++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                        *p == '_' || *p == '-' || *p == '.'
                    ? *p
                    : '_';
  safe[j] = '\0';
  char path[1400], lpath[1400];
  snprintf(path, sizeof path, "%s/%s-%.16s.cu", dir, safe, k->hex);
  snprintf(lpath, sizeof lpath, "%s/%s-%.16s.log", dir, safe, k->hex);
  if (write_replace(dir, path, NULL, 0, source, strlen(source), err, errlen)) return -1;
  if (log && write_replace(dir, lpath, NULL, 0, log, strlen(log), err, errlen)) return -1;
  snprintf(path_out, n, "%s", path);
  return 0;
}
