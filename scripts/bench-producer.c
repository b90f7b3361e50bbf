/* Helper for scripts/bench-monitor (built statically, runs inside the
 * benchmark container and on the host).
 *
 *   produce LINE SIZE       write the bytes of `yes LINE | head -c SIZE` to
 *                           fd 1, 1 MiB per write, so the monitor under test
 *                           is the bottleneck and not a two-process pipeline
 *   produce -i LINE SIZE    the same byte sequence cut into blocks of whole
 *                           lines (at most 64 KiB each), written alternately
 *                           to fd 1 and fd 2 (block 0 to stdout, 1 to stderr,
 *                           2 to stdout, ...); the last block may be short
 *   produce -w BYTES LINE SIZE
 *                           the same byte sequence written BYTES per write()
 *                           (100: one line per write when LINE is 99 bytes;
 *                           4096: a stdio-buffered writer), cutting lines
 *                           wherever a block ends
 *   produce -t COUNT MS     COUNT lines "t=<CLOCK_REALTIME s.ns>", one
 *                           write() each, one every MS milliseconds: the
 *                           log's record timestamp minus the line's is the
 *                           monitor's write-to-record delay
 *   produce -d LOG STREAM   decode a k8s-file log: write the reconstructed
 *                           bytes of STREAM (stdout|stderr) to fd 1 (F records
 *                           keep their newline, P records lose the newline the
 *                           monitor added); "records=N partials=M" goes to fd 2.
 *                           A line that is not a well-formed record
 *                           (`<RFC3339Nano with numeric offset> <stream> <P|F> `)
 *                           is an error: exit status 3, its line number on fd 2.
 *   produce -s FILE PERMILLE [PARK_US]
 *                           the pipeline shape's floor consumer (on the host,
 *                           no monitor): read fd 0 1 MiB at a time (pipe
 *                           enlarged to 1 MiB, as the monitor's) and append
 *                           each chunk to FILE with one writev, followed by
 *                           its first PERMILLE/1000 bytes again, so FILE grows
 *                           as a k8s-file log of the same lines does; at
 *                           EOF one fsync (conmon and ours fsync the log
 *                           before the exit file that ends a timed run). No
 *                           timestamps, no newline search: less work than
 *                           any monitor's. PARK_US: after a read of less
 *                           than half the pipe, sleep that long before the
 *                           next one (the batching of small writes, as the
 *                           monitor's `--log-coalesce-ms` parks a stream).
 *   produce -s FILE PERMILLE PARK_US STRIDE OUTCAP
 *                           the same, but the records are copied as the
 *                           cheapest k8s-file formatter would: every STRIDE
 *                           input bytes become a constant PERMILLE/1000 *
 *                           STRIDE-byte prefix and those bytes, copied into an
 *                           OUTCAP-byte buffer that is written when full and
 *                           at the end of each read. Still no newline search
 *                           and no timestamps: the floor of a monitor that
 *                           must copy its records once in user space.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A buffer of whole lines, `lines` copies of LINE + '\n'. */
static char *line_block(const char *line, size_t lines, size_t *len_out) {
    size_t len = strlen(line) + 1;
    char *buf = malloc(lines * len);
    if (!buf)
        exit(1);
    for (size_t i = 0; i < lines; i++) {
        memcpy(buf + i * len, line, len - 1);
        buf[i * len + len - 1] = '\n';
    }
    *len_out = lines * len;
    return buf;
}

static int produce(const char *line, unsigned long long left, int interleave) {
    size_t len = strlen(line) + 1;
    size_t cap = interleave ? (64 << 10) : (1 << 20);
    size_t lines = cap / len ? cap / len : 1;
    size_t full;
    char *buf = line_block(line, lines, &full);
    int fd = 1;
    while (left > 0) {
        size_t n = left < full ? (size_t)left : full;
        if (write_all(fd, buf, n) < 0)
            return 1;
        left -= n;
        if (interleave)
            fd = fd == 1 ? 2 : 1;
    }
    return 0;
}

/* Blocks of exactly `wsize` bytes of the endless repetition of LINE + '\n'. */
static int produce_blocks(const char *line, unsigned long long left, size_t wsize) {
    size_t len = strlen(line) + 1;
    size_t lines = (wsize + len - 1) / len + 1;
    size_t full;
    char *buf = line_block(line, lines, &full);
    size_t off = 0; /* position within the line pattern */
    while (left > 0) {
        size_t n = left < wsize ? (size_t)left : wsize;
        if (write_all(1, buf + off, n) < 0)
            return 1;
        off = (off + n) % len;
        left -= n;
    }
    return 0;
}

