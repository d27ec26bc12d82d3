/* Syscall round-trip cost: 200000 getppid() system calls. */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CALLS 200000

int main(void) {
    long first = syscall(SYS_getppid), same = 0;
    for (int i = 0; i < CALLS; i++)
        same += syscall(SYS_getppid) == first;
    printf("%ld of %d getppid calls agreed\n", same, CALLS);
    return same == CALLS ? 0 : 1;
}
