using Membrane.Packets;

namespace Membrane.Cli.Decode;

// Network layer: IPv4 with options (RFC 791) and IPv6 with its extension headers (RFC 8200).
internal static partial class PacketDecoder
{
    private static void Ipv4(ref State state, Ipv4Header ip, int offset)
    {
        var w = state.Output;
        // A total length of 0 (BIG TCP, TSO): tshark shows the rest of the frame on the wire as ip.len.
        var total = Ipv4Header.ResolveTotalLength(ip.TotalLength, state.WireLength - offset);
        var header = ip.HeaderBytes;
        w.Uint("ip.version", "Version", ip.Version);
        w.Uint("ip.hdr_len", "Header Length", (ulong)ip.HeaderLength);
        w.Hex("ip.dsfield", "Differentiated Services Field", ip.TypeOfService, 2);
        w.Uint("ip.dsfield.dscp", "Differentiated Services Codepoint", ip.Dscp);
        w.Uint("ip.dsfield.ecn", "Explicit Congestion Notification", ip.Ecn);
        w.Uint("ip.len", "Total Length", (ulong)total);
        w.Hex("ip.id", "Identification", ip.Identification, 4);
        // ip.flags is the 3-bit field shifted down (DF alone is 0x02): Wireshark masks 0xe0.
        w.Hex("ip.flags", "Flags", ip.Flags, 2);
        w.Bool("ip.flags.rb", "Reserved bit", ip.ReservedFlag);
        w.Bool("ip.flags.df", "Don't fragment", ip.DontFragment);
        w.Bool("ip.flags.mf", "More fragments", ip.MoreFragments);
        w.Uint("ip.frag_offset", "Fragment Offset (8-byte units)", ip.FragmentOffset);
        w.Uint("ip.ttl", "Time to Live", ip.TimeToLive);
        w.Uint("ip.proto", "Protocol", ip.Protocol);
        w.Hex("ip.checksum", "Header Checksum", ip.HeaderChecksum, 4);
        w.Ipv4("ip.src", "Source Address", header.Slice(12, 4));
        w.Ipv4("ip.dst", "Destination Address", header.Slice(16, 4));
        Ipv4Options(w, ip);
        state.UpperLayerLength = total - ip.HeaderLength;
        state.Fragment = ip.IsFragment;
        state.Rerouted = false;
        state.FirstFragmentProtocol = ip.MoreFragments && ip.FragmentOffset == 0 ? ip.Protocol : -1;
    }

    /// <summary>The option list (RFC 791 §3.1): Wireshark shows each option's type bits, length and known contents.</summary>
    private static void Ipv4Options(DecodeWriter w, Ipv4Header ip)
    {
        foreach (var option in ip.GetOptions())
        {
            var raw = option.Raw;
            var type = option.Type;
            var name = type switch
            {
                0 => "ip.options.eol",
                1 => "ip.options.nop",
                7 => "ip.options.record_route",
                68 => "ip.options.timestamp",
                131 => "ip.options.route",
                137 => "ip.options.source_route",
                148 => "ip.options.routeralert",
                _ => null,
            };
            if (name is not null)
            {
                w.Bytes(name, "Option", raw);
            }
            w.Uint("ip.opt.type", "Type", type);
            w.Bool("ip.opt.type.copy", "Copy on fragmentation", option.Copied);
            w.Uint("ip.opt.type.class", "Class", option.Class);
            w.Uint("ip.opt.type.number", "Number", option.Number);
            if (raw.Length < 2)
            {
                continue; // EOL and NOP are a single byte
            }
            w.Uint("ip.opt.len", "Length", (ulong)raw.Length);
            switch (type)
            {
                case 7 when raw.Length >= 3:
                    // Record route (RFC 791 §3.1): slots before the pointer are filled, the rest are empty.
                    var pointer = raw[2];
                    w.Uint("ip.opt.ptr", "Pointer", pointer);
                    for (var slot = 3; slot + 4 <= raw.Length; slot += 4)
                    {
                        w.Ipv4(slot < pointer - 1 ? "ip.rec_rt" : "ip.empty_rt", slot < pointer - 1 ? "Recorded Route" : "Empty Route", raw.Slice(slot, 4));
                    }
                    break;
                case 68 when raw.Length >= 4:
                    // Internet timestamp (RFC 791 §3.1): overflow and flag share byte 3; flag 0 is timestamps
                    // only, flags 1 and 3 are address/timestamp pairs.
                    w.Uint("ip.opt.ptr", "Pointer", raw[2]);
                    w.Uint("ip.opt.overflow", "Overflow", (ulong)(raw[3] >> 4));
                    w.Hex("ip.opt.flag", "Flag", (ulong)(raw[3] & 0x0F), 2);
                    var withAddresses = (raw[3] & 0x0F) != 0;
                    for (var entry = 4; entry + (withAddresses ? 8 : 4) <= raw.Length; entry += withAddresses ? 8 : 4)
                    {
                        if (withAddresses)
                        {
                            w.Ipv4("ip.opt.time_stamp_addr", "Address", raw.Slice(entry, 4));
                            w.Uint("ip.opt.time_stamp", "Time stamp", ReadUInt32(raw.Slice(entry + 4)));
                        }
                        else
                        {
                            w.Uint("ip.opt.time_stamp", "Time stamp", ReadUInt32(raw.Slice(entry)));
                        }
                    }
                    break;
                case 148 when raw.Length >= 4:
                    w.Uint("ip.opt.ra", "Router Alert", ReadUInt16(raw.Slice(2)));
                    break;
            }
        }
    }

