// fsextra: the rest of the file area: old stat/getdents, directory positions, statfs,
// ioctl on files and pipes, flock, sendfile/splice/tee, fallocate and friends, the
// older time setters, readlinkat/linkat on descriptors, fchmodat2, mknodat, sysfs.
#include "check.h"
#include <fcntl.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <utime.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

struct kdirent64 {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[];
};

struct kdirent {
  unsigned long ino, off;
  unsigned short reclen;
  char name[];
};

static void show_file(const char *path) {
  char buf[256];
  int fd = open(path, O_RDONLY);
  print_quoted(path, buf, read(fd, buf, sizeof buf));
  close(fd);
}

/* Entries of one getdents/getdents64 pass over fd, sorted, as "name/type". */
static int list(int fd, int old, int bufsize, char **names) {
  char buf[4096];
  long n;
  int count = 0;
  while ((n = syscall(old ? SYS_getdents : SYS_getdents64, fd, buf, bufsize)) > 0) {
    for (long pos = 0; pos < n;) {
      char *entry = malloc(300);
      if (old) {
        struct kdirent *d = (struct kdirent *)(buf + pos);
        snprintf(entry, 300, "%s/%d", d->name, buf[pos + d->reclen - 1]);
        if (d->reclen % 8) printf("  %s: reclen %d not aligned\n", d->name, d->reclen);
        pos += d->reclen;
      } else {
        struct kdirent64 *d = (struct kdirent64 *)(buf + pos);
        snprintf(entry, 300, "%s/%d", d->name, d->type);
        pos += d->reclen;
      }
      names[count++] = entry;
    }
  }
  if (n < 0) printf("  getdents: %s\n", errname(errno));
  qsort(names, count, sizeof *names, compare_strings);
  return count;
}

static void show_list(const char *label, int count, char **names) {
  printf("%s (%d):", label, count);
  for (int i = 0; i < count; i++) printf(" %s", names[i]);
  printf("\n");
}

static void test_dirs(void) {
  SECTION("getdents/getdents64/lseek");
  mkdir("dir", 0755);
  write_file("dir/a", "a");
  write_file("dir/bb", "bb");
  mkdir("dir/sub", 0755);
  symlink("a", "dir/link");
  mkfifo("dir/fifo", 0644);
  for (int i = 0; i < 20; i++) {
    char name[64];
    snprintf(name, sizeof name, "dir/a-rather-long-file-name-number-%02d", i);
    write_file(name, "");
  }
  char *names[64];
  int fd = open("dir", O_RDONLY | O_DIRECTORY);
  /* a buffer that fits a few records: the old format, with bigger records, must give
     back what does not fit and continue from there */
  int n = list(fd, 1, 100, names);
  show_list("getdents 100", n, names);
  CHECK("lseek(fd, 0, SEEK_SET)", lseek(fd, 0, SEEK_SET));
  n = list(fd, 0, 100, names);
  show_list("getdents64 100", n, names);
  lseek(fd, 0, SEEK_SET);
  n = list(fd, 1, 4096, names);
  show_list("getdents 4096", n, names);
  lseek(fd, 0, SEEK_SET);
  CHECK("getdents tiny", syscall(SYS_getdents, fd, names, 10));
  CHECK("getdents bad buffer", syscall(SYS_getdents, fd, (void *)8, 4096));
  char buf[16];
  SHOW(read(fd, buf, 0));
  SHOW(read(fd, buf, sizeof buf));
  SHOW(write(fd, buf, 1));
  /* dup shares the position */
  lseek(fd, 0, SEEK_SET);
  char big[4096];
  long first = syscall(SYS_getdents64, fd, big, 200);
  int copy = dup(fd);
  long rest = syscall(SYS_getdents64, copy, big, sizeof big);
  FACT(first > 0 && rest > 0);
  CHECK("after the dup's read", syscall(SYS_getdents64, fd, big, sizeof big));
  /* a d_off is a place to seek back to */
  lseek(fd, 0, SEEK_SET);
  syscall(SYS_getdents64, fd, big, sizeof big);
  struct kdirent64 *d0 = (struct kdirent64 *)big;
  char second[300];
  struct kdirent64 *d1 = (struct kdirent64 *)(big + d0->reclen);
  snprintf(second, sizeof second, "%s", d1->name);
  lseek(fd, d0->off, SEEK_SET);
  syscall(SYS_getdents64, fd, big, sizeof big);
  FACT(strcmp(((struct kdirent64 *)big)->name, second) == 0);
  close(copy);
  close(fd);
}

