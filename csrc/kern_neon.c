/* aarch64 NEON kernels (every aarch64 CPU has NEON, so no run-time check and no target:
 * the baseline). 32 q registers of 4 floats: a 6 x 16 tile is 24 accumulators + 4 B
 * vectors + 1-2 for A. Chosen from the register count, not measured: no aarch64 machine was
 * available. */
#define KERN_TABLE kernels_neon
#define KERN_NAME "neon"
#define KERN_ISA ISA_NEON
#define VL 4
#define MR 6
#define NV 4
#if defined(__aarch64__)
#include "kern_body.h"
#else
typedef int kern_neon_unused; /* ISO C: a translation unit must declare something */
#endif
