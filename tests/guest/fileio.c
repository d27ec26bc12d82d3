// fileio: open/read/write and their variants, offsets, fd table operations, fcntl.
#include "check.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>

static void show_file(const char *path) {
  char buf[256];
  int fd = open(path, O_RDONLY);
  long n = read(fd, buf, sizeof buf);
  close(fd);
  print_quoted(path, buf, n);
}

static void show_mode(const char *path) {
  struct stat st;
  stat(path, &st);
  printf("%s: mode 0%o size %ld\n", path, st.st_mode & 07777, (long)st.st_size);
}

static void show_offset(int fd) { printf("  offset = %ld\n", (long)lseek(fd, 0, SEEK_CUR)); }

static void test_open(void) {
  SECTION("openat");
  umask(022);
  SHOW(openat(AT_FDCWD, "missing", O_RDONLY));
  SHOW(openat(AT_FDCWD, "", O_RDONLY));
  int fd = SHOW(openat(AT_FDCWD, "a.txt", O_CREAT | O_RDWR, 0666));
  show_mode("a.txt");
  SHOW(write(fd, "hello world\n", 12));
  SHOW(close(fd));
  umask(077);
  fd = SHOW(open("b.txt", O_CREAT | O_WRONLY, 0666));
  SHOW(close(fd));
  show_mode("b.txt");
  umask(022);
  SHOW(openat(AT_FDCWD, "a.txt", O_CREAT | O_EXCL | O_WRONLY, 0644));
  SHOW(openat(AT_FDCWD, "a.txt", O_RDONLY | O_DIRECTORY));
  SHOW(openat(AT_FDCWD, "a.txt/x", O_RDONLY));
  SHOW(openat(AT_FDCWD, ".", O_WRONLY));
  SHOW(openat(AT_FDCWD, "nodir/x", O_CREAT | O_WRONLY, 0644));
  SHOW(openat(999, "a.txt", O_RDONLY));
  SHOW(openat(-5, "a.txt", O_RDONLY));

  SHOW(mkdir("d", 0755));
  int dfd = SHOW(open("d", O_RDONLY | O_DIRECTORY));
  fd = SHOW(openat(dfd, "inner", O_CREAT | O_WRONLY, 0600));
  SHOW(write(fd, "inside", 6));
  SHOW(close(fd));
  show_file("d/inner");
  int file = SHOW(open("a.txt", O_RDONLY));
  SHOW(openat(file, "x", O_RDONLY));
  int devnull = openat(file, "/dev/null", O_RDONLY); /* absolute paths ignore dirfd */
  FACT(devnull >= 0);
  close(devnull);
  close(file);
  close(dfd);

  fd = SHOW(open("a.txt", O_WRONLY | O_TRUNC));
  show_mode("a.txt");
  close(fd);
  fd = SHOW(open("a.txt", O_RDONLY | O_CLOEXEC));
  SHOW(fcntl(fd, F_GETFD));
  close(fd);
}

static void test_read_write(void) {
  SECTION("read/write");
  write_file("rw.txt", "0123456789");
  int rd = SHOW(open("rw.txt", O_RDONLY));
  int wr = SHOW(open("rw.txt", O_WRONLY));
  char buf[64];
  SHOW(read(rd, buf, 4));
  print_quoted("buf", buf, 4);
  SHOW(read(rd, buf, 0));
  SHOW(read(rd, buf, sizeof buf));
  SHOW(read(rd, buf, sizeof buf)); /* EOF */
  SHOW(write(rd, "x", 1));
  SHOW(read(wr, buf, 1));
  SHOW(write(wr, "AB", 2));
  show_file("rw.txt");
  SHOW(lseek(rd, 0, SEEK_SET));
  SHOW(read(rd, (void *)8, 4));
  SHOW(write(wr, (void *)8, 4));
  SHOW(read(12345, buf, 1));
  SHOW(write(-1, buf, 1));
  close(rd);
  close(wr);
}

static void test_lseek(void) {
  SECTION("lseek");
  write_file("seek.txt", "abcdefghij");
  int fd = open("seek.txt", O_RDWR);
  SHOW(lseek(fd, 5, SEEK_SET));
  SHOW(lseek(fd, -2, SEEK_CUR));
  SHOW(lseek(fd, 0, SEEK_END));
  SHOW(lseek(fd, -3, SEEK_END));
  SHOW(lseek(fd, -1, SEEK_SET));
  SHOW(lseek(fd, 0, 42));
  SHOW(lseek(fd, 20, SEEK_SET));
  SHOW(write(fd, "Z", 1)); /* leaves a hole */
  char buf[32];
  SHOW(pread(fd, buf, sizeof buf, 0));
  print_quoted("with hole", buf, 21);
  int fds[2];
  pipe(fds);
  SHOW(lseek(fds[0], 0, SEEK_CUR));
  SHOW(lseek(999, 0, SEEK_SET));
  close(fds[0]);
  close(fds[1]);
  close(fd);
}