static void test_old_stat(void) {
  SECTION("stat/lstat/fstat syscalls");
  struct stat st;
  write_file("f", "12345");
  symlink("f", "fl");
  CHECK("SYS_stat", syscall(SYS_stat, "fl", &st));
  printf("  size %ld link %d\n", (long)st.st_size, S_ISLNK(st.st_mode));
  CHECK("SYS_lstat", syscall(SYS_lstat, "fl", &st));
  printf("  size %ld link %d\n", (long)st.st_size, S_ISLNK(st.st_mode));
  int fd = open("f", O_RDONLY);
  CHECK("SYS_fstat", syscall(SYS_fstat, fd, &st));
  printf("  size %ld\n", (long)st.st_size);
  CHECK("SYS_stat bad buffer", syscall(SYS_stat, "f", (void *)8));
  CHECK("SYS_stat bad path", syscall(SYS_stat, (void *)8, &st));
  CHECK("newfstatat NULL path", syscall(SYS_newfstatat, fd, NULL, &st, 0));
  struct stat a, b;
  stat("/dev/null", &a);
  FACT(S_ISCHR(a.st_mode) && major(a.st_rdev) == 1 && minor(a.st_rdev) == 3);
  stat(".", &a);
  fstat(fd, &b);
  FACT(a.st_dev == b.st_dev);
  close(fd);
  static char sx[256];
  CHECK("statx sync type both", syscall(SYS_statx, AT_FDCWD, "f", 0x6000, 0x7ff, sx));
  CHECK("statx bad buffer", syscall(SYS_statx, AT_FDCWD, "f", 0, 0x7ff, (void *)8));
}

static void test_statfs(void) {
  SECTION("statfs/fstatfs");
  struct statfs a, b;
  SHOW(statfs(".", &a));
  int fd = open("f", O_RDONLY);
  SHOW(fstatfs(fd, &b));
  FACT(a.f_type == b.f_type && a.f_bsize == b.f_bsize && a.f_bsize > 0);
  FACT(a.f_namelen == 255);
  SHOW(statfs("missing", &a));
  SHOW(fstatfs(-1, &a));
  close(fd);
}

static void test_sysfs(void) {
  SECTION("sysfs (the obsolete call)");
  long count = syscall(SYS_sysfs, 3);
  FACT(count > 0);
  int round_trips = 1;
  char name[256];
  for (long i = 0; i < count; i++) {
    if (syscall(SYS_sysfs, 2, i, name) != 0 || syscall(SYS_sysfs, 1, name) != i)
      round_trips = 0;
  }
  FACT(round_trips);
  FACT(syscall(SYS_sysfs, 1, "proc") >= 0);
  SHOW(syscall(SYS_sysfs, 1, "ext0"));
  SHOW(syscall(SYS_sysfs, 1, (void *)8));
  SHOW(syscall(SYS_sysfs, 2, 100000, name));
  SHOW(syscall(SYS_sysfs, 2, 0, (void *)8));
  SHOW(syscall(SYS_sysfs, 4));
}

