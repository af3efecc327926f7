using System.Buffers.Binary;
using Membrane.Packets;

namespace Membrane.Cli.Decode;

// ICMP (RFC 792) and ICMPv6 (RFC 4443) with neighbour discovery (RFC 4861). The datagram an
// error quotes is not part of these layers: the dissector yields it as layers of its own.
internal static partial class PacketDecoder
{
    private static void Icmpv4(DecodeWriter w, Icmpv4Header icmp)
    {
        var bytes = icmp.Message;
        w.Uint("icmp.type", "Type", icmp.Type);
        w.Uint("icmp.code", "Code", icmp.Code);
        w.Hex("icmp.checksum", "Checksum", icmp.Checksum, 4);
        switch (icmp.Type)
        {
            case 0 or 8 or 13 or 14 or 15 or 16 or 17 or 18:
                // Echo, timestamp, information and mask messages: identifier and sequence number.
                // Wireshark also shows both byte-swapped (*_le), for stacks that send them little-endian.
                w.Uint("icmp.ident", "Identifier (BE)", icmp.Identifier);
                w.Uint("icmp.ident_le", "Identifier (LE)", BinaryPrimitives.ReverseEndianness(icmp.Identifier));
                w.Uint("icmp.seq", "Sequence Number (BE)", icmp.SequenceNumber);
                w.Uint("icmp.seq_le", "Sequence Number (LE)", BinaryPrimitives.ReverseEndianness(icmp.SequenceNumber));
                if (icmp.Type is 13 or 14 && bytes.Length >= 20)
                {
                    w.Uint("icmp.originate_timestamp", "Originate timestamp", ReadUInt32(bytes.Slice(8)));
                    w.Uint("icmp.receive_timestamp", "Receive timestamp", ReadUInt32(bytes.Slice(12)));
                    w.Uint("icmp.transmit_timestamp", "Transmit timestamp", ReadUInt32(bytes.Slice(16)));
                }
                break;
            case 3 when icmp.Code == 4:
                // Fragmentation needed: the next-hop MTU is the low half of the word (RFC 1191 §4).
                w.Bytes("icmp.unused", "Unused", bytes.Slice(4, 2));
                w.Uint("icmp.mtu", "MTU of next hop", icmp.NextHopMtu);
                break;
            case 3 or 4 or 11:
                w.Bytes("icmp.unused", "Unused", bytes.Slice(4, 4));
                break;
            case 5:
                w.Ipv4("icmp.redir_gw", "Gateway address", bytes.Slice(4, 4));
                break;
            case 12:
                w.Uint("icmp.pointer", "Pointer", icmp.Pointer);
                break;
        }
    }

    private static void Icmpv6(DecodeWriter w, Icmpv6Header icmp)
    {
        var data = icmp.Message;
        w.Uint("icmpv6.type", "Type", icmp.Type);
        w.Uint("icmpv6.code", "Code", icmp.Code);
        w.Hex("icmpv6.checksum", "Checksum", icmp.Checksum, 4);
        Span<byte> address = stackalloc byte[16];
        switch (icmp.Type)
        {
            case 1 or 3:
                w.Bytes("icmpv6.reserved", "Reserved", data.Slice(4, 4));
                break;
            case 2:
                w.Uint("icmpv6.mtu", "MTU", icmp.Mtu);
                break;
            case 4:
                w.Uint("icmpv6.pointer", "Pointer", icmp.Pointer);
                break;
            case 128 or 129:
                w.Hex("icmpv6.echo.identifier", "Identifier", icmp.Identifier, 4);
                w.Uint("icmpv6.echo.sequence_number", "Sequence", icmp.SequenceNumber);
                break;
            case 133:
                w.Bytes("icmpv6.reserved", "Reserved", data.Slice(4, 4));
                NeighbourDiscoveryOptions(w, icmp);
                break;
            case 134:
                // Router advertisement (RFC 4861 §4.2; flags from RFC 3775, RFC 4191, RFC 5175).
                var flags = data[5];
                w.Uint("icmpv6.nd.ra.cur_hop_limit", "Cur hop limit", icmp.CurrentHopLimit);
                w.Hex("icmpv6.nd.ra.flag", "Flags", flags, 2);
                w.Bool("icmpv6.nd.ra.flag.m", "Managed address configuration", icmp.ManagedFlag);
                w.Bool("icmpv6.nd.ra.flag.o", "Other configuration", icmp.OtherConfigFlag);
                w.Bool("icmpv6.nd.ra.flag.h", "Home Agent", (flags & 0x20) != 0);
                w.Uint("icmpv6.nd.ra.flag.prf", "Preference", (ulong)((flags >> 3) & 3));
                w.Bool("icmpv6.nd.ra.flag.p", "Proxy", (flags & 0x04) != 0);
                w.Uint("icmpv6.nd.ra.flag.rsv", "Reserved", (ulong)(flags & 0x03));
                w.Uint("icmpv6.nd.ra.router_lifetime", "Router lifetime (s)", icmp.RouterLifetime);
                w.Uint("icmpv6.nd.ra.reachable_time", "Reachable time (ms)", icmp.ReachableTime);
                w.Uint("icmpv6.nd.ra.retrans_timer", "Retrans timer (ms)", icmp.RetransTimer);
                NeighbourDiscoveryOptions(w, icmp);
                break;
            case 135:
                w.Bytes("icmpv6.reserved", "Reserved", data.Slice(4, 4));
                icmp.TargetAddress.Write(address);
                w.Ipv6("icmpv6.nd.ns.target_address", "Target Address", address);
                NeighbourDiscoveryOptions(w, icmp);
                break;
            case 136:
                // Neighbour advertisement: flags R, S, O and 29 reserved bits (RFC 4861 §4.4).
                var na = icmp.RestOfHeader;
                w.Hex("icmpv6.nd.na.flag", "Flags", na, 8);
                w.Bool("icmpv6.nd.na.flag.r", "Router", icmp.RouterFlag);
                w.Bool("icmpv6.nd.na.flag.s", "Solicited", icmp.SolicitedFlag);
                w.Bool("icmpv6.nd.na.flag.o", "Override", icmp.OverrideFlag);
                w.Uint("icmpv6.nd.na.flag.rsv", "Reserved", na & 0x1FFFFFFF);
                icmp.TargetAddress.Write(address);
                w.Ipv6("icmpv6.nd.na.target_address", "Target Address", address);
                NeighbourDiscoveryOptions(w, icmp);
                break;
            case 137:
                // Redirect (RFC 4861 §4.5): the better first hop, then the destination it is better for.
                w.Bytes("icmpv6.reserved", "Reserved", data.Slice(4, 4));
                icmp.TargetAddress.Write(address);
                w.Ipv6("icmpv6.nd.rd.target_address", "Target Address", address);
                icmp.RedirectDestination.Write(address);
                // Wireshark 4.0 files the redirect destination under this (oddly named) field.
                w.Ipv6("icmpv6.rd.na.destination_address", "Destination Address", address);
                NeighbourDiscoveryOptions(w, icmp);
                break;
        }
    }

