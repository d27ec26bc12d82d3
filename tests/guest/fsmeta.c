// fsmeta: stat family, statx, directories, links, renames, permissions, times, paths.
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

/* Our own statx layout and constants: musl's headers have neither. */
struct kstatx_time {
  int64_t tv_sec;
  uint32_t tv_nsec;
  int32_t reserved;
};
struct kstatx {
  uint32_t mask, blksize;
  uint64_t attributes;
  uint32_t nlink, uid, gid;
  uint16_t mode, pad;
  uint64_t ino, size, blocks, attributes_mask;
  struct kstatx_time atime, btime, ctime, mtime;
  uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
  uint64_t spare[14];
};
#define K_STATX_BASIC_STATS 0x7ffu
#define K_STATX_RESERVED 0x80000000u

#define K_RENAME_NOREPLACE 1
#define K_RENAME_EXCHANGE 2
#define K_AT_EACCESS 0x200

struct kdirent64 {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[];
};

static void show_file(const char *path) {
  char buf[256];
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    printf("%s: cannot open: %s\n", path, errname(errno));
    return;
  }
  print_quoted(path, buf, read(fd, buf, sizeof buf));
  close(fd);
}

static const char *type_name(mode_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "dir";
  if (S_ISLNK(mode)) return "symlink";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode)) return "chardev";
  return "other";
}

/* Only what is the same in every run: no inode, device or times. */
static void show_stat(const char *label, const struct stat *st) {
  printf("  %s: %s mode 0%o nlink %ld", label, type_name(st->st_mode), st->st_mode & 07777,
         (long)st->st_nlink);
  if (!S_ISDIR(st->st_mode)) printf(" size %ld", (long)st->st_size);
  printf(" own-uid %d own-gid %d blksize>0 %d\n", st->st_uid == getuid(), st->st_gid == getgid(),
         st->st_blksize > 0);
}

#define STAT(call, st)                            \
  do {                                            \
    if (SHOW(call) == 0) show_stat("stat", &st); \
  } while (0)

static void test_mkdir(void) {
  SECTION("mkdirat");
  umask(022);
  SHOW(mkdirat(AT_FDCWD, "d", 0777));
  SHOW(mkdirat(AT_FDCWD, "d", 0777));
  SHOW(mkdirat(AT_FDCWD, "nope/x", 0777));
  write_file("plain", "plain file\n");
  SHOW(mkdirat(AT_FDCWD, "plain/x", 0777));
  SHOW(mkdirat(AT_FDCWD, "d/sub", 0700));
  int dfd = open("d", O_RDONLY | O_DIRECTORY);
  SHOW(mkdirat(dfd, "sub2", 0755));
  SHOW(mkdirat(-1, "x", 0755));
  close(dfd);
  SHOW(mkfifo("d/fifo", 0600));
  SHOW(mknod("d/node", S_IFREG | 0640, 0));
  write_file("d/f1", "first\n");
  write_file("d/f2", "second file\n");
}

static void test_stat(void) {
  SECTION("stat/lstat/fstat/newfstatat");
  struct stat st;
  STAT(stat("d", &st), st);
  STAT(stat("d/f1", &st), st);
  STAT(stat("d/fifo", &st), st);
  STAT(stat("d/node", &st), st);
  STAT(stat("missing", &st), st);
  STAT(stat("d/f1/x", &st), st);
  STAT(stat("", &st), st);
  SHOW(symlinkat("f1", AT_FDCWD, "d/lnk"));
  STAT(stat("d/lnk", &st), st);
  STAT(lstat("d/lnk", &st), st);
  int dfd = open("d", O_RDONLY | O_DIRECTORY);
  STAT(fstatat(dfd, "lnk", &st, 0), st);
  STAT(fstatat(dfd, "lnk", &st, AT_SYMLINK_NOFOLLOW), st);
  STAT(fstatat(dfd, "f2", &st, 0), st);
  STAT(fstatat(dfd, "", &st, AT_EMPTY_PATH), st);
  STAT(fstatat(dfd, "", &st, 0), st);
  STAT(fstatat(dfd, "f2", &st, 0x40000), st);
  int fd = open("d/f2", O_RDONLY);
  STAT(fstat(fd, &st), st);
  STAT(fstatat(fd, "", &st, AT_EMPTY_PATH), st);
  STAT(fstatat(fd, "x", &st, 0), st);
  STAT(fstat(-1, &st), st);
  STAT(fstat(333, &st), st);
  close(fd);
  close(dfd);
}

