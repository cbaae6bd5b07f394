/* Differential-test driver for zlib (crates/cli/tests/differential.rs).
 *
 * Prints "ready", then for each line "step" on standard input computes one
 * round and prints one line of results: "round N ...". A round depends only
 * on N and the library's code (no state carries from round to round), so a
 * patched process and a program freshly built from the edited sources print
 * the same line for the same round exactly when they run the same code.
 * Results are hashed with the driver's own FNV-1a, not with zlib. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zlib.h"

#define CAP (96 * 1024)
static unsigned char data[CAP], packed[2 * CAP], unpacked[CAP], bad[2 * CAP];
static unsigned long long rng;

static unsigned rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 16);
}

static unsigned long fnv(const unsigned char *p, size_t n) {
    unsigned long h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h & 0xffffffffu;
}

/* Text-like data with repeats, runs and noise; its size varies by round. */
static size_t make_data(unsigned round) {
    static const char *words[] = {"live", "patch", "relive", "zlib", "deflate", "inflate", "the", "of",
                                  "and", "process", "symbol", "function", "\n", ", ", "0123456789"};
    rng = 0x9e3779b97f4a7c15ull ^ (round * 0x100000001b3ull + 1);
    size_t n = 4096 + (size_t)(rnd() % (CAP - 8192)), i = 0;
    while (i < n) {
        unsigned kind = rnd() % 16;
        if (kind < 11) {
            const char *w = words[rnd() % (sizeof words / sizeof *words)];
            while (*w && i < n) data[i++] = (unsigned char)*w++;
            if (i < n) data[i++] = ' ';
        } else if (kind < 13) {
            unsigned len = 3 + rnd() % 300, c = rnd() & 0xff;
            while (len-- && i < n) data[i++] = (unsigned char)c;
        } else if (kind < 15 && i > 300) {
            unsigned dist = 1 + rnd() % (i < 32000 ? (unsigned)i : 32000), len = 3 + rnd() % 258;
            while (len-- && i < n) { data[i] = data[i - dist]; i++; }
        } else {
            unsigned len = 1 + rnd() % 64;
            while (len-- && i < n) data[i++] = (unsigned char)rnd();
        }
    }
    return n;
}

/* Deflates data[0..n] at (level, strategy, windowBits, memLevel) into
 * packed and inflates it back; prints "size/hash/ok". */
static size_t deflate_with(size_t n, int level, int strategy, int wbits, int mem, int print) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, level, Z_DEFLATED, wbits, mem, strategy) != Z_OK) { printf(" init-failed"); return 0; }
    unsigned long bound = deflateBound(&s, (uLong)n);
    s.next_in = data;
    s.avail_in = (uInt)n;
    s.next_out = packed;
    s.avail_out = sizeof packed;
    /* In two pieces with a flush between, so partial flushes run too. */
    s.avail_in = (uInt)(n / 3);
    int rc = deflate(&s, Z_SYNC_FLUSH);
    s.avail_in = (uInt)(n - n / 3);
    rc = rc == Z_OK ? deflate(&s, Z_FINISH) : rc;
    size_t size = s.total_out;
    uLong adler = s.adler;
    deflateEnd(&s);
    z_stream t;
    memset(&t, 0, sizeof t);
    int ok = 0;
    if (inflateInit2(&t, wbits) == Z_OK) {
        t.next_in = packed;
        t.avail_in = (uInt)size;
        t.next_out = unpacked;
        t.avail_out = sizeof unpacked;
        int irc = inflate(&t, Z_FINISH);
        ok = irc == Z_STREAM_END && t.total_out == n && memcmp(unpacked, data, n) == 0;
        inflateEnd(&t);
    }
    if (print) printf(" %d:%d:%lu/%lx/%lx/%s/b%lu", level, strategy, (unsigned long)size, fnv(packed, size),
                      (unsigned long)adler, rc == Z_STREAM_END && ok ? "ok" : "BAD", bound >= size ? bound - size : 0);
    return size;
}

/* Inflates bad[0..n] and prints its result code and message. */
static void inflate_bad(size_t n, int wbits) {
    z_stream t;
    memset(&t, 0, sizeof t);
    if (inflateInit2(&t, wbits) != Z_OK) { printf(" [init]"); return; }
    t.next_in = bad;
    t.avail_in = (uInt)n;
    t.next_out = unpacked;
    t.avail_out = sizeof unpacked;
    int rc = inflate(&t, Z_FINISH);
    printf(" [%d %s %lu]", rc, t.msg ? t.msg : "-", (unsigned long)t.total_out);
    inflateEnd(&t);
}

