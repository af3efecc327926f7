/* IPv6 header parsing (RFC 8200 3) including the walk over extension headers (RFC 8200 4),
 * and the hop-limit decrement of a forwarding hop (RFC 8200 3: no header checksum). */
#ifndef MEMBRANE_IPV6_H
#define MEMBRANE_IPV6_H

#include "common.h"
#include "drop_reasons.h"
#include <linux/in.h>
#include <linux/ipv6.h>

#ifndef NEXTHDR_HOP
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_NONE 59
#define NEXTHDR_DEST 60
#endif

/* How many extension headers we follow before giving up (Cilium uses 4 as well). */
#define IPV6_MAX_EXT_HDRS 4

struct ipv6_opt_hdr_min {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-octet units, not counting the first 8 (RFC 8200 4.3) */
};

struct ipv6_frag_hdr_min {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset in the top 13 bits, M flag in bit 0 */
	__be32 identification;
};

/* As parse_ipv4; the fragment facts come from a Fragment header (RFC 8200 4.5). */
static __always_inline int parse_ipv6(void *data, void *data_end, __u32 off,
				      __u32 *l4_off, __u8 *l4_proto, bool *later_fragment,
				      bool *first_fragment, __be32 *frag_id)
{
	struct ipv6hdr *ip6 = data + off;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return DROP_INVALID_PACKET;
	if (ip6->version != 6)
		return DROP_INVALID_PACKET;
	nexthdr = ip6->nexthdr;
	off += sizeof(*ip6);
	*later_fragment = false;
	*first_fragment = false;
	*frag_id = 0;

#pragma unroll
	for (i = 0; i < IPV6_MAX_EXT_HDRS; i++) {
		struct ipv6_opt_hdr_min *opt = data + off;

		switch (nexthdr) {
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST:
			if ((void *)(opt + 1) > data_end)
				return DROP_INVALID_PACKET;
			nexthdr = opt->nexthdr;
			off += ((__u32)opt->hdrlen + 1) * 8;
			break;
		case NEXTHDR_AUTH:
			/* RFC 4302 2.2: the length is in 4-octet units, minus 2. */
			if ((void *)(opt + 1) > data_end)
				return DROP_INVALID_PACKET;
			nexthdr = opt->nexthdr;
			off += ((__u32)opt->hdrlen + 2) * 4;
			break;
		case NEXTHDR_FRAGMENT: {
			struct ipv6_frag_hdr_min *frag = data + off;

			if ((void *)(frag + 1) > data_end)
				return DROP_INVALID_PACKET;
			nexthdr = frag->nexthdr;
			*later_fragment = (frag->frag_off & bpf_htons(0xfff8)) != 0;
			*first_fragment = !*later_fragment && (frag->frag_off & bpf_htons(1));
			*frag_id = frag->identification;
			off += sizeof(*frag);
			break;
		}
		default:
			*l4_off = off;
			*l4_proto = nexthdr;
			return 0;
		}
	}
	/* All IPV6_MAX_EXT_HDRS walked: fine if what follows is no extension header. */
	switch (nexthdr) {
	case NEXTHDR_HOP:
	case NEXTHDR_ROUTING:
	case NEXTHDR_DEST:
	case NEXTHDR_AUTH:
	case NEXTHDR_FRAGMENT:
		return DROP_EXT_HDR_LIMIT;
	default:
		*l4_off = off;
		*l4_proto = nexthdr;
		return 0;
	}
}

static __always_inline int ipv6_dec_hoplimit(struct __sk_buff *skb, __u32 ip_off)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + ip_off;

	if ((void *)(ip6 + 1) > data_end)
		return DROP_INVALID_PACKET;
	if (ip6->hop_limit <= 1)
		return DROP_TTL_EXCEEDED;
	ip6->hop_limit--;
	return 0;
}

#endif /* MEMBRANE_IPV6_H */
