/* aarch64 NEON kernels (every aarch64 CPU has NEON, so no run-time check and no target:
 * the baseline); the tile in kern_tiles.h. */
#define KERN_TABLE kernels_neon
#define KERN_NAME "neon"
#define KERN_ISA ISA_NEON
#include "kern_tiles.h"
#define VL NEON_VL
#define MR NEON_MR
#define NV NEON_NV
#if defined(__aarch64__)
#include "kern_body.h"
#else
typedef int kern_neon_unused; /* ISO C: a translation unit must declare something */
#endif
