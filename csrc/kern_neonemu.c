/* The NEON table's code -- 4-lane vectors, the 6 x 16 register tile -- compiled for x86
 * with AVX2 + FMA: each 16-byte vector is an xmm register, and the products contract into
 * fused multiply-adds as aarch64's always do, lane by lane the same IEEE operations. Never
 * picked by isa_best(); NAS_EVAL_ISA=neon-emu or set_isa() select it, so that the NEON
 * tile's arithmetic (its left-over rows, 1 to 5) runs through the gradient checks and
 * float64 references on x86, where this project is tested. For tests only: not NEON's
 * speed, nor its compiler's code. */
#define KERN_TABLE kernels_neonemu
#define KERN_NAME "neon-emu"
#define KERN_ISA ISA_NEON_EMU
#define KERN_TARGET "avx2,fma,bmi,bmi2,f16c"
#include "kern_tiles.h" /* the tile of the table emulated */
#define VL NEON_VL
#define MR NEON_MR
#define NV NEON_NV
#if defined(__x86_64__) || defined(__i386__)
#include "kern_body.h"
#else
typedef int kern_neonemu_unused; /* ISO C: a translation unit must declare something */
#endif
