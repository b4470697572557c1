// compiler/util.h — allocation, growable strings and arenas shared by every part.
//
// Allocation failure is not recoverable anywhere in naoc: x* functions print the
// place and the size, then exit with 70 (internal error). Nothing here keeps
// global mutable state.
#ifndef NAO_UTIL_H
#define NAO_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

// Exit codes shared by every program (../shared/STYLE.md).
enum { NAO_EXIT_OK = 0, NAO_EXIT_INPUT = 1, NAO_EXIT_USAGE = 2, NAO_EXIT_INTERNAL = 70 };

void *nao_xmalloc_at(size_t n, const char *file, int line);
void *nao_xcalloc_at(size_t count, size_t size, const char *file, int line);
void *nao_xrealloc_at(void *p, size_t n, const char *file, int line);
char *nao_xstrdup_at(const char *s, const char *file, int line);
#define xmalloc(n) nao_xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(c, s) nao_xcalloc_at((c), (s), __FILE__, __LINE__)
#define xrealloc(p, n) nao_xrealloc_at((p), (n), __FILE__, __LINE__)
#define xstrdup(s) nao_xstrdup_at((s), __FILE__, __LINE__)

// Internal error: a broken invariant. Prints "naoc: internal error at FILE:LINE: ..."
// and exits 70.
_Noreturn void nao_internal_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define nao_internal(...) nao_internal_at(__FILE__, __LINE__, __VA_ARGS__)
#define NAO_ASSERT(cond)                                                      \
  do {                                                                        \
    if (!(cond)) nao_internal("assertion failed: %s", #cond);                 \
  } while (0)

// ---------------------------------------------------------------- strings
// A growable NUL-terminated string. Zero-initialise, then append.
typedef struct {
  char *data;
  size_t len, cap;
} StrBuf;

void sb_append(StrBuf *sb, const char *s);
void sb_appendn(StrBuf *sb, const char *s, size_t n);
void sb_printf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(StrBuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sb_free(StrBuf *sb);
char *sb_steal(StrBuf *sb);  // the string, owned by the caller; sb is reset

// ---------------------------------------------------------------- arena
// Bump allocator: many small allocations freed at once (the parser's AST).
typedef struct ArenaBlock ArenaBlock;
typedef struct {
  ArenaBlock *head;
} Arena;

void *arena_alloc(Arena *a, size_t n);  // zeroed, aligned to 16
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
void arena_free(Arena *a);

// ---------------------------------------------------------------- files
// Reads a whole file. Returns NULL and sets *err to a static description on
// failure (errno is kept). *len excludes the NUL added at the end.
char *nao_read_file(const char *path, size_t *len, const char **err);

// 64-bit FNV-1a: stable hashing for cache keys and deduplication.
uint64_t nao_hash64(const void *data, size_t n, uint64_t seed);

#endif
