/* CPU-bound integer work: total Collatz steps for every start below N.
 * Data-dependent branches, shifts, adds; no memory traffic, no syscalls. */
#include <stdint.h>
#include <stdio.h>

#define N 1800000

int main(void) {
    uint64_t total = 0;
    for (uint64_t start = 1; start < N; start++) {
        uint64_t n = start;
        while (n != 1) {
            n = (n & 1) ? 3 * n + 1 : n >> 1;
            total++;
        }
    }
    printf("collatz steps below %d: %llu\n", N, (unsigned long long)total);
    return 0;
}
