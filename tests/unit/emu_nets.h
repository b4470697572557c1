// tests/unit/emu_nets.h — named hand-built networks for the CUDA emitter's
// tests, golden files and NVRTC check (emu_nets.c).
#ifndef NAO_TEST_EMU_NETS_H
#define NAO_TEST_EMU_NETS_H

#include "tests/unit/emu_graph.h"

typedef struct {
  const char *name;
  IrMode mode;
  void (*build)(TG *t);
} EmuNet;

int emu_net_count(void);
const EmuNet *emu_net_at(int i);
const EmuNet *emu_net_find(const char *name);
// Builds the network (and, in training mode, its backward pass) into t.
void emu_net_make(const EmuNet *net, TG *t);

#endif
