using Membrane.Packets;

namespace Membrane.Cli.Decode;

// Overlays: VXLAN (RFC 7348, with the group-policy extension of draft-smith-vxlan-group-policy)
// and Geneve (RFC 8926); and the seed frame, Membrane's own event header (DESIGN.md).
internal static partial class PacketDecoder
{
    private static void Vxlan(DecodeWriter w, VxlanHeader vxlan)
    {
        // Wireshark reads the first 16 bits as one flags field: G (group policy), I (VNI valid),
        // D (don't learn), A (policy applied); the other bits are reserved (mask 0x77b7).
        var flags = vxlan.FlagsField;
        w.Hex("vxlan.flags", "Flags", flags, 4);
        w.Bool("vxlan.flag_g", "GBP Extension", (flags & 0x8000) != 0);
        w.Bool("vxlan.flag_i", "VXLAN Network ID (VNI)", (flags & 0x0800) != 0);
        w.Bool("vxlan.flag_d", "Don't Learn", (flags & 0x0040) != 0);
        w.Bool("vxlan.flag_a", "Policy Applied", (flags & 0x0008) != 0);
        w.Hex("vxlan.flags_reserved", "Reserved", (ulong)(flags & 0x77B7), 4);
        w.Uint("vxlan.gbp", "Group Policy ID", vxlan.GroupPolicyId);
        w.Uint("vxlan.vni", "VXLAN Network Identifier (VNI)", vxlan.Vni);
        w.Uint("vxlan.reserved8", "Reserved", vxlan.Reserved);
    }

    private static void Geneve(DecodeWriter w, GeneveHeader geneve)
    {
        w.Uint("geneve.version", "Version", geneve.Version);
        // Wireshark files the header's option length (in bytes) and each option's length under one name.
        w.Uint("geneve.option.length", "Options Length (bytes)", (ulong)geneve.OptionsLength);
        w.Hex("geneve.flags", "Flags", geneve.FlagsByte, 2);
        w.Bool("geneve.flags.oam", "Operations, Administration and Management Frame", geneve.Oam);
        w.Bool("geneve.flags.critical", "Critical Options Present", geneve.Critical);
        w.Bool("geneve.flags.reserved", "Reserved", (geneve.FlagsByte & 0x3F) != 0);
        w.Hex("geneve.proto_type", "Protocol Type", geneve.ProtocolType, 4);
        w.Hex("geneve.vni", "Virtual Network Identifier (VNI)", geneve.Vni, 6);
        w.Hex("geneve.reserved", "Reserved", geneve.Reserved, 2);
        if (geneve.OptionsLength == 0)
        {
            return;
        }
        w.Bytes("geneve.options", "Options", geneve.Options);
        foreach (var option in geneve.GetOptions())
        {
            // RFC 8926 §3.5: class, type (high bit: critical), 3 reserved bits, length in 4-byte words (data only).
            var raw = option.Raw;
            w.Bytes("geneve.option", "Option", raw);
            w.Hex("geneve.option.class", "Class", option.OptionClass, 4);
            w.Hex("geneve.option.type", "Type", option.Type, 2);
            w.Bool("geneve.option.type.critical", "Critical Option", option.IsCritical);
            w.Hex("geneve.option.flags", "Flags", (ulong)(raw[3] & 0xE0), 2);
            w.Bool("geneve.option.flags.reserved", "Reserved", option.ReservedBits != 0);
            w.Uint("geneve.option.length", "Length (bytes)", (ulong)raw.Length);
            w.Bytes("geneve.option.unknown.data", "Unknown Option Data", option.Data);
        }
    }

    /// <summary>The seed frame's 8-byte header (<c>!BBH I</c>) and its RFC 1071 checksum over the whole frame.</summary>
    private static void Seed(DecodeWriter w, SeedFrame seed)
    {
        w.Uint("seed.version", "Version", seed.Version);
        w.Uint("seed.type", "Type", seed.Type);
        w.Hex("seed.flags", "Flags", seed.Flags, 2);
        w.Uint("seed.length", "Total Length", seed.TotalLength);
        w.Hex("seed.id", "Id", seed.Id, 8);
        w.Uint("seed.payload_length", "Payload Length", (ulong)seed.Payload.Length);
        w.Hex("seed.checksum", "Checksum (RFC 1071, whole frame)", seed.Checksum, 4);
    }
}
