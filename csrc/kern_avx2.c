/* AVX2 + FMA kernels (x86-64-v3: Haswell, Zen 1-3 and later). 16 ymm registers. Tiles
 * measured on Zen 4 (products of 32 or 64 rows, d = 64..850): with gcc a 3 x 32 tile (12
 * accumulators; gcc takes the 4 B vectors as FMA memory operands) is best: 6 x 16 equal
 * at 64 rows and up to 15 % slower at 32, 5 x 16, 4 x 16 and 2 x 32 5-25 % slower. clang
 * keeps all 4 B vectors in registers and spills an accumulator on every step of 3 x 32
 * (3x slower), so with clang 6 x 16 (12 accumulators + 2 B + 1 broadcast = 15 registers).
 * The old 8 x 32 tile needs 32 registers and spills with either. */
#define KERN_TABLE kernels_avx2
#define KERN_NAME "avx2"
#define KERN_ISA ISA_AVX2
#define KERN_TARGET "avx2,fma,bmi,bmi2,f16c"
#define VL 8
#if !defined(AVX2_MR) && defined(__clang__)
#define AVX2_MR 6
#define AVX2_NV 2
#elif !defined(AVX2_MR)
#define AVX2_MR 3
#define AVX2_NV 4
#endif
#define MR AVX2_MR
#define NV AVX2_NV
#if defined(__x86_64__) || defined(__i386__)
#include "kern_body.h"
#else
typedef int kern_avx2_unused; /* ISO C: a translation unit must declare something */
#endif