/* COUNT timestamped lines, one every `ms` milliseconds (absolute schedule). */
static int produce_timed(unsigned long count, long ms) {
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (unsigned long i = 0; i < count; i++) {
        next.tv_nsec += ms * 1000000L;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        char buf[64];
        int n = snprintf(buf, sizeof buf, "t=%lld.%09ld\n", (long long)now.tv_sec, now.tv_nsec);
        if (write_all(1, buf, (size_t)n) < 0)
            return 1;
    }
    return 0;
}

/* ---- k8s-file decoding */

#define TS_LEN 35 /* 2006-01-02T15:04:05.000000000+07:00 */
#define PREFIX_LEN (TS_LEN + 10) /* + " stdout F " */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int valid_ts(const char *p) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddddd?dd:dd";
    for (int i = 0; i < TS_LEN; i++) {
        char s = shape[i], c = p[i];
        if (s == 'd') {
            if (!is_digit(c))
                return 0;
        } else if (s == '?') {
            if (c != '+' && c != '-')
                return 0;
        } else if (c != s) {
            return 0;
        }
    }
    return 1;
}

static char outbuf[1 << 20];
static size_t outlen;

static void out(const char *p, size_t n) {
    if (outlen + n > sizeof outbuf) {
        if (write_all(1, outbuf, outlen) < 0)
            exit(1);
        outlen = 0;
        if (n > sizeof outbuf) {
            if (write_all(1, p, n) < 0)
                exit(1);
            return;
        }
    }
    memcpy(outbuf + outlen, p, n);
    outlen += n;
}

static int decode(const char *path, const char *stream) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        return 2;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        perror(path);
        return 2;
    }
    size_t size = (size_t)st.st_size;
    const char *data = "";
    if (size > 0) {
        data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data == MAP_FAILED) {
            perror("mmap");
            return 2;
        }
        madvise((void *)data, size, MADV_SEQUENTIAL);
    }
    char want[16];
    snprintf(want, sizeof want, " %.6s ", stream);
    unsigned long long records = 0, partials = 0, lineno = 0;
    size_t pos = 0;
    while (pos < size) {
        lineno++;
        const char *rec = data + pos;
        const char *nl = memchr(rec, '\n', size - pos);
        if (!nl) {
            fprintf(stderr, "line %llu: last record has no newline\n", lineno);
            return 3;
        }
        size_t reclen = (size_t)(nl - rec);
        const char *tag = rec + TS_LEN;
        if (reclen < PREFIX_LEN || !valid_ts(rec) ||
            (memcmp(tag, " stdout ", 8) != 0 && memcmp(tag, " stderr ", 8) != 0) ||
            (tag[8] != 'P' && tag[8] != 'F') || tag[9] != ' ') {
            fprintf(stderr, "line %llu: malformed record: %.*s\n", lineno,
                    (int)(reclen < 120 ? reclen : 120), rec);
            return 3;
        }
        if (memcmp(tag, want, 8) == 0) {
            records++;
            if (tag[8] == 'P') {
                partials++;
                out(rec + PREFIX_LEN, reclen - PREFIX_LEN);
            } else {
                out(rec + PREFIX_LEN, reclen - PREFIX_LEN + 1);
            }
        }
        pos += reclen + 1;
    }
    if (write_all(1, outbuf, outlen) < 0)
        return 1;
    fprintf(stderr, "records=%llu partials=%llu\n", records, partials);
    return 0;
}

/* Appends `n` bytes from `p` to `fd` in full. */
static int append(int fd, const char *p, size_t n) {
    return write_all(fd, p, n) < 0 ? (perror("write"), -1) : 0;
}

/* The copying floor's records: each `stride` bytes of `in` after a
 * `prefix`-byte constant, through `out` (`outcap` bytes). */