static void test_statx(void) {
  SECTION("statx");
  struct kstatx sx;
  struct stat st;
  memset(&sx, 0, sizeof sx);
  SHOW(syscall(SYS_statx, AT_FDCWD, "d/f2", 0, K_STATX_BASIC_STATS, &sx));
  stat("d/f2", &st);
  FACT((sx.mask & K_STATX_BASIC_STATS) == K_STATX_BASIC_STATS);
  printf("  size %lu mode 0%o type %s nlink %u\n", (unsigned long)sx.size, sx.mode & 07777,
         type_name(sx.mode), sx.nlink);
  FACT(sx.ino == st.st_ino);
  FACT(sx.mtime.tv_sec == st.st_mtim.tv_sec && sx.mtime.tv_nsec == st.st_mtim.tv_nsec);
  FACT(sx.uid == getuid() && sx.gid == getgid());
  SHOW(syscall(SYS_statx, AT_FDCWD, "d/lnk", AT_SYMLINK_NOFOLLOW, K_STATX_BASIC_STATS, &sx));
  printf("  type %s size %lu\n", type_name(sx.mode), (unsigned long)sx.size);
  int fd = open("d/f1", O_RDONLY);
  SHOW(syscall(SYS_statx, fd, "", AT_EMPTY_PATH, K_STATX_BASIC_STATS, &sx));
  printf("  size %lu\n", (unsigned long)sx.size);
  close(fd);
  SHOW(syscall(SYS_statx, AT_FDCWD, "missing", 0, K_STATX_BASIC_STATS, &sx));
  SHOW(syscall(SYS_statx, AT_FDCWD, "d/f1", 0, K_STATX_RESERVED, &sx));
  SHOW(syscall(SYS_statx, AT_FDCWD, "d/f1", 0x7000000, K_STATX_BASIC_STATS, &sx));
}

static void test_symlinks(void) {
  SECTION("symlinkat/readlinkat");
  char buf[64];
  memset(buf, 0, sizeof buf);
  SHOW(readlinkat(AT_FDCWD, "d/lnk", buf, sizeof buf));
  printf("  target = \"%s\"\n", buf);
  memset(buf, 0, sizeof buf);
  SHOW(readlink("d/lnk", buf, 1));
  printf("  truncated = \"%s\"\n", buf);
  SHOW(readlinkat(AT_FDCWD, "d/f1", buf, sizeof buf));
  SHOW(readlinkat(AT_FDCWD, "missing", buf, sizeof buf));
  SHOW(syscall(SYS_readlinkat, AT_FDCWD, "d/lnk", buf, 0));
  SHOW(symlinkat("anything", AT_FDCWD, "d/lnk"));
  SHOW(symlinkat("nowhere", AT_FDCWD, "d/dangling"));
  struct stat st;
  STAT(stat("d/dangling", &st), st);
  STAT(lstat("d/dangling", &st), st);
  SHOW(symlink("loop2", "loop1"));
  SHOW(symlink("loop1", "loop2"));
  STAT(stat("loop1", &st), st);
  SHOW(open("loop1", O_RDONLY));
  SHOW(open("d/lnk", O_RDONLY | O_NOFOLLOW));
  SHOW(symlink("d", "dirlink"));
  show_file("dirlink/f1");
  SHOW(symlink("", "empty-target"));
}

