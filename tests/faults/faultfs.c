/*
 * faultfs: an LD_PRELOAD library that makes chosen file system calls of the
 * real vltava binary fail, to test how it handles storage faults.
 *
 * VLTAVA_FAULTS names a control file, read again whenever it changes. Each
 * line is a rule:
 *
 *     <call> <errno> <path substring> [count]
 *
 * call: fsync (fsync and fdatasync), pwrite (pwrite/pwrite64), pwrite-torn
 * (half of the bytes are written, then the call fails), ftruncate, or write;
 * errno: EIO, ENOSPC or EDQUOT; the rule applies to calls on a file whose
 * path (from /proc/self/fd) contains the substring; count: how many calls
 * fail (default: all). Every injected failure is reported on stderr as
 * "faultfs: <call> <errno> <path>". An empty or missing file injects nothing.
 *
 * Built by tests/integration (gcc -shared -fPIC -o faultfs.so faultfs.c -ldl).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define RULES_MAX 16
#define SUBSTRING_MAX 256

struct rule {
    char call[24];
    int err;
    char substring[SUBSTRING_MAX];
    long remaining; /* -1: unlimited */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rule rules[RULES_MAX];
static int rule_count;
static struct timespec loaded_mtime;
static off_t loaded_size = -1;
static __thread int inside;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_fsync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_fdatasync)(int);

static void resolve(void) {
    if (!real_write) real_write = dlsym(RTLD_NEXT, "write");
    if (!real_pwrite) real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    if (!real_pwrite64) real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    if (!real_fsync) real_fsync = dlsym(RTLD_NEXT, "fsync");
    if (!real_ftruncate) real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    if (!real_ftruncate64) real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    if (!real_fdatasync) real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
}

static int parse_errno(const char *name) {
    if (strcmp(name, "EIO") == 0) return EIO;
    if (strcmp(name, "ENOSPC") == 0) return ENOSPC;
    if (strcmp(name, "EDQUOT") == 0) return EDQUOT;
    return 0;
}

/* Re-reads the control file when its size or mtime changed. Caller holds lock. */
static void reload(void) {
    const char *path = getenv("VLTAVA_FAULTS");
    struct stat st;
    if (!path || stat(path, &st) != 0) {
        rule_count = 0;
        loaded_size = -1;
        return;
    }
    if (st.st_size == loaded_size && st.st_mtim.tv_sec == loaded_mtime.tv_sec &&
        st.st_mtim.tv_nsec == loaded_mtime.tv_nsec)
        return;
    loaded_size = st.st_size;
    loaded_mtime = st.st_mtim;
    rule_count = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (rule_count < RULES_MAX && fgets(line, sizeof line, f)) {
        struct rule r;
        char err[16];
        long count = -1;
        int n = sscanf(line, "%23s %15s %255s %ld", r.call, err, r.substring, &count);
        if (n < 3 || !(r.err = parse_errno(err))) continue;
        r.remaining = n == 4 ? count : -1;
        rules[rule_count++] = r;
    }
    fclose(f);
}

/* Returns the errno to inject for `call` on `fd`, or 0. */
static int injected(const char *call, int fd) {
    if (inside || !getenv("VLTAVA_FAULTS")) return 0;
    inside = 1;
    int err = 0;
    pthread_mutex_lock(&lock);
    reload();
    int wanted = 0;
    for (int i = 0; i < rule_count; i++)
        if (strcmp(rules[i].call, call) == 0 && rules[i].remaining != 0) wanted = 1;
    if (wanted) {
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, path, sizeof path - 1);
        if (len > 0) {
            path[len] = 0;
            for (int i = 0; i < rule_count; i++) {
                struct rule *r = &rules[i];
                if (strcmp(r->call, call) != 0 || r->remaining == 0 || !strstr(path, r->substring)) continue;
                if (r->remaining > 0) r->remaining--;
                err = r->err;
                char msg[4200];
                int m = snprintf(msg, sizeof msg, "faultfs: %s %s %s\n", call, strerror(err), path);
                if (m > 0) real_write(2, msg, (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1);
                break;
            }
        }
    }
    pthread_mutex_unlock(&lock);
    inside = 0;
    return err;
}

ssize_t write(int fd, const void *buf, size_t count) {
    resolve();
    int err = injected("write", fd);
    if (err) {
        errno = err;
        return -1;
    }
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    resolve();
    int err = injected("pwrite-torn", fd);
    if (err) {
        real_pwrite(fd, buf, count / 2, offset);
        errno = err;
        return -1;
    }
    err = injected("pwrite", fd);
    if (err) {
        errno = err;
        return -1;
    }
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    resolve();
    int err = injected("pwrite-torn", fd);
    if (err) {
        real_pwrite64(fd, buf, count / 2, offset);
        errno = err;
        return -1;
    }
    err = injected("pwrite", fd);
    if (err) {
        errno = err;
        return -1;
    }
    return real_pwrite64(fd, buf, count, offset);
}

int fsync(int fd) {
    resolve();
    int err = injected("fsync", fd);
    if (err) {
        errno = err;
        return -1;
    }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    resolve();
    int err = injected("fsync", fd);
    if (err) {
        errno = err;
        return -1;
    }
    return real_fdatasync(fd);
}

int ftruncate(int fd, off_t length) {
    resolve();
    int err = injected("ftruncate", fd);
    if (err) {
        errno = err;
        return -1;
    }
    return real_ftruncate(fd, length);
}

int ftruncate64(int fd, off64_t length) {
    resolve();
    int err = injected("ftruncate", fd);
    if (err) {
        errno = err;
        return -1;
    }
    return real_ftruncate64(fd, length);
}