    private static void Ipv6(ref State state, Ipv6Header ip, int offset)
    {
        var w = state.Output;
        w.Uint("ipv6.version", "Version", ip.Version);
        // Wireshark also files the version nibble under ip.version, so that "ip.version == 6" matches.
        w.Uint("ip.version", "Version", ip.Version);
        w.Hex("ipv6.tclass", "Traffic Class", ip.TrafficClass, 8);
        w.Uint("ipv6.tclass.dscp", "Differentiated Services Codepoint", ip.Dscp);
        w.Uint("ipv6.tclass.ecn", "Explicit Congestion Notification", ip.Ecn);
        w.Hex("ipv6.flow", "Flow Label", ip.FlowLabel, 6);
        w.Uint("ipv6.plen", "Payload Length", ip.PayloadLength);
        w.Uint("ipv6.nxt", "Next Header", ip.NextHeader);
        w.Uint("ipv6.hlim", "Hop Limit", ip.HopLimit);
        Span<byte> address = stackalloc byte[16];
        ip.Source.Write(address);
        w.Ipv6("ipv6.src", "Source Address", address);
        ip.Destination.Write(address);
        w.Ipv6("ipv6.dst", "Destination Address", address);
        state.UpperLayerLength = Ipv6Header.ResolvePayloadLength(ip.PayloadLength, ip.NextHeader, state.WireLength - offset);
        state.Fragment = false;
        state.Rerouted = false;
        state.FirstFragmentProtocol = -1;
    }

