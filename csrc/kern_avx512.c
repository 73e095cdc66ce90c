/* AVX-512 kernels (x86-64-v4: Skylake-X, Ice Lake, Zen 4 and later); the tile in
 * kern_tiles.h. */
#define KERN_TABLE kernels_avx512
#define KERN_NAME "avx512"
#define KERN_ISA ISA_AVX512
#define KERN_TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx512cd,avx2,fma,bmi,bmi2,f16c"
#include "kern_tiles.h"
#define VL AVX512_VL
#define MR AVX512_MR
#define NV AVX512_NV
#if defined(__x86_64__) || defined(__i386__)
#include "kern_body.h"
#else
typedef int kern_avx512_unused; /* ISO C: a translation unit must declare something */
#endif
