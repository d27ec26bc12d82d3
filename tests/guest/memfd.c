// memfd: memfd_create flags and names, I/O and shared mappings of the file, seals
// (F_ADD_SEALS/F_GET_SEALS and what they forbid), sharing with a fork child.
#include "check.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#define MFD_ALLOW_SEALING 2U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 1
#define F_SEAL_SHRINK 2
#define F_SEAL_GROW 4
#define F_SEAL_WRITE 8
#endif

static int memfd(const char *name, unsigned flags) {
  return syscall(SYS_memfd_create, name, flags);
}

int main(void) {
  SECTION("create");
  int fd = memfd("blinkroot-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  FACT(fd >= 0);
  SHOW(fcntl(fd, F_GETFD));
  SHOW(fcntl(fd, F_GETFL));
  char link[256] = {0}, path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  SHOW(readlink(path, link, sizeof link - 1));
  printf("link: %s\n", link);
  struct stat st;
  SHOW(fstat(fd, &st));
  printf("regular=%d size=%ld mode=%o\n", S_ISREG(st.st_mode), (long)st.st_size,
         st.st_mode & 0777);
  SHOW(memfd("x", 0x100));
  SHOW(memfd((char *)8, 0));
  char longname[300];
  memset(longname, 'n', sizeof longname);
  longname[249] = 0;
  int ok = memfd(longname, MFD_CLOEXEC);
  FACT(ok >= 0);
  close(ok);
  longname[249] = 'n';
  longname[250] = 0;
  SHOW(memfd(longname, 0));
  int plain = memfd("", 0);
  FACT(plain >= 0);
  SHOW(fcntl(plain, F_GETFD));

  SECTION("data and mappings");
  SHOW(write(fd, "hello memfd", 11));
  SHOW(ftruncate(fd, 8192));
  char *m = SHOWP(mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
  printf("mapped: %s\n", m);
  strcpy(m + 4096, "through the mapping");
  char buf[32] = {0};
  SHOW(pread(fd, buf, 19, 4096));
  printf("read back: %s\n", buf);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    strcpy(m, "child");
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  SHOW(pread(fd, buf, 6, 0));
  printf("after the child: %s\n", buf);

  SECTION("seals");
  SHOW(fcntl(fd, F_GET_SEALS));
  SHOW(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK));
  SHOW(fcntl(fd, F_GET_SEALS));
  SHOW(ftruncate(fd, 100));
  SHOW(ftruncate(fd, 3 * 4096));
  SHOW(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));   /* a writable shared mapping exists */
  SHOW(munmap(m, 8192));
  SHOW(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW));
  SHOW(pwrite(fd, "x", 1, 0));
  SHOW(ftruncate(fd, 4 * 4096));
  SHOWP(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
  char *r = SHOWP(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED);
  SHOW(mprotect(r, 4096, PROT_READ | PROT_WRITE));
  char *p = SHOWP(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), MAP_FAILED);
  p[0] = 'P';
  FACT(r[0] == 'c');
  SHOW(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL));
  SHOW(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
  SHOW(fcntl(fd, F_GET_SEALS));
  SHOW(fcntl(plain, F_GET_SEALS));
  SHOW(fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE));
  SHOW(fcntl(0, F_GET_SEALS) == -1 ? -1 : 0);
  SHOW(close(fd));
  SHOW(close(plain));
  return 0;
}
