/* Unit tests of rewrite.c. Every checksum is verified by a full recomputation done here with an
 * independent reference implementation (not the vp_ helpers). Run: make test */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

static int failures, checks;

#define CHECK(cond)                                                                                 \
    do {                                                                                            \
        checks++;                                                                                   \
        if (!(cond)) {                                                                              \
            failures++;                                                                             \
            fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", __FILE__, __LINE__, __func__, #cond); \
        }                                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                                              \
    do {                                                                                            \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                       \
        checks++;                                                                                   \
        if (va_ != vb_) {                                                                           \
            failures++;                                                                             \
            fprintf(stderr, "%s:%d: %s: %s == %s failed: 0x%llx != 0x%llx\n", __FILE__, __LINE__,   \
                    __func__, #a, #b, va_, vb_);                                                    \
        }                                                                                           \
    } while (0)

/* addresses as bytes (network order in memory) */
static const uint8_t A[4] = {198, 18, 251, 2}, B[4] = {198, 18, 252, 2};
static const uint8_t PA[4] = {198, 18, 251, 1}, PB[4] = {198, 18, 252, 1};
static const uint8_t OTHER[4] = {198, 18, 9, 9};

static uint32_t a32(const uint8_t b[4])
{
    uint32_t v;
    memcpy(&v, b, 4);
    return v;
}

static struct vp_config config(void)
{
    struct vp_config c = {a32(A), a32(B), a32(PA), a32(PB)};
    return c;
}

/* ---- reference checksum (bytewise, deliberately naive) ---- */
static uint16_t ref_sum(const uint8_t *p, size_t n, unsigned long start)
{
    unsigned long s = start;
    for (size_t i = 0; i < n; i++)
        s += (i % 2 == 0) ? (unsigned long)p[i] << 8 : p[i];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

static uint16_t ref_csum(const uint8_t *p, size_t n) { return (uint16_t)~ref_sum(p, n, 0); }

/* TCP/UDP checksum over the pseudo-header (src, dst of ip) and seg[0..n) with its field zeroed */
static uint16_t ref_l4(const uint8_t *ip, const uint8_t *seg, size_t n, size_t check_off)
{
    static uint8_t copy[70000];
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = ip[9];
    pseudo[10] = (uint8_t)(n >> 8);
    pseudo[11] = (uint8_t)n;
    memcpy(copy, seg, n);
    copy[check_off] = copy[check_off + 1] = 0;
    unsigned long s = ref_sum(pseudo, 12, 0);
    s = ref_sum(copy, n, s);
    return (uint16_t)~s;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* ---- packet builder ---- */
static uint8_t pkt[70000];

/* Build IPv4 (ihl 5 + opt_words) + payload of plen bytes, payload filled by a pattern. The L4
 * checksum is computed for UDP/TCP (unless no_udp_csum) and ICMP. Returns the total length. */
static size_t build(uint8_t proto, const uint8_t src[4], const uint8_t dst[4], size_t plen, int opt_words,
                    int no_udp_csum, unsigned seed)
{
    size_t hlen = 20 + 4 * (size_t)opt_words;
    size_t tot = hlen + plen;
    memset(pkt, 0, tot);
    pkt[0] = (uint8_t)(0x40 | (hlen / 4));
    wr16(pkt + 2, (uint16_t)tot);
    wr16(pkt + 4, 0x1234);  /* ID */
    pkt[8] = 64;            /* TTL */
    pkt[9] = proto;
    memcpy(pkt + 12, src, 4);
    memcpy(pkt + 16, dst, 4);
    for (int i = 0; i < opt_words; i++)
        pkt[20 + 4 * i] = 1; /* NOP options */
    uint8_t *l4 = pkt + hlen;
    srand(seed);
    for (size_t i = 0; i < plen; i++)
        l4[i] = (uint8_t)rand();
    if (proto == VP_IPPROTO_UDP) {
        wr16(l4 + 4, (uint16_t)plen);
        wr16(l4 + 6, 0);
        if (!no_udp_csum) {
            uint16_t c = ref_l4(pkt, l4, plen, 6);
            wr16(l4 + 6, c == 0 ? 0xffff : c);
        }
    } else if (proto == VP_IPPROTO_TCP) {
        l4[12] = 0x50;
        wr16(l4 + 16, ref_l4(pkt, l4, plen, 16));
    } else if (proto == VP_IPPROTO_ICMP) {
        l4[0] = 8;
        l4[1] = 0;
        wr16(l4 + 2, 0);
        wr16(l4 + 2, ref_csum(l4, plen));
    }
    wr16(pkt + 10, ref_csum(pkt, hlen));
    return tot;
}

static void check_ip_header(const uint8_t *ip)
{
    size_t hlen = (size_t)(ip[0] & 0xf) * 4;
    CHECK_EQ(ref_sum(ip, hlen, 0), 0xffff); /* a valid header sums to all ones */
    uint8_t copy[60];
    memcpy(copy, ip, hlen);
    wr16(copy + 10, 0);
    CHECK_EQ(rd16(ip + 10), ref_csum(copy, hlen));
}

static void check_l4(const uint8_t *ip)
{
    size_t hlen = (size_t)(ip[0] & 0xf) * 4, tot = rd16(ip + 2);
    const uint8_t *l4 = ip + hlen;
    if (ip[9] == VP_IPPROTO_UDP) {
        uint16_t want = ref_l4(ip, l4, tot - hlen, 6);
        CHECK_EQ(rd16(l4 + 6), want == 0 ? 0xffff : want);
    } else if (ip[9] == VP_IPPROTO_TCP) {
        CHECK_EQ(rd16(l4 + 16), ref_l4(ip, l4, tot - hlen, 16));
    } else if (ip[9] == VP_IPPROTO_ICMP) {
        CHECK_EQ(ref_csum(l4, tot - hlen), 0);
    }
}

static void run_rule(uint8_t proto, const uint8_t src[4], const uint8_t dst[4], enum vp_side side,
                     enum vp_rule want_rule, const uint8_t want_src[4], const uint8_t want_dst[4], size_t plen)
{
    struct vp_config cfg = config();
    size_t tot = build(proto, src, dst, plen, 0, 0, (unsigned)plen);
    static uint8_t before[70000];
    memcpy(before, pkt, tot);
    struct vp_result res;
    CHECK_EQ(vp_rewrite(pkt, tot, &cfg, side, &res), VP_FORWARD);
    CHECK_EQ(res.rule, want_rule);
    CHECK_EQ(res.reason, VP_OK);
    CHECK_EQ(res.ip_len, tot);
    CHECK(memcmp(pkt + 12, want_src, 4) == 0);
    CHECK(memcmp(pkt + 16, want_dst, 4) == 0);
    CHECK_EQ(res.daddr, a32(want_dst));
    check_ip_header(pkt);
    check_l4(pkt);
    /* nothing else changed: header bytes 0..9, and the payload outside the checksum field */
    CHECK(memcmp(pkt, before, 10) == 0);
    size_t check_off = proto == VP_IPPROTO_UDP ? 6 : proto == VP_IPPROTO_TCP ? 16 : 2;
    CHECK(memcmp(pkt + 20, before + 20, check_off) == 0);
    CHECK(memcmp(pkt + 20 + check_off + 2, before + 20 + check_off + 2, tot - 20 - check_off - 2) == 0);
    if (proto == VP_IPPROTO_ICMP)
        CHECK_EQ(rd16(pkt + 22), rd16(before + 22)); /* ICMP checksum does not cover addresses */
}

static void test_four_rules(void)
{
    static const uint8_t protos[] = {VP_IPPROTO_UDP, VP_IPPROTO_TCP, VP_IPPROTO_ICMP};
    static const size_t sizes[] = {28, 64, 1472, 1473};
    for (size_t p = 0; p < sizeof protos; p++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t plen = sizes[s];
            run_rule(protos[p], A, PA, VP_SIDE_A, VP_RULE_A_TO_PA, A, B, plen);
            run_rule(protos[p], B, A, VP_SIDE_B, VP_RULE_B_REPLY, PA, A, plen);
            run_rule(protos[p], B, PB, VP_SIDE_B, VP_RULE_B_TO_PB, B, A, plen);
            run_rule(protos[p], A, B, VP_SIDE_A, VP_RULE_A_REPLY, PB, B, plen);
            run_rule(protos[p], A, PA, VP_SIDE_ANY, VP_RULE_A_TO_PA, A, B, plen);
            run_rule(protos[p], B, A, VP_SIDE_ANY, VP_RULE_B_REPLY, PA, A, plen);
        }
    }
}

static void expect_drop(size_t len, enum vp_side side, enum vp_drop_reason reason)
{
    struct vp_config cfg = config();
    static uint8_t before[70000];
    memcpy(before, pkt, len);
    struct vp_result res;
    CHECK_EQ(vp_rewrite(pkt, len, &cfg, side, &res), VP_DROP);
    CHECK_EQ(res.reason, reason);
    CHECK_EQ(res.rule, VP_RULE_NONE);
    CHECK(memcmp(pkt, before, len) == 0); /* a dropped packet is not modified */
}

static void test_drops(void)
{
    size_t tot;
    /* right addresses, wrong interface */
    tot = build(VP_IPPROTO_UDP, A, PA, 64, 0, 0, 1);
    expect_drop(tot, VP_SIDE_B, VP_DROP_NO_RULE);
    tot = build(VP_IPPROTO_UDP, B, PB, 64, 0, 0, 1);
    expect_drop(tot, VP_SIDE_A, VP_DROP_NO_RULE);
    tot = build(VP_IPPROTO_UDP, B, A, 64, 0, 0, 1);
    expect_drop(tot, VP_SIDE_A, VP_DROP_NO_RULE);
    /* unknown source or destination */
    tot = build(VP_IPPROTO_ICMP, OTHER, PA, 64, 0, 0, 2);
    expect_drop(tot, VP_SIDE_A, VP_DROP_NO_RULE);
    tot = build(VP_IPPROTO_ICMP, A, OTHER, 64, 0, 0, 2);
    expect_drop(tot, VP_SIDE_A, VP_DROP_NO_RULE);
    tot = build(VP_IPPROTO_ICMP, A, PB, 64, 0, 0, 2); /* A to the B-side address */
    expect_drop(tot, VP_SIDE_A, VP_DROP_NO_RULE);
    tot = build(VP_IPPROTO_ICMP, B, PA, 64, 0, 0, 2);
    expect_drop(tot, VP_SIDE_ANY, VP_DROP_NO_RULE);
    tot = build(VP_IPPROTO_ICMP, PA, A, 64, 0, 0, 2); /* the proxy's own traffic */
    expect_drop(tot, VP_SIDE_A, VP_DROP_NO_RULE);
    /* malformed */
    tot = build(VP_IPPROTO_UDP, A, PA, 64, 0, 0, 3);
    expect_drop(19, VP_SIDE_A, VP_DROP_SHORT);
    expect_drop(tot - 1, VP_SIDE_A, VP_DROP_SHORT); /* total length beyond the buffer */
    pkt[0] = 0x65;
    expect_drop(tot, VP_SIDE_A, VP_DROP_NOT_IPV4);
    pkt[0] = 0x44; /* IHL 4 */
    expect_drop(tot, VP_SIDE_A, VP_DROP_BAD_HEADER);
    tot = build(VP_IPPROTO_UDP, A, PA, 64, 0, 0, 3);
    pkt[10] ^= 0x01; /* header checksum */
    expect_drop(tot, VP_SIDE_A, VP_DROP_BAD_HEADER);
    tot = build(VP_IPPROTO_UDP, A, PA, 64, 0, 0, 3);
    wr16(pkt + 2, 19); /* total length < header */
    wr16(pkt + 10, 0);
    wr16(pkt + 10, ref_csum(pkt, 20));
    expect_drop(tot, VP_SIDE_A, VP_DROP_BAD_HEADER);
    /* a first TCP fragment too short to hold the checksum field */
    tot = build(VP_IPPROTO_TCP, A, PA, 16, 0, 0, 4);
    wr16(pkt + 6, 0x2000); /* MF */
    wr16(pkt + 10, 0);
    wr16(pkt + 10, ref_csum(pkt, 20));
    expect_drop(tot, VP_SIDE_A, VP_DROP_L4_SHORT);
}

static void test_udp_zero_checksum_stays_zero(void)
{
    struct vp_config cfg = config();
    size_t tot = build(VP_IPPROTO_UDP, A, PA, 200, 0, 1, 5);
    CHECK_EQ(rd16(pkt + 26), 0);
    CHECK_EQ(vp_rewrite(pkt, tot, &cfg, VP_SIDE_A, NULL), VP_FORWARD);
    CHECK(memcmp(pkt + 16, B, 4) == 0);
    CHECK_EQ(rd16(pkt + 26), 0);
    check_ip_header(pkt);
}

/* A UDP datagram whose checksum after the rewrite computes to 0 must carry 0xffff (RFC 768). */
static void test_udp_computed_zero_is_all_ones(void)
{
    struct vp_config cfg = config();
    size_t plen = 64;
    size_t tot = build(VP_IPPROTO_UDP, A, B, plen, 0, 1, 6); /* with the rewritten addresses */
    uint8_t *l4 = pkt + 20;
    wr16(l4 + 8, 0); /* the word we tune */
    uint16_t c = ref_l4(pkt, l4, plen, 6);
    /* sum without the word is ~c; word w makes the sum 0xffff: w = ~(~c) = c in one's complement */
    wr16(l4 + 8, (uint16_t)c);
    CHECK_EQ(ref_l4(pkt, l4, plen, 6), 0);
    memcpy(pkt + 16, PA, 4); /* back to the original destination, with a valid checksum */
    wr16(pkt + 10, 0);
    wr16(pkt + 10, ref_csum(pkt, 20));
    uint16_t orig = ref_l4(pkt, l4, plen, 6);
    wr16(l4 + 6, orig == 0 ? 0xffff : orig);
    CHECK_EQ(vp_rewrite(pkt, tot, &cfg, VP_SIDE_A, NULL), VP_FORWARD);
    CHECK(memcmp(pkt + 16, B, 4) == 0);
    CHECK_EQ(rd16(l4 + 6), 0xffff);
}

/* A 65507-byte UDP datagram cut into 1480-byte fragments: the first carries the checksum, which
 * must equal the full recomputation over the whole datagram; the others are not touched beyond
 * the IP header. */
static void test_fragments(void)
{
    static uint8_t datagram[70000], frag[1600];
    struct vp_config cfg = config();
    const size_t plen = 8 + 65507, mtu_payload = 1480;
    size_t tot = build(VP_IPPROTO_UDP, A, PA, plen, 0, 0, 7);
    memcpy(datagram, pkt, tot);
    /* expected checksum over the rewritten datagram */
    memcpy(pkt + 16, B, 4);
    uint16_t want = ref_l4(pkt, pkt + 20, plen, 6);
    want = want == 0 ? 0xffff : want;
    for (size_t off = 0; off < plen; off += mtu_payload) {
        size_t n = plen - off < mtu_payload ? plen - off : mtu_payload;
        int more = off + n < plen;
        memcpy(frag, datagram, 20);
        memcpy(frag + 20, datagram + 20 + off, n);
        wr16(frag + 2, (uint16_t)(20 + n));
        wr16(frag + 6, (uint16_t)((more ? 0x2000 : 0) | (off / 8)));
        wr16(frag + 10, 0);
        wr16(frag + 10, ref_csum(frag, 20));
        struct vp_result res;
        CHECK_EQ(vp_rewrite(frag, 20 + n, &cfg, VP_SIDE_A, &res), VP_FORWARD);
        CHECK_EQ(res.rule, VP_RULE_A_TO_PA);
        CHECK(memcmp(frag + 16, B, 4) == 0);
        CHECK_EQ(rd16(frag + 4), 0x1234);                                        /* ID kept */
        CHECK_EQ(rd16(frag + 6), (uint16_t)((more ? 0x2000 : 0) | (off / 8))); /* flags, offset kept */
        check_ip_header(frag);
        if (off == 0) {
            CHECK_EQ(rd16(frag + 26), want);
            CHECK(memcmp(frag + 20, datagram + 20, 6) == 0);
            CHECK(memcmp(frag + 28, datagram + 28, n - 8) == 0);
        } else {
            CHECK(memcmp(frag + 20, datagram + 20 + off, n) == 0); /* payload untouched */
        }
    }
    /* a non-first TCP fragment shorter than a TCP header is forwarded too */
    size_t t = build(VP_IPPROTO_TCP, A, PA, 8, 0, 0, 8);
    wr16(pkt + 6, 185); /* offset 1480 */
    wr16(pkt + 10, 0);
    wr16(pkt + 10, ref_csum(pkt, 20));
    static uint8_t before[64];
    memcpy(before, pkt, t);
    CHECK_EQ(vp_rewrite(pkt, t, &cfg, VP_SIDE_A, NULL), VP_FORWARD);
    CHECK(memcmp(pkt + 20, before + 20, 8) == 0);
    check_ip_header(pkt);
}

static void test_ip_options_and_padding(void)
{
    struct vp_config cfg = config();
    size_t tot = build(VP_IPPROTO_TCP, B, PB, 100, 2, 0, 9); /* IHL 7 */
    memset(pkt + tot, 0xee, 18);                              /* link-layer padding */
    struct vp_result res;
    CHECK_EQ(vp_rewrite(pkt, tot + 18, &cfg, VP_SIDE_B, &res), VP_FORWARD);
    CHECK_EQ(res.ip_len, tot);
    CHECK(memcmp(pkt + 16, A, 4) == 0);
    check_ip_header(pkt);
    check_l4(pkt);
}

/* Many random TCP/UDP packets: the incremental update equals the full recomputation exactly. */
static void test_random_against_full_recomputation(void)
{
    struct vp_config cfg = config();
    const uint8_t *srcs[] = {A, B, B, A}, *dsts[] = {PA, A, PB, B};
    const enum vp_side sides[] = {VP_SIDE_A, VP_SIDE_B, VP_SIDE_B, VP_SIDE_A};
    for (unsigned i = 0; i < 4000; i++) {
        unsigned r = i % 4;
        uint8_t proto = (i / 4) % 2 ? VP_IPPROTO_TCP : VP_IPPROTO_UDP;
        size_t plen = 20 + (size_t)(i * 7919u % 1500u);
        size_t tot = build(proto, srcs[r], dsts[r], plen, (int)(i % 3), 0, i);
        CHECK_EQ(vp_rewrite(pkt, tot, &cfg, sides[r], NULL), VP_FORWARD);
        check_ip_header(pkt);
        check_l4(pkt);
        if (failures > 20)
            return;
    }
}

static void test_helpers(void)
{
    static const uint8_t rfc1071[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}; /* sum 0xddf2 */
    CHECK_EQ(vp_csum_fold(vp_csum_add(0, rfc1071, sizeof rfc1071)), 0xddf2);
    CHECK_EQ(vp_ip_checksum(rfc1071, sizeof rfc1071), (uint16_t)~0xddf2);
    static const uint8_t odd[] = {0xab, 0xcd, 0xef};
    CHECK_EQ(vp_ip_checksum(odd, 3), ref_csum(odd, 3));
    /* RFC 1624 section 4 example: HC 0xdd2f, m 0x5555 -> m' 0x3285 gives HC' 0x0000 */
    uint8_t check[2] = {0xdd, 0x2f};
    vp_csum_update16(check, 0x5555, 0x3285);
    CHECK_EQ(rd16(check), 0x0000);
    /* update32 equals two update16 */
    uint8_t c1[2] = {0x12, 0x34}, c2[2] = {0x12, 0x34};
    vp_csum_update32(c1, A, B);
    vp_csum_update16(c2, rd16(A), rd16(B));
    vp_csum_update16(c2, rd16(A + 2), rd16(B + 2));
    CHECK_EQ(rd16(c1), rd16(c2));
}

static void test_complete_partial_checksum(void)
{
    static const uint8_t protos[] = {VP_IPPROTO_UDP, VP_IPPROTO_TCP};
    for (size_t p = 0; p < 2; p++) {
        size_t tot = build(protos[p], A, PA, 300, 0, 0, 10);
        size_t off = protos[p] == VP_IPPROTO_UDP ? 6 : 16;
        uint16_t full = rd16(pkt + 20 + off);
        /* CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented */
        uint8_t pseudo[12];
        memcpy(pseudo, pkt + 12, 8);
        pseudo[8] = 0;
        pseudo[9] = protos[p];
        wr16(pseudo + 10, 300);
        wr16(pkt + 20 + off, ref_sum(pseudo, 12, 0));
        CHECK_EQ(vp_complete_l4_checksum(pkt, tot), 0);
        CHECK_EQ(rd16(pkt + 20 + off), full);
    }
    size_t tot = build(VP_IPPROTO_ICMP, A, PA, 64, 0, 0, 11);
    CHECK_EQ(vp_complete_l4_checksum(pkt, tot), -1);
    tot = build(VP_IPPROTO_UDP, A, PA, 64, 0, 0, 12);
    wr16(pkt + 6, 0x2000);
    wr16(pkt + 10, 0);
    wr16(pkt + 10, ref_csum(pkt, 20));
    CHECK_EQ(vp_complete_l4_checksum(pkt, tot), -1); /* fragments are never partial */
}

static void test_names(void)
{
    CHECK(strcmp(vp_rule_name(VP_RULE_A_TO_PA), "a-to-pa") == 0);
    CHECK(strcmp(vp_rule_name(VP_RULE_NONE), "none") == 0);
    CHECK(strcmp(vp_drop_name(VP_DROP_NO_RULE), "no-rule") == 0);
}

int main(void)
{
    test_helpers();
    test_four_rules();
    test_drops();
    test_udp_zero_checksum_stays_zero();
    test_udp_computed_zero_is_all_ones();
    test_fragments();
    test_ip_options_and_padding();
    test_random_against_full_recomputation();
    test_complete_partial_checksum();
    test_names();
    if (failures) {
        fprintf(stderr, "test_rewrite: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("test_rewrite: all %d checks passed\n", checks);
    return 0;
}
