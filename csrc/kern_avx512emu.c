/* The AVX-512 table's code -- 16-lane vectors, the 8 x 32 register tile, two vectors per
 * panel row in the mixtures -- compiled for AVX2 + FMA: gcc and clang carry out each
 * 64-byte vector as two ymm operations, lane by lane the same IEEE operations (fused
 * multiply-adds where the AVX-512 build has them, reductions in the order the C gives).
 * Never picked by isa_best(); NAS_EVAL_ISA=avx512-emu or set_isa() select it, so that a
 * machine without AVX-512 (this project's CI) runs the AVX-512 kernels' arithmetic through
 * the gradient checks and float64 references. For tests only: the 8 x 32 tile needs 32
 * ymm accumulators and spills, so it is slower than avx2. */
#define KERN_TABLE kernels_avx512emu
#define KERN_NAME "avx512-emu"
#define KERN_ISA ISA_AVX512_EMU
#define KERN_TARGET "avx2,fma,bmi,bmi2,f16c"
#include "kern_tiles.h" /* the tile of the table emulated */
#define VL AVX512_VL
#define MR AVX512_MR
#define NV AVX512_NV
#if defined(__x86_64__) || defined(__i386__)
#include "kern_body.h"
#else
typedef int kern_avx512emu_unused; /* ISO C: a translation unit must declare something */
#endif