    /// <summary>Neighbour-discovery options (RFC 4861 §4.6): type, length in units of 8 bytes, value.</summary>
    private static void NeighbourDiscoveryOptions(DecodeWriter w, Icmpv6Header icmp)
    {
        foreach (var option in icmp.GetNdOptions())
        {
            w.Uint("icmpv6.opt.type", "Type", option.Type);
            w.Uint("icmpv6.opt.length", "Length (x8 bytes)", option.LengthUnits);
            var value = option.Data;
            switch (option.Type)
            {
                case 1 or 2 when value.Length == 6:
                    // Source / target link-layer address: Wireshark writes the generic field and the specific one.
                    w.Mac("icmpv6.opt.linkaddr", "Link-layer address", value);
                    w.Mac(option.Type == 1 ? "icmpv6.opt.src_linkaddr" : "icmpv6.opt.target_linkaddr",
                        option.Type == 1 ? "Source Link-layer address" : "Target Link-layer address", value);
                    break;
                case 3 when value.Length == 30:
                    // Prefix information (RFC 4861 §4.6.2; R flag from RFC 6275 §7.2).
                    var flags = value[1];
                    w.Uint("icmpv6.opt.prefix.length", "Prefix Length", option.PrefixLength);
                    w.Hex("icmpv6.opt.prefix.flag", "Flag", flags, 2);
                    w.Bool("icmpv6.opt.prefix.flag.l", "On-link", option.OnLinkFlag);
                    w.Bool("icmpv6.opt.prefix.flag.a", "Autonomous address-configuration", option.AutonomousFlag);
                    w.Bool("icmpv6.opt.prefix.flag.r", "Router address", (flags & 0x20) != 0);
                    w.Uint("icmpv6.opt.prefix.flag.reserved", "Reserved", (ulong)(flags & 0x1F));
                    w.Uint("icmpv6.opt.prefix.valid_lifetime", "Valid Lifetime", option.ValidLifetime);
                    w.Uint("icmpv6.opt.prefix.preferred_lifetime", "Preferred Lifetime", option.PreferredLifetime);
                    w.Ipv6("icmpv6.opt.prefix", "Prefix", value.Slice(14, 16));
                    break;
                case 5 when value.Length == 6:
                    // MTU (RFC 4861 §4.6.4): two reserved bytes (Wireshark shows them without a value), then the MTU.
                    w.Uint("icmpv6.opt.mtu", "MTU", option.Mtu);
                    break;
                case 25 when value.Length >= 6:
                    // Recursive DNS servers (RFC 8106 §5.1): two reserved bytes, a lifetime, then addresses.
                    w.Uint("icmpv6.opt.rdnss.lifetime", "Lifetime", ReadUInt32(value.Slice(2)));
                    for (var a = 6; a + 16 <= value.Length; a += 16)
                    {
                        w.Ipv6("icmpv6.opt.rdnss", "Recursive DNS Servers", value.Slice(a, 16));
                    }
                    break;
            }
        }
    }
}
