/* AVX2 + FMA kernels (x86-64-v3: Haswell, Zen 1-3 and later). 16 ymm registers: a
 * 6 x 16 tile is 12 accumulators + 2 B vectors + 1 broadcast (measured against 4 x 16,
 * 3 x 32 and the old 8 x 32 tile, which needs 32 registers and spills; BENCHMARKS.md). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi,bmi2,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,f16c")
#endif

#define KERN_TABLE kernels_avx2
#define KERN_NAME "avx2"
#define KERN_ISA ISA_AVX2
#define VL 8
#ifndef AVX2_MR
#define AVX2_MR 6
#endif
#ifndef AVX2_NV
#define AVX2_NV 2
#endif
#define MR AVX2_MR
#define NV AVX2_NV
#include "kern_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
typedef int kern_avx2_unused; /* ISO C: a translation unit must declare something */
#endif
