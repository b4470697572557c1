// search/archmap.c — open addressing with linear probing, FNV-1a of the
// tokens, grown at 50% load (archmap.h).
#include "search/archmap.h"

#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"

void archmap_init(ArchMap *m, int len) {
  memset(m, 0, sizeof *m);
  m->len = len;
}

void archmap_free(ArchMap *m) {
  free(m->keys), free(m->vals), free(m->used);
  memset(m, 0, sizeof *m);
}

void archmap_clear(ArchMap *m) {
  if (m->used) memset(m->used, 0, m->cap);
  m->count = 0;
}

static size_t slot(const ArchMap *m, const int *tok) {
  size_t i = (size_t)nao_hash64(tok, (size_t)m->len * sizeof(int), 0) & (m->cap - 1);
  while (m->used[i] && memcmp(m->keys + i * m->len, tok, (size_t)m->len * sizeof(int)))
    i = (i + 1) & (m->cap - 1);
  return i;
}

int archmap_get(const ArchMap *m, const int *tok) {
  if (!m->cap) return -1;
  size_t i = slot(m, tok);
  return m->used[i] ? m->vals[i] : -1;
}

static void grow(ArchMap *m) {
  ArchMap old = *m;
  m->cap = old.cap ? 2 * old.cap : 64;
  m->keys = xmalloc(m->cap * (size_t)m->len * sizeof(int));
  m->vals = xmalloc(m->cap * sizeof(int));
  m->used = xcalloc(m->cap, 1);
  m->count = 0;
  for (size_t i = 0; i < old.cap; i++)
    if (old.used[i]) archmap_put(m, old.keys + i * old.len, old.vals[i]);
  free(old.keys), free(old.vals), free(old.used);
}

void archmap_put(ArchMap *m, const int *tok, int val) {
  if (2 * (m->count + 1) > m->cap) grow(m);
  size_t i = slot(m, tok);
  if (!m->used[i]) {
    memcpy(m->keys + i * m->len, tok, (size_t)m->len * sizeof(int));
    m->used[i] = 1;
    m->count++;
  }
  m->vals[i] = val;
}