static void test_links(void) {
  SECTION("linkat");
  struct stat st;
  SHOW(linkat(AT_FDCWD, "d/f1", AT_FDCWD, "d/hard", 0));
  STAT(stat("d/f1", &st), st);
  show_file("d/hard");
  SHOW(linkat(AT_FDCWD, "d/f1", AT_FDCWD, "d/f2", 0));
  SHOW(linkat(AT_FDCWD, "d", AT_FDCWD, "d2", 0));
  SHOW(linkat(AT_FDCWD, "missing", AT_FDCWD, "x", 0));
  SHOW(linkat(AT_FDCWD, "d/lnk", AT_FDCWD, "d/lnk-link", 0));
  STAT(lstat("d/lnk-link", &st), st);
  SHOW(linkat(AT_FDCWD, "d/lnk", AT_FDCWD, "d/lnk-followed", AT_SYMLINK_FOLLOW));
  STAT(lstat("d/lnk-followed", &st), st);
  SHOW(linkat(AT_FDCWD, "d/f1", AT_FDCWD, "d/bad-flags", 0x1));
}

static void test_rename(void) {
  SECTION("renameat/renameat2");
  write_file("r1", "one\n");
  write_file("r2", "two\n");
  SHOW(renameat(AT_FDCWD, "r1", AT_FDCWD, "r3"));
  SHOW(access("r1", F_OK));
  show_file("r3");
  SHOW(syscall(SYS_renameat2, AT_FDCWD, "r3", AT_FDCWD, "r2", K_RENAME_NOREPLACE));
  SHOW(syscall(SYS_renameat2, AT_FDCWD, "r3", AT_FDCWD, "r4", K_RENAME_NOREPLACE));
  SHOW(syscall(SYS_renameat2, AT_FDCWD, "r4", AT_FDCWD, "r2", K_RENAME_EXCHANGE));
  show_file("r2");
  show_file("r4");
  SHOW(syscall(SYS_renameat2, AT_FDCWD, "r4", AT_FDCWD, "r9", K_RENAME_EXCHANGE));
  SHOW(syscall(SYS_renameat2, AT_FDCWD, "r4", AT_FDCWD, "r2",
               K_RENAME_EXCHANGE | K_RENAME_NOREPLACE));
  SHOW(rename("r4", "r2"));
  show_file("r2");
  SHOW(rename("missing", "x"));
  SHOW(mkdir("rdir", 0755));
  write_file("rdir/content", "x");
  SHOW(mkdir("empty", 0755));
  SHOW(mkdir("e2", 0755));
  SHOW(rename("r2", "rdir"));
  SHOW(rename("rdir", "rdir/inside"));
  SHOW(rename("empty", "rdir"));
  SHOW(rename("rdir", "plain"));
  SHOW(rename("empty", "e2"));
  SHOW(access("empty", F_OK));
  SHOW(rename("e2", "moved"));
  show_file("rdir/content");
  SHOW(rename("r2", "r2"));
}

static void test_unlink(void) {
  SECTION("unlinkat");
  SHOW(unlinkat(AT_FDCWD, "d/hard", 0));
  SHOW(unlinkat(AT_FDCWD, "d/hard", 0));
  SHOW(unlinkat(AT_FDCWD, "d/sub", 0));
  SHOW(unlinkat(AT_FDCWD, "d", AT_REMOVEDIR));
  SHOW(unlinkat(AT_FDCWD, "d/f2", AT_REMOVEDIR));
  SHOW(unlinkat(AT_FDCWD, "d/sub2", AT_REMOVEDIR));
  SHOW(unlinkat(AT_FDCWD, "d/f2", 0x4));
  SHOW(unlinkat(AT_FDCWD, "d/dangling", 0));
  SHOW(rmdir("."));
  SHOW(rmdir("d/sub/.."));
  SHOW(unlink("d/f1/x"));
  SHOW(unlink("d/lnk"));
  SHOW(access("d/f1", F_OK));
}