static void test_ioctl(void) {
  SECTION("ioctl");
  int fd = open("f", O_RDONLY);
  SHOW(ioctl(fd, FIOCLEX));
  SHOW(fcntl(fd, F_GETFD));
  SHOW(ioctl(fd, FIONCLEX));
  SHOW(fcntl(fd, F_GETFD));
  int on = 1;
  SHOW(ioctl(fd, FIONBIO, &on));
  FACT(fcntl(fd, F_GETFL) & O_NONBLOCK);
  on = 0;
  SHOW(ioctl(fd, FIONBIO, &on));
  FACT(fcntl(fd, F_GETFL) & O_NONBLOCK);
  struct winsize ws;
  SHOW(ioctl(fd, TIOCGWINSZ, &ws));
  SHOW(ioctl(fd, TIOCGPGRP, &on));
  SHOW(ioctl(fd, 0x12345678, &on));
  SHOW(ioctl(fd, FIONREAD, (void *)8));
  int fds[2];
  pipe(fds);
  write(fds[1], "abc", 3);
  int avail = 0;
  SHOW(ioctl(fds[0], FIONREAD, &avail));
  printf("  pipe FIONREAD = %d\n", avail);
  SHOW(ioctl(fds[0], TCGETS, &ws));
  close(fds[0]);
  close(fds[1]);
  close(fd);
}

static void test_flock(void) {
  SECTION("flock");
  int a = open("f", O_RDONLY), b = open("f", O_RDONLY);
  SHOW(flock(a, LOCK_EX));
  SHOW(flock(b, LOCK_SH | LOCK_NB));
  SHOW(flock(a, LOCK_UN));
  SHOW(flock(b, LOCK_SH | LOCK_NB));
  SHOW(flock(a, LOCK_SH | LOCK_NB));
  SHOW(flock(a, 0));
  SHOW(flock(a, 99));
  SHOW(flock(-1, LOCK_EX));
  close(a);
  close(b);
}

