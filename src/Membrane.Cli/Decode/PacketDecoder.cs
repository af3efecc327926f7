using Membrane.Packets;

namespace Membrane.Cli.Decode;

/// <summary>
/// Turns a packet into fields: Membrane.Packets' <see cref="PacketDissector"/> finds the layers
/// (link, IP and IPv6 extension headers, transport, tunnels into the inner frame, the datagram an
/// ICMP error quotes) and this class reports every header field of each one to a
/// <see cref="DecodeWriter"/> under its Wireshark display-filter name, in the order Wireshark's
/// protocol tree has them, so that field by field the occurrences line up with
/// <c>tshark -T fields -E occurrence=a</c>.
/// <para>
/// Where tshark's output depends on its state or preferences, this decoder is what a stateless
/// dissector can be, matching tshark run with <c>-o ip.defragment:FALSE -o ipv6.defragment:FALSE
/// -o tcp.relative_sequence_numbers:FALSE -d udp.port==8472,vxlan</c>:
/// </para>
/// <list type="bullet">
/// <item>Sequence numbers are raw (<c>tcp.seq_raw</c>, <c>tcp.ack_raw</c>, SACK edges as sent); relative ones need the conversation.</item>
/// <item>Fragments are not reassembled; the dissector treats even a first fragment's bytes as payload.</item>
/// <item>IPv6 extension headers are layers of their own (<c>ipv6.hopopts</c>, <c>ipv6.routing</c>,
/// <c>ipv6.dstopts</c>, <c>ipv6.fraghdr</c>), as in tshark's <c>frame.protocols</c>.</item>
/// <item>An ICMP error's quoted datagram comes as layers of depth 1 after the ICMP layer (tshark nests them in <c>icmp</c>).</item>
/// <item>An 802.1ad (0x88A8) service tag is Wireshark's <c>ieee8021ad</c> layer; 802.1Q and 0x9100 tags are <c>vlan</c>.</item>
/// </list>
/// A malformed header ends the walk with an error (reason code, byte offset, message); a wrong
/// checksum is reported with reason <see cref="BadChecksum"/> and the walk goes on. Nothing here
/// throws on packet bytes.
/// </summary>
internal static partial class PacketDecoder
{
    /// <summary>The reason reported for a checksum that does not verify (decoding continues).</summary>
    public const string BadChecksum = "BadChecksum";

    // One options object per truncation mode, so that decoding allocates nothing per packet.
    private static readonly DissectorOptions s_strict = new();
    private static readonly DissectorOptions s_truncated = new() { AllowTruncated = true };

    /// <summary>Decodes <paramref name="data"/>, which starts with a <paramref name="linkType"/> header, into <paramref name="writer"/>.</summary>
    /// <param name="linkType">What <paramref name="data"/> starts with (a pcap LINKTYPE_ value).</param>
    /// <param name="data">The captured bytes.</param>
    /// <param name="originalLength">The length on the wire; when it exceeds the captured bytes (snap length), length fields that run past the capture are accepted.</param>
    /// <param name="writer">Where layers, fields and errors go.</param>
    public static void Decode(LinkType linkType, ReadOnlySpan<byte> data, int originalLength, DecodeWriter writer)
    {
        var start = 0;
        if ((ushort)linkType is LinuxCookedV1 or LinuxCookedV2)
        {
            // tcpdump -i any: a Linux cooked header, then the network layer it names.
            if (!LinuxCooked(data, (ushort)linkType == LinuxCookedV2, writer, out linkType, out start))
            {
                return;
            }
        }
        var packet = data.Slice(start);
        var dissector = new PacketDissector(packet, linkType, data.Length < originalLength ? s_truncated : s_strict);
        var state = new State(packet, writer) { Base = start, WireLength = Math.Max(originalLength, data.Length) - start, FirstFragmentProtocol = -1 };
        while (dissector.TryNext(out var layer))
        {
            Layer(ref state, layer);
        }
        if (dissector.HasError)
        {
            var error = dissector.Error.WithOffset(start);
            writer.Error(ReasonName(error.Reason), error.Offset, error.Message);
        }
    }

    /// <summary>What one layer needs to know about the layers before it.</summary>
    private ref struct State(ReadOnlySpan<byte> packet, DecodeWriter output)
    {
        public readonly ReadOnlySpan<byte> Packet = packet;
        public readonly DecodeWriter Output = output;

        /// <summary>Where <see cref="Packet"/> starts in the captured bytes (after a Linux cooked header), for the offsets reported.</summary>
        public int Base;

        /// <summary>The bytes of <see cref="Packet"/> on the wire (more than captured under a snap length).</summary>
        public int WireLength;

        /// <summary>The EtherType of the previous Ethernet header or tag: a VLAN tag's TPID (0x8100, 0x88A8, 0x9100).</summary>
        public ushort TagProtocol;

        /// <summary>The upper-layer length the innermost IP header claims (total or payload length minus headers), for <c>tcp.len</c>.</summary>
        public int UpperLayerLength;

        /// <summary>The innermost IP datagram is a fragment: its transport checksum covers bytes elsewhere.</summary>
        public bool Fragment;

        /// <summary>
        /// An IPv6 routing header has segments left: the transport pseudo-header names the final
        /// destination (RFC 8200 §8.1), which the dissector's checksum does not look up, so none is verified.
        /// </summary>
        public bool Rerouted;

        /// <summary>
        /// The transport protocol of a first fragment (offset 0, more to come), or -1. The dissector
        /// does not reassemble, so it hands the fragment's bytes over as payload; tshark without
        /// reassembly still shows the transport header the first fragment starts with, and so does this decoder.
        /// </summary>
        public int FirstFragmentProtocol;
    }