static void test_access(void) {
  SECTION("faccessat/faccessat2");
  chmod("d/f1", 0644);
  SHOW(faccessat(AT_FDCWD, "d/f1", F_OK, 0));
  SHOW(faccessat(AT_FDCWD, "d/f1", R_OK | W_OK, 0));
  SHOW(faccessat(AT_FDCWD, "d/f1", X_OK, 0)); /* no x bit: refused even for root */
  SHOW(faccessat(AT_FDCWD, "d", X_OK, 0));
  SHOW(faccessat(AT_FDCWD, "missing", F_OK, 0));
  SHOW(access("missing", F_OK));
  SHOW(access("d/f1/x", F_OK));
  SHOW(syscall(SYS_faccessat, AT_FDCWD, "d/f1", 0x100));
  SHOW(syscall(SYS_faccessat2, AT_FDCWD, "d/f1", R_OK, K_AT_EACCESS));
  SHOW(syscall(SYS_faccessat2, AT_FDCWD, "d/f1", X_OK, K_AT_EACCESS));
  SHOW(syscall(SYS_faccessat2, AT_FDCWD, "d/lnk", F_OK, AT_SYMLINK_NOFOLLOW));
  SHOW(syscall(SYS_faccessat2, AT_FDCWD, "d/f1", F_OK, 0x1));
}

static void test_chmod_chown(void) {
  SECTION("fchmodat/fchownat");
  struct stat st;
  SHOW(fchmodat(AT_FDCWD, "d/f1", 0600, 0));
  STAT(stat("d/f1", &st), st);
  SHOW(chmod("d/f1", 04755));
  STAT(stat("d/f1", &st), st);
  int fd = open("d/f1", O_RDONLY);
  SHOW(fchmod(fd, 0640));
  STAT(fstat(fd, &st), st);
  SHOW(chmod("missing", 0644));
  SHOW(fchmod(-1, 0644));
  SHOW(fchownat(AT_FDCWD, "d/f1", getuid(), getgid(), 0));
  SHOW(fchown(fd, -1, -1));
  SHOW(lchown("d/lnk", getuid(), getgid()));
  SHOW(chown("missing", getuid(), getgid()));
  SHOW(fchownat(AT_FDCWD, "d/f1", getuid(), getgid(), 0x1));
  close(fd);
}

static void show_times(const char *path, int flags) {
  struct stat st;
  if (fstatat(AT_FDCWD, path, &st, flags) != 0) {
    printf("  %s: %s\n", path, errname(errno));
    return;
  }
  printf("  %s: atime %ld.%09ld mtime %ld.%09ld\n", path, (long)st.st_atim.tv_sec,
         st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void test_utimens(void) {
  SECTION("utimensat");
  struct timespec ts[2] = {{1000000000, 123456789}, {1234567890, 987654321}};
  SHOW(utimensat(AT_FDCWD, "d/f1", ts, 0));
  show_times("d/f1", 0);
  struct timespec omit_atime[2] = {{0, UTIME_OMIT}, {1500000000, 5}};
  SHOW(utimensat(AT_FDCWD, "d/f1", omit_atime, 0));
  show_times("d/f1", 0);
  struct timespec now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  SHOW(utimensat(AT_FDCWD, "d/f1", now, 0));
  struct stat st;
  stat("d/f1", &st);
  FACT(st.st_mtim.tv_sec > 1600000000);
  SHOW(utimensat(AT_FDCWD, "d/lnk", ts, AT_SYMLINK_NOFOLLOW));
  show_times("d/lnk", AT_SYMLINK_NOFOLLOW);
  int fd = open("d/f2", O_RDONLY);
  SHOW(futimens(fd, ts));
  show_times("d/f2", 0);
  close(fd);
  struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
  SHOW(utimensat(AT_FDCWD, "d/f1", bad, 0));
  SHOW(utimensat(AT_FDCWD, "missing", ts, 0));
  SHOW(utimensat(AT_FDCWD, "d/f1", ts, 0x1));
}

static const char *dtype_name(unsigned char t) {
  switch (t) {
    case DT_REG: return "file";
    case DT_DIR: return "dir";
    case DT_LNK: return "symlink";
    case DT_FIFO: return "fifo";
    case DT_UNKNOWN: return "unknown";
  }
  return "other";
}

static void test_getdents(void) {
  SECTION("getdents64");
  int fd = SHOW(open("d", O_RDONLY | O_DIRECTORY));
  char buf[512], *names[64];
  int count = 0;
  long n;
  /* a small buffer forces several calls */
  while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long pos = 0; pos < n;) {
      struct kdirent64 *d = (struct kdirent64 *)(buf + pos);
      char *entry = malloc(300);
      snprintf(entry, 300, "%s %s", d->name, dtype_name(d->type));
      names[count++] = entry;
      pos += d->reclen;
    }
  }
  CHECK("last getdents64", n);
  qsort(names, count, sizeof *names, compare_strings);
  for (int i = 0; i < count; i++) printf("  %s\n", names[i]);
  CHECK("getdents64 at end", syscall(SYS_getdents64, fd, buf, sizeof buf));
  CHECK("getdents64 tiny buffer", (lseek(fd, 0, SEEK_SET), syscall(SYS_getdents64, fd, buf, 8)));
  close(fd);
  fd = open("plain", O_RDONLY);
  CHECK("getdents64 on a file", syscall(SYS_getdents64, fd, buf, sizeof buf));
  close(fd);
  CHECK("getdents64 bad fd", syscall(SYS_getdents64, -1, buf, sizeof buf));

  DIR *dir = opendir("d");
  count = 0;
  for (struct dirent *e; (e = readdir(dir));) names[count++] = strdup(e->d_name);
  closedir(dir);
  qsort(names, count, sizeof *names, compare_strings);
  printf("readdir:");
  for (int i = 0; i < count; i++) printf(" %s", names[i]);
  printf("\n");
  SHOWP(opendir("missing"), NULL);
}