static void test_pipes(void) {
  SECTION("sendfile/splice/tee");
  write_file("src", "0123456789");
  int src = open("src", O_RDONLY);
  int p[2], q[2];
  pipe(p);
  pipe(q);
  char buf[64];
  SHOW(sendfile(p[1], src, NULL, 3));
  SHOW(read(p[0], buf, sizeof buf));
  print_quoted("sendfile to pipe", buf, 3);
  loff_t off = 5;
  SHOW(splice(src, &off, p[1], NULL, 4, 0));
  printf("  off = %ld, position = %ld\n", (long)off, (long)lseek(src, 0, SEEK_CUR));
  SHOW(tee(p[0], q[1], 100, 0));
  long n = SHOW(read(q[0], buf, sizeof buf));
  print_quoted("tee", buf, n);
  int dst = open("dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
  loff_t out = 2;
  SHOW(splice(p[0], NULL, dst, &out, 100, 0));
  printf("  out = %ld\n", (long)out);
  show_file("dst");
  SHOW(splice(src, NULL, dst, NULL, 4, 0));
  SHOW(tee(src, q[1], 4, 0));
  SHOW(splice(-1, NULL, p[1], NULL, 4, 0));
  off = -1;
  SHOW(sendfile(p[1], src, &off, 1));
  close(p[0]);
  close(p[1]);
  close(q[0]);
  close(q[1]);
  close(src);
  close(dst);
}

static void test_space(void) {
  SECTION("fallocate/fadvise/sync_file_range/syncfs/sync");
  int fd = open("space", O_CREAT | O_RDWR | O_TRUNC, 0644);
  SHOW(fallocate(fd, 0, 0, 8192));
  struct stat st;
  fstat(fd, &st);
  printf("  size %ld\n", (long)st.st_size);
  SHOW(fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 4096));
  fstat(fd, &st);
  printf("  size %ld\n", (long)st.st_size);
  SHOW(fallocate(fd, 0, -1, 10));
  SHOW(fallocate(-1, 0, 0, 10));
  SHOWE(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
  SHOWE(posix_fadvise(fd, 0, 0, 99));
  SHOW(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
  SHOW(sync_file_range(fd, 0, 0, 0x100));
  SHOW(syncfs(fd));
  SHOW(syncfs(-1));
  sync();
  int p[2];
  pipe(p);
  SHOWE(posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL));
  SHOW(fallocate(p[1], 0, 0, 10));
  close(p[0]);
  close(p[1]);
  close(fd);
}

static void show_times(const char *path) {
  struct stat st;
  stat(path, &st);
  printf("  atime %ld.%09ld mtime %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
         (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void test_times(void) {
  SECTION("utimes/utime/futimesat");
  struct timeval tv[2] = {{1000000000, 5}, {1100000000, 999999}};
  SHOW(utimes("f", tv));
  show_times("f");
  struct utimbuf ub = {1200000000, 1300000000};
  SHOW(utime("f", &ub));
  show_times("f");
  int dfd = open(".", O_RDONLY | O_DIRECTORY);
  SHOW(syscall(SYS_futimesat, dfd, "f", tv));
  show_times("f");
  struct timeval bad[2] = {{0, 1000000}, {0, 0}};
  SHOW(utimes("f", bad));
  SHOW(utimes("missing", tv));
  SHOW(utime("f", NULL));
  struct stat st;
  stat("f", &st);
  FACT(st.st_mtim.tv_sec > 1600000000);
  struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  SHOW(utimensat(AT_FDCWD, "missing", omit, 0));
  SHOW(syscall(SYS_utimensat, dfd, NULL, NULL, AT_SYMLINK_NOFOLLOW));
  SHOW(syscall(SYS_utimensat, AT_FDCWD, NULL, NULL, 0));
  close(dfd);
}

static void test_fd_paths(void) {
  SECTION("readlinkat/linkat/fchownat on descriptors");
  int lfd = open("fl", O_PATH | O_NOFOLLOW);
  char buf[64];
  long n = SHOW(readlinkat(lfd, "", buf, sizeof buf));
  if (n > 0) print_quoted("target", buf, n);
  int ffd = open("f", O_RDONLY);
  SHOW(readlinkat(ffd, "", buf, sizeof buf));
  SHOW(readlinkat(AT_FDCWD, "", buf, sizeof buf));
  SHOW(readlinkat(AT_FDCWD, "fl", buf, -1));
  SHOW(linkat(ffd, "", AT_FDCWD, "f-by-fd", AT_EMPTY_PATH));
  show_file("f-by-fd");
  SHOW(fchownat(ffd, "", -1, -1, AT_EMPTY_PATH));
  SHOW(faccessat(ffd, "", R_OK, AT_EMPTY_PATH));
  struct stat st;
  SHOW(fstatat(lfd, "", &st, AT_EMPTY_PATH));
  printf("  link %d\n", S_ISLNK(st.st_mode));
  close(lfd);
  close(ffd);
  SHOW(syscall(SYS_fchmodat2, AT_FDCWD, "fl", 0600, AT_SYMLINK_NOFOLLOW));
  SHOW(syscall(SYS_fchmodat2, AT_FDCWD, "f", 0600, AT_SYMLINK_NOFOLLOW));
  SHOW(syscall(SYS_fchmodat2, AT_FDCWD, "f", 0600, 0x4));
  stat("f", &st);
  printf("  mode 0%o\n", st.st_mode & 07777);
}

static void test_nodes(void) {
  SECTION("mknodat/chroot/getcwd");
  SHOW(mknodat(AT_FDCWD, "plainnode", 0644, 0));
  struct stat st;
  stat("plainnode", &st);
  printf("  regular %d\n", S_ISREG(st.st_mode));
  SHOW(mknodat(AT_FDCWD, "dirnode", S_IFDIR | 0755, 0));
  SHOW(mknodat(AT_FDCWD, "badnode", 0170000 | 0644, 0));
  SHOW(mknodat(AT_FDCWD, "plainnode", S_IFIFO | 0644, 0));
  SHOW(chroot("missing"));
  SHOW(chroot("f"));
  char small[4];
  CHECK("getcwd small", syscall(SYS_getcwd, small, sizeof small));
  CHECK("getcwd bad buffer", syscall(SYS_getcwd, (void *)8, 4096));
}

int main(void) {
  test_dirs();
  test_old_stat();
  test_statfs();
  test_sysfs();
  test_ioctl();
  test_flock();
  test_pipes();
  test_space();
  test_times();
  test_fd_paths();
  test_nodes();
  return 0;
}
