/* A small pool of helper threads: all of the core's parallelism. OpenBLAS itself runs
 * single-threaded inside the core (set once at import), and workers call it on their own
 * blocks, so there is exactly one set of threads and none of them spins. Helpers sleep on a
 * condition variable between jobs — they never spin — so they do not fight OpenBLAS's
 * threads for the cores. Work is split into fixed ranges by worker index, so results
 * depend only on the thread count, never on scheduling. */
#ifndef NAS_EVAL_PARALLEL_H
#define NAS_EVAL_PARALLEL_H

typedef void (*task_fn)(void *ctx, int worker, int n_workers);

/* Runs fn(ctx, w, n) with w = 0 on the calling thread and w = 1..n-1 on helpers; returns
 * when all that started are done. fn must share its work out by tickets (a TaskQueue or
 * pool_for's items), so that everything is claimed when the caller's fn returns: a helper
 * that had not started by then is released, not waited for. Calls from two threads take
 * turns (the pool runs one job at a time). */
void pool_run(task_fn fn, void *ctx, int n);

/* Runs fn(ctx, item, n_items, worker) for item = 0..n_items-1 on n_workers workers, each
 * taking the next item when it is free (worker: who runs it, for per-worker scratch). Items
 * must write disjoint outputs; then the result does not depend on who ran what. */
typedef void (*item_fn)(void *ctx, int item, int n_items, int worker);
void pool_for(item_fn fn, void *ctx, int n_items, int n_workers);

/* Number of workers pool_run uses (>= 1); set by nas_eval.set_num_threads. */
void pool_set_threads(int n);
int pool_threads(void);

/* Work that the workers of one pool_run job share in phases: phase p holds tickets
 * [p * per_phase, (p + 1) * per_phase); each worker claims tickets of its current phase
 * until none are left, then waits until every ticket of the phase is finished before it
 * starts the next. Whoever is running does the work, so a worker that the OS keeps off a
 * core (another process on it) delays only the ticket it holds, never a whole phase, and
 * a late worker skips the phases the others finished. Waiting spins briefly (the others
 * finish within microseconds on an idle machine), then sleeps in the kernel (futex on
 * Linux, a condition variable elsewhere): no yield storm, and the freed core can take the
 * late worker. Results never depend on who ran a ticket, as tickets write disjoint data. */
typedef struct {
    unsigned long long claimed; /* tickets handed out */
    unsigned long long done;    /* tickets finished */
    unsigned wake;              /* bumped for sleepers, who wait on it (a futex is 32 bits) */
    int sleepers;
} TaskQueue;

void queue_init(TaskQueue *q);
/* the next ticket below `limit`, or -1 when there is none */
long long queue_claim(TaskQueue *q, unsigned long long limit);
void queue_finish(TaskQueue *q);
/* returns once `target` tickets are finished */
void queue_wait(TaskQueue *q, unsigned long long target);

/* Below this many multiply-adds (~80 us on one core) a product runs on the calling thread:
 * waking a partner costs tens of microseconds, and when another process holds the partner's
 * core the wait is a scheduler time slice (milliseconds). Measured with bench_threads.py
 * --busy: splitting d = 16..32 products lost up to 9 % to one thread with a busy core. */
#define PAR_GEMM_MIN_MACS (1u << 23)

/* C = alpha op(A) op(B) + beta C (row-major), split into 2 n_workers row or column blocks of
 * C (items of pool_for); below PAR_GEMM_MIN_MACS on the calling thread. */
void par_gemm(int n_workers, int ta, int tb, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* [begin, end) of worker w's share of n items */
static inline void pool_range(int n, int w, int n_workers, int *begin, int *end) {
    *begin = (int)((long)n * w / n_workers);
    *end = (int)((long)n * (w + 1) / n_workers);
}

#endif
