// enosys: syscalls Linux does not implement return -1 ENOSYS (the CLI test also checks the log).
#include "check.h"

int main(void) {
  CHECK("syscall(500)", syscall(500, 0, 0, 0));
  CHECK("syscall(SYS_nfsservctl)", syscall(SYS_nfsservctl, 0, 0, 0));
  CHECK("syscall(SYS_afs_syscall)", syscall(SYS_afs_syscall, 0, 0, 0));
  CHECK("syscall(100000)", syscall(100000));
  CHECK("syscall(-1)", syscall(-1));
  return 0;
}
