/* Endpoints: the pods of this node as the datapath sees them, and the drop reasons of the
 * endpoint programs.
 *
 * One object (from_pod.o) is loaded once per node and shared by every endpoint; what
 * differs per endpoint lives here, in maps keyed by the host-side veth's ifindex and by
 * the pod's addresses (DESIGN.md "Datapath": no per-endpoint recompilation). The agent
 * writes both maps (C# mirrors: Membrane.Datapath.EndpointInfo / EndpointIpKey).
 * Multi-byte fields are host byte order unless the type says __be. */
#ifndef MEMBRANE_ENDPOINT_H
#define MEMBRANE_ENDPOINT_H

#include "common.h"
#include <linux/if_ether.h>

/* Drop reasons of the endpoint programs. drop_reasons.h owns 0..63 (its values are an API
 * and grow from the bottom); the endpoint programs use 64..95 so that both enums can grow
 * without colliding. The metrics key and drop records carry these numbers like any other
 * reason. C# mirror: Membrane.Datapath.EndpointDropReason. */
enum endpoint_drop_reason {
	DROP_SPOOFED_IP = 64,       /* source IP (or ARP sender IP) is not the endpoint's */
	DROP_SPOOFED_MAC = 65,      /* source MAC (or ARP sender MAC) is not the endpoint's */
	DROP_UNKNOWN_ENDPOINT = 66, /* no endpoint entry for the ifindex the program runs on */
};
BTF_ANCHOR_ENUM(endpoint_drop_reason);

/* endpoint_info.flags */
enum endpoint_flags {
	ENDPOINT_F_IPV4 = 1 << 0, /* ipv4 holds the endpoint's address */
	ENDPOINT_F_IPV6 = 1 << 1, /* ipv6 holds the endpoint's address */
	ENDPOINT_F_INGRESS_POLICY = 1 << 2, /* a policy rule selects the endpoint for ingress: default deny */
	ENDPOINT_F_EGRESS_POLICY = 1 << 3,  /* likewise for egress */
};
BTF_ANCHOR_ENUM(endpoint_flags);

/* Everything the datapath knows about one local endpoint. 44 bytes, 4-byte aligned. */
struct endpoint_info {
	__be32 ipv4;           /* the pod's IPv4 address, network order (valid with ENDPOINT_F_IPV4) */
	__be32 ipv6[4];        /* the pod's IPv6 address, network order (valid with ENDPOINT_F_IPV6) */
	__u8 mac[ETH_ALEN];    /* the pod-side interface's MAC */
	__u8 host_mac[ETH_ALEN]; /* the host-side veth's MAC: the pod's gateway MAC */
	__u32 ifindex;         /* the host-side veth's ifindex in the node's namespace */
	__u32 identity;        /* security identity (24 bits used; DESIGN.md "Identities") */
	__u32 flags;           /* enum endpoint_flags */
};

/* Key of endpoints_by_ip: an IPv4 address is stored in addr[0] with addr[1..3] zero. */
struct endpoint_ip_key {
	__be32 addr[4];        /* network order */
	__u8 family;           /* 4 or 6 (not AF_*: the same numbers as packet_info.l3) */
	__u8 pad[3];           /* always zero: hash keys compare every byte */
};

#define ENDPOINT_MAX_ENTRIES 4096

/* ifindex of the host-side veth -> the endpoint behind it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINT_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct endpoint_info);
} endpoints SEC(".maps");

/* A direct-mapped copy of the endpoints map: slot ifindex % ENDPOINT_SLOTS holds the endpoint of
 * that ifindex when no other live endpoint took the slot first (info.ifindex says whose it is;
 * 0 = empty). An array lookup is inlined by the verifier (~1 ns) where the hash costs ~17 ns,
 * and every packet a pod sends starts with this lookup. Interface indexes grow by one per
 * device created in the node's namespace, so two live endpoints share a slot only 65,536
 * devices apart; the later one is found in the hash. The agent writes a slot after the hash
 * entry and empties it before removing the hash entry (Datapath.UpsertEndpoint). A new slot is
 * written while its device is still down; a live endpoint's slot changes in place (identity,
 * policy flags), which a packet sees field by field, each an aligned 32-bit word, as if it had
 * come just before or just after that field's change. */
#define ENDPOINT_SLOTS 65536

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ENDPOINT_SLOTS);
	__type(key, __u32);
	__type(value, struct endpoint_info);
} endpoint_slots SEC(".maps");

/* a pod address -> the endpoint that owns it (local delivery). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * ENDPOINT_MAX_ENTRIES);
	__type(key, struct endpoint_ip_key);
	__type(value, struct endpoint_info);
} endpoints_by_ip SEC(".maps");

/* The longest prefix of each family that holds every local endpoint's address: an address
 * outside it cannot be a local endpoint's, so most traffic to other nodes and the world is
 * told so without the endpoints_by_ip lookup (~20 ns). The agent widens it before it writes an
 * endpoint (Datapath.UpsertEndpoint) and never narrows it, so it never leaves out an endpoint
 * the program can find. All zero (never written) covers everything.
 * The agent rewrites the value in place while packets read it, so a packet may see a mix of
 * old and new bytes. An address is inside when it differs from the network only outside the
 * mask, and a widening is written as two updates: the narrower mask over the old network,
 * then the new network. Every mix of bytes either update leaves still holds every endpoint
 * that was there before. */
struct endpoint_prefix {
	__be32 v4_net;
	__be32 v4_mask;
	__be32 v6_net[4];
	__be32 v6_mask[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct endpoint_prefix);
} endpoint_prefix SEC(".maps");

static __always_inline struct endpoint_info *endpoint_by_ifindex(__u32 ifindex)
{
	__u32 slot = ifindex % ENDPOINT_SLOTS;
	struct endpoint_info *ep = bpf_map_lookup_elem(&endpoint_slots, &slot);

	if (ep && ep->ifindex == ifindex)
		return ep;
	return bpf_map_lookup_elem(&endpoints, &ifindex);
}

static __always_inline struct endpoint_info *endpoint_by_ipv4(__be32 addr)
{
	struct endpoint_ip_key key = { .addr = { addr, 0, 0, 0 }, .family = 4 };
	__u32 zero = 0;
	struct endpoint_prefix *p = bpf_map_lookup_elem(&endpoint_prefix, &zero);

	if (p && ((addr ^ p->v4_net) & p->v4_mask))
		return NULL;
	return bpf_map_lookup_elem(&endpoints_by_ip, &key);
}

static __always_inline struct endpoint_info *endpoint_by_ipv6(const __be32 *addr)
{
	struct endpoint_ip_key key = { .addr = { addr[0], addr[1], addr[2], addr[3] }, .family = 6 };
	__u32 zero = 0;
	struct endpoint_prefix *p = bpf_map_lookup_elem(&endpoint_prefix, &zero);

	if (p && (((addr[0] ^ p->v6_net[0]) & p->v6_mask[0]) | ((addr[1] ^ p->v6_net[1]) & p->v6_mask[1]) |
		  ((addr[2] ^ p->v6_net[2]) & p->v6_mask[2]) | ((addr[3] ^ p->v6_net[3]) & p->v6_mask[3])))
		return NULL;
	return bpf_map_lookup_elem(&endpoints_by_ip, &key);
}

static __always_inline bool mac_equal(const __u8 *a, const __u8 *b)
{
	/* Two loads each instead of a byte loop; MACs sit at even offsets everywhere here. */
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

static __always_inline bool ipv6_equal(const __be32 *a, const __be32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

#endif /* MEMBRANE_ENDPOINT_H */
