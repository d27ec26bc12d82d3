/* Memory-heavy work: sort 1M random ints, FNV-1a hash them, then random-access
 * read-modify-write updates over a 64 MiB table.
 *
 * The sort is a quicksort in this file rather than libc qsort(): musl's
 * qsort() is a smoothsort that alone takes over a second for 1M ints, which
 * would turn this into a benchmark of one libc routine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define COUNT (1 << 20)
#define TABLE (1 << 24)
#define UPDATES (20 << 20)

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void sort(int *v, long n) {
    while (n > 16) {
        int pivot = v[n / 2];
        long i = 0, j = n - 1;
        for (;;) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i >= j)
                break;
            int tmp = v[i];
            v[i++] = v[j];
            v[j--] = tmp;
        }
        /* recurse into the smaller half, loop on the larger one */
        if (j + 1 < n - j - 1) {
            sort(v, j + 1);
            v += j + 1;
            n -= j + 1;
        } else {
            sort(v + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (long i = 1; i < n; i++) {
        int x = v[i];
        long j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 14695981039346656037ull;
    while (n--) {
        h ^= *s++;
        h *= 1099511628211ull;
    }
    return h;
}

int main(void) {
    int *v = malloc(COUNT * sizeof *v);
    uint32_t *t = calloc(TABLE, sizeof *t);
    if (!v || !t)
        return 1;
    for (int i = 0; i < COUNT; i++)
        v[i] = (int)next();
    sort(v, COUNT);
    for (int i = 1; i < COUNT; i++)
        if (v[i - 1] > v[i])
            return 2;
    uint64_t h = fnv1a(v, COUNT * sizeof *v);
    for (uint32_t i = 0; i < UPDATES; i++) {
        uint64_t r = next();
        t[r & (TABLE - 1)] += i ^ (uint32_t)(r >> 40);
    }
    printf("sorted %016llx table %016llx\n", (unsigned long long)h,
           (unsigned long long)fnv1a(t, TABLE * sizeof *t));
    return 0;
}