    /// <summary>An IPv6 extension header (RFC 8200 §4.3–4.6): tshark's ipv6.hopopts, ipv6.routing, ipv6.fraghdr, ipv6.dstopts.</summary>
    private static void Ipv6Extension(ref State state, Ipv6ExtensionHeader ext)
    {
        var w = state.Output;
        state.UpperLayerLength -= ext.Length;
        switch (ext.Type)
        {
            case IpProtocols.HopByHopOptions:
            case IpProtocols.DestinationOptions:
                var hopByHop = ext.Type == IpProtocols.HopByHopOptions;
                w.Uint(hopByHop ? "ipv6.hopopts.nxt" : "ipv6.dstopts.nxt", "Next Header", ext.NextHeader);
                w.Uint(hopByHop ? "ipv6.hopopts.len" : "ipv6.dstopts.len", "Length", ext.HeaderExtensionLength);
                w.Uint(hopByHop ? "ipv6.hopopts.len_oct" : "ipv6.dstopts.len_oct", "Length (bytes)", (ulong)ext.Length);
                foreach (var option in ext.GetOptions())
                {
                    w.Hex("ipv6.opt.type", "Type", option.Type, 2);
                    if (option.Type == 0)
                    {
                        continue; // Pad1: one byte, and Wireshark shows no breakdown of it
                    }
                    // Option type bits (RFC 8200 §4.2): 2 bits action, 1 bit "may change en route", 5 bits rest.
                    w.Uint("ipv6.opt.type.action", "Action", (ulong)(option.Type >> 6));
                    w.Bool("ipv6.opt.type.change", "May Change", (option.Type & 0x20) != 0);
                    w.Hex("ipv6.opt.type.rest", "Low-Order Bits", (ulong)(option.Type & 0x1F), 2);
                    w.Uint("ipv6.opt.length", "Length", (ulong)option.DataLength);
                    switch (option.Type)
                    {
                        case 1:
                            w.Bytes("ipv6.opt.padn", "PadN", option.Data);
                            break;
                        case 5 when option.Data.Length >= 2:
                            w.Uint("ipv6.opt.router_alert", "Router Alert", ReadUInt16(option.Data)); // RFC 2711
                            break;
                        case 0xC2 when option.Data.Length >= 4:
                            w.Uint("ipv6.opt.jumbo", "Payload Length", ReadUInt32(option.Data)); // RFC 2675
                            break;
                    }
                }
                break;
            case IpProtocols.Routing:
                w.Uint("ipv6.routing.nxt", "Next Header", ext.NextHeader);
                w.Uint("ipv6.routing.len", "Length", ext.HeaderExtensionLength);
                w.Uint("ipv6.routing.len_oct", "Length (bytes)", (ulong)ext.Length);
                w.Uint("ipv6.routing.type", "Type", ext.RoutingType);
                w.Uint("ipv6.routing.segleft", "Segments Left", ext.SegmentsLeft);
                state.Rerouted |= ext.SegmentsLeft > 0;
                var routing = ext.RoutingData;
                if (ext.RoutingType == 0)
                {
                    // Type 0 (RFC 2460 §4.4, deprecated by RFC 5095): 4 reserved bytes, then the addresses.
                    w.Bytes("ipv6.routing.src.reserved", "Reserved", routing.Slice(0, 4));
                    for (var a = 4; a + 16 <= routing.Length; a += 16)
                    {
                        w.Ipv6("ipv6.routing.src.addr", "Address", routing.Slice(a, 16));
                    }
                }
                else if (ext.RoutingType == 4 && routing.Length >= 4)
                {
                    // Segment routing header (RFC 8754 §2): last entry, flags, tag, then the segment list.
                    w.Uint("ipv6.routing.srh.last_entry", "Last Entry", routing[0]);
                    w.Hex("ipv6.routing.srh.flags", "Flags", routing[1], 2);
                    w.Bytes("ipv6.routing.srh.tag", "Tag", routing.Slice(2, 2));
                    for (var a = 4; a + 16 <= routing.Length; a += 16)
                    {
                        w.Ipv6("ipv6.routing.srh.addr", "Address", routing.Slice(a, 16));
                    }
                }
                break;
            case IpProtocols.Fragment:
                var bytes = ext.Bytes;
                w.Uint("ipv6.fraghdr.nxt", "Next Header", ext.NextHeader);
                w.Hex("ipv6.fraghdr.reserved_octet", "Reserved octet", bytes[1], 2);
                w.Uint("ipv6.fraghdr.offset", "Offset (8-byte units)", ext.FragmentOffset);
                w.Uint("ipv6.fraghdr.reserved_bits", "Reserved bits", ext.FragmentReservedBits);
                w.Bool("ipv6.fraghdr.more", "More Fragments", ext.MoreFragments);
                w.Hex("ipv6.fraghdr.ident", "Identification", ext.Identification, 8);
                state.Fragment = ext.FragmentOffset != 0 || ext.MoreFragments;
                state.FirstFragmentProtocol = ext.MoreFragments && ext.FragmentOffset == 0 ? ext.NextHeader : -1;
                break;
        }
    }

    /// <summary>IPsec AH (RFC 4302 §2): the dissector stops after it, the fields are still worth showing.</summary>
    private static void Ah(DecodeWriter w, Ipv6ExtensionHeader ah)
    {
        var bytes = ah.Bytes;
        w.Uint("ah.next_header", "Next header", ah.NextHeader);
        w.Uint("ah.length", "Length", ah.HeaderExtensionLength);
        w.Hex("ah.spi", "AH SPI", ReadUInt32(bytes.Slice(4)), 8);
        if (bytes.Length >= 12)
        {
            // A payload length of 0 (8 bytes) is malformed (RFC 4302 §2.2) but must not take the decoder down.
            w.Uint("ah.sequence", "AH Sequence", ReadUInt32(bytes.Slice(8)));
        }
    }
}