    private static void Layer(ref State state, in Layer layer)
    {
        var packet = state.Packet;
        var w = state.Output;
        // A datagram quoted by an ICMP error is nested under the ICMP layer, as in tshark's tree.
        var depth = (layer.Flags & LayerFlags.InsideIcmpError) != 0 ? 1 : 0;
        switch (layer.Kind)
        {
            case LayerKind.Ethernet:
                w.BeginLayer(Protocols.Eth, state.Base + layer.Offset, depth);
                Ethernet(ref state, layer.AsEthernet(packet));
                break;
            case LayerKind.Vlan:
                var tag = layer.AsVlan(packet);
                w.BeginLayer(state.TagProtocol == EtherTypes.QinQ ? Protocols.Ieee8021ad : Protocols.Vlan, state.Base + layer.Offset, depth);
                Vlan(ref state, tag);
                break;
            case LayerKind.Arp:
                w.BeginLayer(Protocols.Arp, state.Base + layer.Offset, depth);
                Arp(w, layer.AsArp(packet));
                break;
            case LayerKind.IPv4:
                w.BeginLayer(Protocols.Ip, state.Base + layer.Offset, depth);
                Ipv4(ref state, layer.AsIpv4(packet), layer.Offset);
                break;
            case LayerKind.IPv6:
                w.BeginLayer(Protocols.Ipv6, state.Base + layer.Offset, depth);
                Ipv6(ref state, layer.AsIpv6(packet), layer.Offset);
                break;
            case LayerKind.Ipv6HopByHop or LayerKind.Ipv6Routing or LayerKind.Ipv6Fragment or LayerKind.Ipv6DestinationOptions:
                w.BeginLayer(ExtensionProtocol(layer.Kind), state.Base + layer.Offset, depth);
                Ipv6Extension(ref state, layer.AsIpv6Extension(packet));
                break;
            case LayerKind.Ah:
                w.BeginLayer(Protocols.Ah, state.Base + layer.Offset, depth);
                Ah(w, layer.AsIpv6Extension(packet));
                break;
            case LayerKind.Esp:
                w.BeginLayer(Protocols.Esp, state.Base + layer.Offset, depth);
                // RFC 4303 §2: the SPI and sequence number are all that is in the clear.
                w.Hex("esp.spi", "ESP SPI", ReadUInt32(packet.Slice(layer.Offset)), 8);
                w.Uint("esp.sequence", "ESP Sequence", ReadUInt32(packet.Slice(layer.Offset + 4)));
                break;
            case LayerKind.Tcp:
                w.BeginLayer(Protocols.Tcp, state.Base + layer.Offset, depth);
                Tcp(ref state, layer.AsTcp(packet), quoted: depth > 0);
                break;
            case LayerKind.Udp:
                w.BeginLayer(Protocols.Udp, state.Base + layer.Offset, depth);
                Udp(w, layer.AsUdp(packet));
                break;
            case LayerKind.Icmpv4:
                w.BeginLayer(Protocols.Icmp, state.Base + layer.Offset, depth);
                Icmpv4(w, layer.AsIcmpv4(packet));
                break;
            case LayerKind.Icmpv6:
                w.BeginLayer(Protocols.Icmpv6, state.Base + layer.Offset, depth);
                Icmpv6(w, layer.AsIcmpv6(packet));
                break;
            case LayerKind.Vxlan:
                w.BeginLayer(Protocols.Vxlan, state.Base + layer.Offset, depth);
                Vxlan(w, layer.AsVxlan(packet));
                break;
            case LayerKind.Geneve:
                w.BeginLayer(Protocols.Geneve, state.Base + layer.Offset, depth);
                Geneve(w, layer.AsGeneve(packet));
                break;
            case LayerKind.Seed:
                w.BeginLayer(Protocols.Seed, state.Base + layer.Offset, depth);
                Seed(w, layer.AsSeed(packet));
                break;
            case LayerKind.Payload when state.FirstFragmentProtocol >= 0:
                FirstFragment(ref state, layer, depth);
                return;
            default:
                return; // payload: application data, a later fragment's bytes, an unknown protocol
        }
        w.EndLayer();
        VerifyChecksum(ref state, layer);
    }