static void round_(unsigned round) {
    /* Buffers start each round empty: an edit that makes a call fail
     * (no output) must not leave the previous round's bytes to be read. */
    memset(packed, 0, sizeof packed);
    memset(unpacked, 0, sizeof unpacked);
    memset(bad, 0, sizeof bad);
    size_t n = make_data(round);
    printf("round %u n=%lu", round, (unsigned long)n);
    uLong a = adler32(1, data, (uInt)n), a1 = adler32(1, data, 1);
    uLong ah = adler32(1, data, (uInt)(n / 2)), at = adler32(1, data + n / 2, (uInt)(n - n / 2));
    uLong c = crc32(0, data, (uInt)n), ch = crc32(0, data, (uInt)(n / 2)), ct = crc32(0, data + n / 2, (uInt)(n - n / 2));
    printf(" adler=%lx/%lx/%lx crc=%lx/%lx/%lx", a, a1, adler32_combine(ah, at, (z_off_t)(n - n / 2)), c,
           crc32(0, data, 1), crc32_combine(ch, ct, (z_off_t)(n - n / 2)));
    static const int modes[][2] = {{1, Z_DEFAULT_STRATEGY}, {6, Z_DEFAULT_STRATEGY}, {9, Z_DEFAULT_STRATEGY},
                                   {4, Z_FILTERED}, {6, Z_HUFFMAN_ONLY}, {6, Z_RLE}, {6, Z_FIXED}, {0, Z_DEFAULT_STRATEGY}};
    for (unsigned i = 0; i < sizeof modes / sizeof *modes; i++) deflate_with(n, modes[i][0], modes[i][1], 15, 8, 1);
    deflate_with(n, 5, Z_DEFAULT_STRATEGY, 31, 9, 1);  /* gzip */
    deflate_with(n, 3, Z_DEFAULT_STRATEGY, -10, 4, 1); /* raw, small window */
    uLongf plen = sizeof packed, ulen = sizeof unpacked;
    int crc = compress2(packed, &plen, data, (uLong)n, 7);
    int urc = uncompress(unpacked, &ulen, packed, plen);
    printf(" c2=%d/%lu/%lx/%d/%d", crc, (unsigned long)plen, fnv(packed, plen), urc, ulen == n && !memcmp(unpacked, data, n));
    printf(" bound=%lu", (unsigned long)compressBound((uLong)n));
    /* Damaged streams: each makes inflate stop with its own message. */
    size_t size = deflate_with(n, 6, Z_DEFAULT_STRATEGY, 15, 8, 0);
    memcpy(bad, packed, size);
    bad[1] ^= 1; /* header check */
    inflate_bad(size, 15);
    memcpy(bad, packed, size);
    bad[0] = 0x88; /* window size 2^16 */
    bad[1] = (unsigned char)(31 - (0x88 * 256) % 31);
    inflate_bad(size, 15);
    bad[0] = 0x79; /* compression method 9 */
    bad[1] = (unsigned char)(31 - (0x79 * 256) % 31);
    inflate_bad(size, 15);
    memcpy(bad, packed, size);
    bad[size - 1] ^= 0x40; /* adler-32 trailer */
    inflate_bad(size, 15);
    memcpy(bad, packed, size);
    bad[size / 2] ^= 0x55; /* somewhere in the data */
    inflate_bad(size, 15);
    bad[0] = 0x07; /* a raw final block of type 3 */
    inflate_bad(8, -15);
    bad[0] = 0x01, bad[1] = 0x05, bad[2] = 0x00, bad[3] = 0x05, bad[4] = 0x00; /* stored, bad NLEN */
    inflate_bad(16, -15);
    memcpy(bad, packed + 2, size - 6); /* the raw deflate data with 3 bytes more each round */
    inflate_bad(size - 6 - (round % 7), -15);
    printf(" err=");
    for (int e = 2; e >= -6; e--) printf("%s|", zError(e));
    printf(" v=%s f=%lx\n", zlibVersion(), zlibCompileFlags());
}

int main(void) {
    char line[64];
    unsigned round = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "step", 4) == 0) round_(round++);
        else if (strncmp(line, "quit", 4) == 0) break;
    }
    return 0;
}
