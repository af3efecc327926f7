/* Shared basics for every Membrane datapath program: includes, attributes, return codes.
 * Helpers in bpf/lib are `static __always_inline` (as in Cilium's bpf/lib) so that each
 * entry program is verified as one function. */
#ifndef MEMBRANE_COMMON_H
#define MEMBRANE_COMMON_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Direction of the hook a program runs at, from the point of view of the device it is
 * attached to. Values are part of the metrics key (maps.h) and mirrored in C#. */
enum membrane_dir {
	DIR_UNKNOWN = 0,
	DIR_INGRESS = 1,
	DIR_EGRESS = 2,
};

/* Keeps a struct's BTF description in the object even when no map or global uses it (a
 * record type that only ever lives in ring-buffer memory), so that user space - and the
 * C# layout test - can read its layout from the object. The pointer is placed in a
 * section libbpf does not load; no code references it. */
#define BTF_ANCHOR(tag) \
	struct tag *__btf_anchor_##tag __attribute__((section(".btf_anchor"), used))
#define BTF_ANCHOR_ENUM(tag) \
	enum tag *__btf_anchor_enum_##tag __attribute__((section(".btf_anchor"), used))

BTF_ANCHOR_ENUM(membrane_dir);

#endif /* MEMBRANE_COMMON_H */
