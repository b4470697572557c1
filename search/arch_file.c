// search/arch_file.c — the one place that writes an architecture's file
// (search.h, search_write_arch_file).
//
// HOOK for the lead: compiler/write_nao.{h,c} (NetSpec -> .nao text) is being
// written in parallel. Until it is merged this writes the architecture's text
// form, one line, to BASE.arch. To switch NAO spaces to .nao files, replace the
// marked block: copy o->backbone (dataset, F, N from --dataset/--channels/
// --layers), fill its cells with space_to_netspec(sp, tok, &ns), render it with
// write_nao and write the text to BASE.nao (sf_write_file). nb201 keeps .arch:
// its cells are not NAO networks.
#include <stdio.h>
#include <string.h>

#include "compiler/util.h"
#include "search/search.h"
#include "search/sfile.h"

int search_write_arch_file(const SearchOptions *o, const SearchSpace *sp, const int *tok, const char *base,
                           char *path_out, size_t outlen, char *err, size_t errlen) {
  char text[SPACE_TEXT_MAX + 1];
  (void)o;  // the backbone settings are for the .nao writer
  // ---- HOOK: NAO spaces -> write_nao(BASE.nao) once compiler/write_nao lands
  space_format(sp, tok, text, sizeof text - 1);
  strcat(text, "\n");
  snprintf(path_out, outlen, "%s.arch", base);
  // ---- end of HOOK
  return sf_write_file(path_out, text, strlen(text), err, errlen);
}
