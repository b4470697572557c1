// compiler/emit_seq.c — naoc --emit seq: the arch string and a newline.
#include "compiler/emit_seq.h"

void emit_seq(const NetSpec *ns, StrBuf *out) {
  char arch[NAO_ARCH_TEXT_MAX];
  netspec_format_arch(ns, arch, sizeof arch);
  sb_append(out, arch);
  sb_append(out, "\n");
}