static void test_positional(void) {
  SECTION("pread/pwrite/readv/writev/preadv/pwritev");
  write_file("p.txt", "0123456789");
  int fd = open("p.txt", O_RDWR);
  char buf[32] = {0};
  SHOW(lseek(fd, 2, SEEK_SET));
  SHOW(pread(fd, buf, 3, 5));
  print_quoted("pread", buf, 3);
  show_offset(fd);
  SHOW(pwrite(fd, "XY", 2, 8));
  show_offset(fd);
  SHOW(pread(fd, buf, 4, 100));
  SHOW(pread(fd, buf, 4, -1));
  SHOW(pwrite(fd, "x", 1, -1));

  char a[3], b[4], c[10];
  struct iovec in[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
  SHOW(lseek(fd, 0, SEEK_SET));
  SHOW(readv(fd, in, 3));
  print_quoted("iov0", a, 3);
  print_quoted("iov1", b, 4);
  print_quoted("iov2", c, 3);
  SHOW(readv(fd, in, 0));
  SHOW(readv(fd, in, -1));
  struct iovec out[3] = {{"one ", 4}, {"", 0}, {"two\n", 4}};
  SHOW(writev(fd, out, 3));
  show_offset(fd);
  SHOW(pwritev(fd, out, 3, 1));
  show_offset(fd);
  memset(a, 0, 3);
  memset(b, 0, 4);
  SHOW(preadv(fd, in, 2, 3));
  print_quoted("preadv0", a, 3);
  print_quoted("preadv1", b, 4);
  show_file("p.txt");
  int fds[2];
  pipe(fds);
  SHOW(pread(fds[0], buf, 1, 0));
  SHOW(pwrite(fds[1], buf, 1, 0));
  close(fds[0]);
  close(fds[1]);
  close(fd);
}

static void test_append(void) {
  SECTION("O_APPEND");
  write_file("app.txt", "start\n");
  int fd = SHOW(open("app.txt", O_WRONLY | O_APPEND));
  SHOW(lseek(fd, 0, SEEK_SET));
  SHOW(write(fd, "end\n", 4));
  show_offset(fd);
  SHOW(pwrite(fd, "pw\n", 3, 0)); /* Linux appends even with an offset */
  show_file("app.txt");
  close(fd);
}

static void test_dup(void) {
  SECTION("close/dup/dup2/dup3");
  write_file("dup.txt", "abcdef");
  int fd = SHOW(open("dup.txt", O_RDONLY));
  int copy = SHOW(dup(fd));
  SHOW(lseek(fd, 4, SEEK_SET));
  show_offset(copy); /* shared open file description */
  SHOW(dup2(fd, fd));
  SHOW(dup2(fd, 50));
  SHOW(fcntl(50, F_GETFD));
  SHOW(dup2(999, 51));
  SHOW(dup2(fd, -1));
  SHOW(syscall(SYS_dup3, fd, fd, 0));
  SHOW(syscall(SYS_dup3, fd, 51, O_CLOEXEC));
  SHOW(fcntl(51, F_GETFD));
  SHOW(syscall(SYS_dup3, fd, 52, 0x12345));
  SHOW(dup(-1));
  SHOW(close(copy));
  SHOW(close(copy));
  SHOW(close(-1));
  SHOW(close(50));
  SHOW(close(51));
  copy = SHOW(dup(fd)); /* the lowest free number again */
  SHOW(close(copy));
  SHOW(close(fd));
}

/* Descriptors opened until EMFILE (then closed again); *last: the highest one. */
static int fill_table(int *last) {
  int n = 0, fd;
  *last = -1;
  while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
    n++;
    *last = fd;
  }
  printf("  stopped by %s\n", errname(errno));
  for (int i = 3; i <= *last; i++) close(i);
  return n;
}

static void test_fd_limits(void) {
  SECTION("RLIMIT_NOFILE: EMFILE, EBADF, EINVAL at the limit");
  struct rlimit orig, low;
  getrlimit(RLIMIT_NOFILE, &orig);
  low = orig;
  low.rlim_cur = 64;
  SHOW(setrlimit(RLIMIT_NOFILE, &low));
  SHOW(getdtablesize());
  int last;
  SHOW(fill_table(&last) + 3);
  SHOW(last);
  SHOW(dup2(0, 64));
  SHOW(dup2(0, 20000));
  SHOW(dup2(0, 63));
  SHOW(syscall(SYS_dup3, 0, 64, 0));
  SHOW(fcntl(0, F_DUPFD, 64));
  SHOW(fcntl(0, F_DUPFD, 63));
  SHOW(close(63));
  for (int i = 3; i < 63; i++) dup2(0, i);
  int p[2];
  SHOW(pipe(p));            /* one free slot: a pipe needs two */
  SHOW(dup(0));
  SHOW(dup(0));
  for (int i = 3; i < 64; i++) close(i);
  SHOW(setrlimit(RLIMIT_NOFILE, &orig));
  /* The whole inherited limit: blinkroot's own descriptors must not use it up. */
  if (orig.rlim_cur <= 65536) {
    int n = fill_table(&last);
    FACT(n + 3 == (int)orig.rlim_cur);
    FACT(last + 1 == (int)orig.rlim_cur);
  }
}

