/* A small pool of helper threads: all of the core's parallelism. OpenBLAS itself runs
 * single-threaded inside the core (set once at import), and workers call it on their own
 * blocks, so there is exactly one set of threads and none of them spins. Helpers sleep on a
 * condition variable between jobs — they never spin — so they do not fight OpenBLAS's
 * threads for the cores. Work is split into fixed ranges by worker index, so results
 * depend only on the thread count, never on scheduling. */
#ifndef NAS_EVAL_PARALLEL_H
#define NAS_EVAL_PARALLEL_H

typedef void (*task_fn)(void *ctx, int worker, int n_workers);

/* Runs fn(ctx, w, n) for w = 0..n-1, w = 0 on the calling thread; returns when all are done.
 * Calls from two threads take turns (the pool runs one job at a time). */
void pool_run(task_fn fn, void *ctx, int n);

/* Number of workers pool_run uses (>= 1); set by nas_eval.set_num_threads. */
void pool_set_threads(int n);
int pool_threads(void);

/* A barrier for the workers of one pool_run job that have to meet inside it. It spins
 * briefly (the others are running on the other cores and arrive within microseconds),
 * then sleeps (futex on Linux, a condition variable elsewhere) until the last one arrives,
 * so a late partner costs no CPU and the scheduler can move it onto the freed core. */
typedef struct {
    int n;
    int count;           /* arrivals in this round */
    unsigned generation; /* rounds completed; sleepers wait for it to change */
    int sleepers;
} Barrier;

typedef struct {
    Barrier *barrier;
} BarrierSeat;

void barrier_init(Barrier *b, int n);
void barrier_seat(BarrierSeat *seat, Barrier *b);
void barrier_wait(void *seat); /* BarrierSeat *, as a callback */

/* C = alpha op(A) op(B) + beta C (row-major), split into row or column blocks of C. */
void par_gemm(int n_workers, int ta, int tb, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* [begin, end) of worker w's share of n items */
static inline void pool_range(int n, int w, int n_workers, int *begin, int *end) {
    *begin = (int)((long)n * w / n_workers);
    *end = (int)((long)n * (w + 1) / n_workers);
}

#endif