    /// <summary>The transport header at the start of a first fragment (RFC 791 §3.2: it carries the upper-layer header).</summary>
    private static void FirstFragment(ref State state, in Layer layer, int depth)
    {
        var protocol = state.FirstFragmentProtocol;
        state.FirstFragmentProtocol = -1;
        var bytes = layer.Region(state.Packet);
        var w = state.Output;
        switch (protocol)
        {
            case IpProtocols.Tcp when TcpHeader.TryRead(bytes, out var tcp, out _):
                w.BeginLayer(Protocols.Tcp, state.Base + layer.Offset, depth);
                Tcp(ref state, tcp, quoted: depth > 0);
                break;
            case IpProtocols.Udp when UdpHeader.TryRead(bytes, allowTruncated: true, out var udp, out _):
                w.BeginLayer(Protocols.Udp, state.Base + layer.Offset, depth);
                Udp(w, udp);
                break;
            case IpProtocols.Icmp when Icmpv4Header.TryRead(bytes, out var icmp, out _):
                w.BeginLayer(Protocols.Icmp, state.Base + layer.Offset, depth);
                Icmpv4(w, icmp);
                break;
            case IpProtocols.Icmpv6 when Icmpv6Header.TryRead(bytes, out var icmp6, out _):
                w.BeginLayer(Protocols.Icmpv6, state.Base + layer.Offset, depth);
                Icmpv6(w, icmp6);
                break;
            default:
                return; // too short for its header: the bytes stay payload
        }
        w.EndLayer();
    }

    /// <summary>Reports a checksum that does not verify, naming the field's byte offset and the value it should hold.</summary>
    private static void VerifyChecksum(ref State state, in Layer layer)
    {
        var fieldOffset = layer.Kind switch
        {
            LayerKind.IPv4 => 10,
            LayerKind.Tcp => 16,
            LayerKind.Udp => 6,
            LayerKind.Icmpv4 or LayerKind.Icmpv6 => 2,
            _ => -1,
        };
        // A fragment's transport checksum covers the whole datagram, which one packet does not hold.
        if (fieldOffset < 0 || ((state.Fragment || state.Rerouted) && layer.Kind != LayerKind.IPv4) || layer.VerifyChecksum(state.Packet) != ChecksumStatus.Bad)
        {
            return;
        }
        var covered = layer.Kind == LayerKind.IPv4 ? layer.Header(state.Packet) : layer.Region(state.Packet);
        uint pseudo = 0;
        if (layer.Kind is LayerKind.Tcp or LayerKind.Udp or LayerKind.Icmpv6)
        {
            PacketChecksums.TryPseudoHeaderSum(state.Packet, layer, out pseudo);
        }
        var found = ReadUInt16(covered.Slice(fieldOffset));
        // The expected value: the covered bytes with the field taken as zero (fieldOffset is even, so the parts stay aligned).
        var expected = InternetChecksum.Finish(InternetChecksum.Sum(covered.Slice(fieldOffset + 2), InternetChecksum.Sum(covered.Slice(0, fieldOffset), pseudo)));
        if (layer.Kind == LayerKind.Udp && expected == 0)
        {
            expected = 0xFFFF; // RFC 768: a computed zero is sent as all ones
        }
        var at = state.Base + layer.Offset + fieldOffset;
        state.Output.Error(BadChecksum, at, FormattableString.Invariant(
            $"failed to verify {LayerNames.Display(layer.Kind)} checksum at byte {at}: found 0x{found:x4}, expected 0x{expected:x4}"));
    }

    private static string ExtensionProtocol(LayerKind kind) => kind switch
    {
        LayerKind.Ipv6HopByHop => Protocols.Ipv6HopByHop,
        LayerKind.Ipv6Routing => Protocols.Ipv6Routing,
        LayerKind.Ipv6Fragment => Protocols.Ipv6Fragment,
        _ => Protocols.Ipv6DestinationOptions,
    };

    private static string ReasonName(ParseErrorReason reason) => reason switch
    {
        ParseErrorReason.Truncated => nameof(ParseErrorReason.Truncated),
        ParseErrorReason.BadVersion => nameof(ParseErrorReason.BadVersion),
        ParseErrorReason.BadHeaderLength => nameof(ParseErrorReason.BadHeaderLength),
        ParseErrorReason.HeaderLengthBeyondPacket => nameof(ParseErrorReason.HeaderLengthBeyondPacket),
        ParseErrorReason.BadTotalLength => nameof(ParseErrorReason.BadTotalLength),
        ParseErrorReason.TotalLengthBeyondCapture => nameof(ParseErrorReason.TotalLengthBeyondCapture),
        ParseErrorReason.BadOptionLength => nameof(ParseErrorReason.BadOptionLength),
        ParseErrorReason.ExtensionHeaderLoop => nameof(ParseErrorReason.ExtensionHeaderLoop),
        ParseErrorReason.ExtensionHeaderChainTooLong => nameof(ParseErrorReason.ExtensionHeaderChainTooLong),
        ParseErrorReason.BadAddressLength => nameof(ParseErrorReason.BadAddressLength),
        ParseErrorReason.TunnelTooDeep => nameof(ParseErrorReason.TunnelTooDeep),
        ParseErrorReason.UnsupportedLinkType => nameof(ParseErrorReason.UnsupportedLinkType),
        _ => reason.ToString(),
    };

    private static ushort ReadUInt16(ReadOnlySpan<byte> data) => System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(data);

    private static uint ReadUInt32(ReadOnlySpan<byte> data) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(data);
}