static void show_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  printf("  accmode=%s append=%d nonblock=%d\n",
         (fl & O_ACCMODE) == O_RDONLY   ? "O_RDONLY"
         : (fl & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                        : "O_RDWR",
         !!(fl & O_APPEND), !!(fl & O_NONBLOCK));
}

static void test_fcntl(void) {
  SECTION("fcntl");
  int fd = SHOW(open("f.txt", O_CREAT | O_RDWR, 0644));
  SHOW(fcntl(fd, F_GETFD));
  SHOW(fcntl(fd, F_SETFD, FD_CLOEXEC));
  SHOW(fcntl(fd, F_GETFD));
  SHOW(fcntl(fd, F_SETFD, 0));
  SHOW(fcntl(fd, F_GETFD));
  show_flags(fd);
  SHOW(fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK));
  show_flags(fd);
  SHOW(fcntl(fd, F_SETFL, O_WRONLY)); /* the access mode cannot change */
  show_flags(fd);
  int wr = open("f.txt", O_WRONLY);
  show_flags(wr);
  close(wr);
  SHOW(fcntl(fd, F_DUPFD, 10));
  SHOW(fcntl(fd, F_DUPFD, 10));
  SHOW(fcntl(10, F_GETFD));
  SHOW(fcntl(fd, F_DUPFD_CLOEXEC, 20));
  SHOW(fcntl(20, F_GETFD));
  SHOW(fcntl(fd, F_DUPFD, -1));
  SHOW(fcntl(-1, F_GETFD));
  SHOW(fcntl(77, F_GETFL));
  SHOW(fcntl(fd, 12345));
  close(10);
  close(11);
  close(20);
  close(fd);
}

static void test_truncate(void) {
  SECTION("truncate/ftruncate");
  write_file("t.txt", "0123456789");
  int fd = open("t.txt", O_RDWR);
  SHOW(ftruncate(fd, 16));
  show_mode("t.txt");
  char buf[16];
  SHOW(pread(fd, buf, 16, 0));
  print_quoted("grown", buf, 16);
  SHOW(ftruncate(fd, 3));
  show_file("t.txt");
  SHOW(ftruncate(fd, -1));
  SHOW(truncate("t.txt", 5));
  show_mode("t.txt");
  SHOW(truncate("missing", 0));
  SHOW(truncate("d", 0));
  SHOW(truncate("t.txt", -1));
  int rd = open("t.txt", O_RDONLY);
  SHOW(ftruncate(rd, 0));
  close(rd);
  SHOW(ftruncate(-1, 0));
  SECTION("fsync/fdatasync");
  SHOW(fsync(fd));
  SHOW(fdatasync(fd));
  SHOW(fsync(-1));
  SHOW(fdatasync(4242));
  int fds[2];
  pipe(fds);
  SHOW(fsync(fds[0]));
  close(fds[0]);
  close(fds[1]);
  close(fd);
}

static void test_copying(void) {
  SECTION("sendfile/copy_file_range");
  write_file("src.txt", "0123456789");
  int src = open("src.txt", O_RDONLY);
  int dst = open("dst.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
  SHOW(sendfile(dst, src, NULL, 4));
  show_offset(src);
  off_t off = 6;
  SHOW(sendfile(dst, src, &off, 100));
  printf("  off = %ld\n", (long)off);
  show_offset(src);
  SHOW(sendfile(dst, -1, NULL, 4));
  SHOW(sendfile(src, dst, NULL, 4));
  show_file("dst.txt");

  off_t in = 1, out = 2;
  SHOW(syscall(SYS_copy_file_range, src, &in, dst, &out, 5, 0));
  printf("  in = %ld out = %ld\n", (long)in, (long)out);
  SHOW(syscall(SYS_copy_file_range, src, &in, dst, &out, 5, 1));
  SHOW(syscall(SYS_copy_file_range, src, NULL, -1, NULL, 5, 0));
  show_file("dst.txt");
  close(src);
  close(dst);
}

static void test_ioctl(void) {
  SECTION("ioctl");
  write_file("io.txt", "0123456789");
  int fd = open("io.txt", O_RDONLY);
  lseek(fd, 3, SEEK_SET);
  int avail = -1;
  SHOW(ioctl(fd, FIONREAD, &avail));
  printf("  FIONREAD = %d\n", avail);
  struct termios t;
  SHOW(ioctl(fd, TCGETS, &t));
  SHOW(isatty(fd));
  printf("  errno = %s\n", errname(errno));
  SHOW(ioctl(-1, FIONREAD, &avail));
  close(fd);
}

int main(void) {
  test_open();
  test_read_write();
  test_lseek();
  test_positional();
  test_append();
  test_dup();
  test_fd_limits();
  test_fcntl();
  test_truncate();
  test_copying();
  test_ioctl();
  return 0;
}
