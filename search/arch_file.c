// search/arch_file.c — the one place that writes an architecture's file
// (search.h, search_write_arch_file).
//
// NAO spaces: a .nao program (compiler/write_nao), the backbone settings from
// the options (--dataset, --channels, --layers, ...), so that naoc and nao-train
// take the file as it is. nb201: its cells are not NAO networks, so the file is
// the architecture's text form on one line (BASE.arch).
#include <stdio.h>
#include <string.h>

#include "compiler/util.h"
#include "compiler/write_nao.h"
#include "search/search.h"
#include "search/sfile.h"

int search_write_arch_file(const SearchOptions *o, const SearchSpace *sp, const int *tok, const char *base,
                           char *path_out, size_t outlen, char *err, size_t errlen) {
  char text[SPACE_TEXT_MAX + 1];
  space_format(sp, tok, text, sizeof text);
  NetSpec ns = o->backbone;
  if (space_to_netspec(sp, tok, &ns) != 0) {
    size_t n = strlen(text);
    snprintf(text + n, sizeof text - n, "\n");
    snprintf(path_out, outlen, "%s.arch", base);
    return sf_write_file(path_out, text, strlen(text), err, errlen);
  }
  StrBuf sb = {0};
  char comment[SPACE_TEXT_MAX + 64];
  snprintf(comment, sizeof comment, "found by nao-search (space %s)", o->space);
  write_nao(&ns, comment, &sb);
  snprintf(path_out, outlen, "%s.nao", base);
  int rc = sf_write_file(path_out, sb.data, sb.len, err, errlen);
  sb_free(&sb);
  return rc;
}