static int append_copied(int fd, const char *in, size_t n, size_t stride, size_t prefix,
                         char *out, size_t outcap) {
    static const char pad[256] = "2026-12-04T00:00:00.000000000+00:00 stdout F ";
    size_t used = 0;
    while (n > 0) {
        size_t take = n < stride ? n : stride;
        if (used + prefix + take > outcap) {
            if (append(fd, out, used) < 0)
                return -1;
            used = 0;
        }
        memcpy(out + used, pad, prefix);
        memcpy(out + used + prefix, in, take);
        used += prefix + take;
        in += take;
        n -= take;
    }
    return used ? append(fd, out, used) : 0;
}

/* The bare floor's append: the chunk, then its first PERMILLE/1000 bytes
 * again, with one writev; a short append is finished byte-exactly with plain
 * writes. */
static int append_padded(int fd, const char *buf, size_t n, unsigned long permille) {
    size_t extra = n * permille / 1000;
    if (extra > n)
        extra = n;
    struct iovec iov[2] = {{(void *)buf, n}, {(void *)buf, extra}};
    size_t want = n + extra;
    ssize_t w = writev(fd, iov, 2);
    if (w >= 0 && (size_t)w == want)
        return 0;
    size_t done = w < 0 ? 0 : (size_t)w;
    if (w < 0 && errno != EINTR) {
        perror("writev");
        return -1;
    }
    if (done < n) {
        if (write_all(fd, buf + done, n - done) < 0)
            return -1;
        done = n;
    }
    return write_all(fd, buf + (done - n), want - done);
}

static int sink(const char *path, unsigned long permille, unsigned long park_us,
                size_t stride, size_t outcap) {
    static char buf[1 << 20];
    char *out = NULL;
    size_t prefix = stride * permille / 1000;
    if (stride > 0) {
        if (prefix > 256 || outcap < prefix + stride) {
            fprintf(stderr, "-s: a %zu-byte prefix and a %zu-byte stride do not fit "
                    "(prefix at most 256, OUTCAP at least both)\n", prefix, stride);
            return 2;
        }
        if (!(out = malloc(outcap))) {
            perror("malloc");
            return 1;
        }
    }
    (void)fcntl(0, F_SETPIPE_SZ, (int)sizeof buf);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        return 2;
    }
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("read");
            return 1;
        }
        int appended = out ? append_copied(fd, buf, (size_t)n, stride, prefix, out, outcap)
                           : append_padded(fd, buf, (size_t)n, permille);
        if (appended < 0)
            return 1;
        if (park_us > 0 && (size_t)n < sizeof buf / 2) {
            struct timespec park = {(time_t)(park_us / 1000000), (long)(park_us % 1000000) * 1000};
            nanosleep(&park, NULL);
        }
    }
    free(out);
    if (fsync(fd) < 0) {
        perror("fsync");
        return 1;
    }
    return close(fd) < 0 ? 1 : 0;
}

static int usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [-i] LINE SIZE | %s -w BYTES LINE SIZE | %s -t COUNT MS | "
            "%s -d LOG stdout|stderr | %s -s FILE PERMILLE [PARK_US [STRIDE OUTCAP]]\n",
            argv0, argv0, argv0, argv0, argv0);
    return 2;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "-d") == 0) {
        if (strcmp(argv[3], "stdout") != 0 && strcmp(argv[3], "stderr") != 0)
            return usage(argv[0]);
        return decode(argv[2], argv[3]);
    }
    if (argc == 5 && strcmp(argv[1], "-w") == 0) {
        unsigned long w = strtoul(argv[2], NULL, 10);
        if (w == 0)
            return usage(argv[0]);
        return produce_blocks(argv[3], strtoull(argv[4], NULL, 10), w);
    }
    if ((argc == 4 || argc == 5 || argc == 7) && strcmp(argv[1], "-s") == 0)
        return sink(argv[2], strtoul(argv[3], NULL, 10),
                    argc >= 5 ? strtoul(argv[4], NULL, 10) : 0,
                    argc == 7 ? strtoul(argv[5], NULL, 10) : 0,
                    argc == 7 ? strtoul(argv[6], NULL, 10) : 0);
    if (argc == 4 && strcmp(argv[1], "-t") == 0)
        return produce_timed(strtoul(argv[2], NULL, 10), strtol(argv[3], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "-i") == 0)
        return produce(argv[2], strtoull(argv[3], NULL, 10), 1);
    if (argc == 3)
        return produce(argv[1], strtoull(argv[2], NULL, 10), 0);
    return usage(argv[0]);
}
