/* Test driver for rewrite.c (not part of the VNF): one packet per input line, one result per line.
 *
 * usage: rewrite-cli HOST_A HOST_B PROXY_A PROXY_B < lines
 * input line:  SIDE HEX        SIDE = a | b | any, optionally suffixed ":partial" (the TCP/UDP
 *                              checksum field holds only the pseudo-header sum, as the AF_PACKET
 *                              loop sees CHECKSUM_PARTIAL packets: vp_complete_l4_checksum first)
 * output line: forward RULE HEX   (HEX: the rewritten packet, IPv4 total length)
 *              drop REASON
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

#define MAX_PACKET 65536
static uint8_t packet[MAX_PACKET + 64];
static char line[2 * MAX_PACKET + 256];

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static uint32_t addr(const char *text)
{
    struct in_addr in;
    if (inet_pton(AF_INET, text, &in) != 1) {
        fprintf(stderr, "rewrite-cli: not an IPv4 address: %s\n", text);
        exit(2);
    }
    return in.s_addr;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fputs("usage: rewrite-cli HOST_A HOST_B PROXY_A PROXY_B < 'SIDE[:partial] HEX' lines\n", stderr);
        return 2;
    }
    struct vp_config cfg = {addr(argv[1]), addr(argv[2]), addr(argv[3]), addr(argv[4])};
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *hex = strchr(line, ' ');
        if (hex == NULL) {
            fputs("rewrite-cli: expected 'SIDE HEX'\n", stderr);
            return 2;
        }
        *hex++ = '\0';
        int partial = 0;
        char *colon = strchr(line, ':');
        if (colon != NULL) {
            partial = strcmp(colon, ":partial") == 0;
            if (!partial) {
                fprintf(stderr, "rewrite-cli: unknown flag %s\n", colon);
                return 2;
            }
            *colon = '\0';
        }
        enum vp_side side;
        if (strcmp(line, "a") == 0)
            side = VP_SIDE_A;
        else if (strcmp(line, "b") == 0)
            side = VP_SIDE_B;
        else if (strcmp(line, "any") == 0)
            side = VP_SIDE_ANY;
        else {
            fprintf(stderr, "rewrite-cli: side must be a, b or any: %s\n", line);
            return 2;
        }
        size_t len = 0;
        for (char *p = hex; hexval(p[0]) >= 0 && hexval(p[1]) >= 0; p += 2) {
            if (len >= MAX_PACKET) {
                fputs("rewrite-cli: packet too long\n", stderr);
                return 2;
            }
            packet[len++] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
        }
        if (partial && vp_complete_l4_checksum(packet, len) != 0) {
            puts("drop partial-not-applicable");
            continue;
        }
        struct vp_result res;
        if (vp_rewrite(packet, len, &cfg, side, &res) != VP_FORWARD) {
            printf("drop %s\n", vp_drop_name(res.reason));
            continue;
        }
        printf("forward %s ", vp_rule_name(res.rule));
        for (size_t i = 0; i < res.ip_len; i++)
            printf("%02x", packet[i]);
        putchar('\n');
    }
    return 0;
}
