/* L4 port extraction: TCP (RFC 9293 3.1) and UDP (RFC 768) share the port layout in their
 * first four bytes; ICMP (RFC 792) and ICMPv6 (RFC 4443) carry type/code there instead. */
#ifndef MEMBRANE_L4_H
#define MEMBRANE_L4_H

#include "common.h"
#include "drop_reasons.h"
#include <linux/in.h>

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

struct l4_ports {
	__be16 sport;
	__be16 dport;
};

/* Reads source/destination port (network byte order) for TCP, UDP and SCTP; for ICMP and
 * ICMPv6 "sport" holds type and code and dport 0. Other protocols have no ports (0/0). */
static __always_inline int parse_l4_ports(void *data, void *data_end, __u32 off, __u8 proto,
					  __be16 *sport, __be16 *dport)
{
	*sport = 0;
	*dport = 0;
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		struct l4_ports *ports = data + off;

		if ((void *)(ports + 1) > data_end)
			return DROP_INVALID_PACKET;
		*sport = ports->sport;
		*dport = ports->dport;
		return 0;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__be16 *type_code = data + off;

		if ((void *)(type_code + 1) > data_end)
			return DROP_INVALID_PACKET;
		*sport = *type_code;
		return 0;
	}
	default:
		return 0;
	}
}

#endif /* MEMBRANE_L4_H */