static void test_cwd(void) {
  SECTION("getcwd/chdir/fchdir");
  char start[PATH_MAX], now[PATH_MAX];
  SHOWP(getcwd(start, sizeof start), NULL);
  FACT(start[0] == '/');
  long len = strlen(start);
  FACT(syscall(SYS_getcwd, now, sizeof now) == len + 1);
  SHOW(chdir("d"));
  getcwd(now, sizeof now);
  FACT(strlen(now) == len + 2 && strcmp(now + len, "/d") == 0);
  show_file("f1");
  SHOW(chdir(".."));
  getcwd(now, sizeof now);
  FACT(strcmp(now, start) == 0);
  int dfd = open("d", O_RDONLY | O_DIRECTORY);
  SHOW(fchdir(dfd));
  getcwd(now, sizeof now);
  FACT(strcmp(now + len, "/d") == 0);
  SHOW(chdir(start));
  int fd = open("plain", O_RDONLY);
  SHOW(fchdir(fd));
  SHOW(fchdir(-1));
  SHOW(chdir("plain"));
  SHOW(chdir("missing"));
  SHOW(chdir(""));
  SHOWP(getcwd(now, 1), NULL);
  CHECK("syscall(SYS_getcwd, now, 1)", syscall(SYS_getcwd, now, 1));
  close(fd);
  close(dfd);
}

static void test_umask(void) {
  SECTION("umask");
  printf("umask(027) = 0%o\n", umask(027));
  printf("umask(027) = 0%o\n", umask(027));
  struct stat st;
  mkdir("masked", 0777);
  STAT(stat("masked", &st), st);
  int fd = open("masked-file", O_CREAT | O_WRONLY, 0666);
  STAT(fstat(fd, &st), st);
  close(fd);
  printf("umask(022) = 0%o\n", umask(022));
}

static void test_long_names(void) {
  SECTION("ENAMETOOLONG");
  char name[400], path[5000];
  memset(name, 'n', 300);
  name[300] = 0;
  SHOW(open(name, O_RDONLY));
  SHOW(mkdir(name, 0755));
  struct stat st;
  SHOW(stat(name, &st));
  for (int i = 0; i < 2400; i++) memcpy(path + 2 * i, "a/", 2);
  path[4800] = 0;
  SHOW(open(path, O_RDONLY));
  SHOW(access(path, F_OK));
  memset(name, 'n', 255);
  name[255] = 0;
  int fd = SHOW(open(name, O_CREAT | O_WRONLY, 0644)); /* 255 is fine */
  close(fd);
  SHOW(unlink(name));
}

int main(void) {
  test_mkdir();
  test_stat();
  test_statx();
  test_symlinks();
  test_links();
  test_rename();
  test_access();
  test_chmod_chown();
  test_utimens();
  test_getdents();
  test_cwd();
  test_umask();
  test_long_names();
  test_unlink();
  return 0;
}
