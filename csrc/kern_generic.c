/* Portable kernels: plain C at the compiler's baseline (SSE2 on x86-64, NEON on aarch64,
 * scalar elsewhere); the fallback every build has. 4-lane vectors, a 4 x 8 tile (8
 * accumulators: half of SSE2's 16 registers). */
#define KERN_TABLE kernels_generic
#define KERN_NAME "generic"
#define KERN_ISA ISA_GENERIC
#define VL 4
#define MR 4
#define NV 2
#include "kern_body.h"
