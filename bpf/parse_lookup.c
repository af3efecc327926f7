// SPDX-License-Identifier: GPL-2.0
/* Parse Eth/IP/L4 and do one hash lookup: the cost of the front half of the datapath
 * (bench/ compares it with tc_noop). */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/maps.h"

SEC("tc")
int tc_parse_lookup(struct __sk_buff *skb)
{
	struct packet_info info;
	struct verdict_value *v;

	if (parse_packet(skb, &info))
		return TC_ACT_SHOT;
	v = verdict_lookup(info.l4_proto, info.dport);
	if (v && v->action == ACTION_DROP)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
