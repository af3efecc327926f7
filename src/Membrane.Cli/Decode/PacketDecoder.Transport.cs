using Membrane.Packets;

namespace Membrane.Cli.Decode;

// Transport layer: TCP (RFC 9293) with its options, UDP (RFC 768).
internal static partial class PacketDecoder
{
    private static void Tcp(ref State state, TcpHeader tcp, bool quoted)
    {
        var w = state.Output;
        w.Uint("tcp.srcport", "Source Port", tcp.SourcePort);
        w.Uint("tcp.dstport", "Destination Port", tcp.DestinationPort);
        if (!quoted)
        {
            // The segment length comes from the IP header's claim, not from what was captured.
            w.Uint("tcp.len", "TCP Segment Len", (ulong)Math.Max(0, state.UpperLayerLength - tcp.HeaderLength));
        }
        w.Uint("tcp.seq_raw", "Sequence Number (raw)", tcp.SequenceNumber);
        w.Uint("tcp.ack_raw", "Acknowledgment number (raw)", tcp.AcknowledgmentNumber);
        w.Uint("tcp.hdr_len", "Header Length", (ulong)tcp.HeaderLength);
        var flags = tcp.FlagsField;
        w.Hex("tcp.flags", "Flags", flags, 4);
        // Wireshark 4.0 names: res (3 reserved bits), ae (RFC 3540's NS bit, now AccECN), cwr, ece, urg, ack, push, reset, syn, fin.
        w.Bool("tcp.flags.res", "Reserved", (flags & 0x0E00) != 0);
        w.Bool("tcp.flags.ae", "Accurate ECN", (flags & 0x0100) != 0);
        w.Bool("tcp.flags.cwr", "Congestion Window Reduced", (flags & 0x0080) != 0);
        w.Bool("tcp.flags.ece", "ECN-Echo", (flags & 0x0040) != 0);
        w.Bool("tcp.flags.urg", "Urgent", (flags & 0x0020) != 0);
        w.Bool("tcp.flags.ack", "Acknowledgment", (flags & 0x0010) != 0);
        w.Bool("tcp.flags.push", "Push", (flags & 0x0008) != 0);
        w.Bool("tcp.flags.reset", "Reset", (flags & 0x0004) != 0);
        w.Bool("tcp.flags.syn", "Syn", (flags & 0x0002) != 0);
        w.Bool("tcp.flags.fin", "Fin", (flags & 0x0001) != 0);
        w.Text("tcp.flags.str", "TCP Flags", FlagString(flags, stackalloc char[12]));
        w.Uint("tcp.window_size_value", "Window", tcp.Window);
        w.Hex("tcp.checksum", "Checksum", tcp.Checksum, 4);
        w.Uint("tcp.urgent_pointer", "Urgent Pointer", tcp.UrgentPointer);
        if (tcp.HeaderLength > TcpHeader.MinLength)
        {
            w.Bytes("tcp.options", "Options", tcp.Options);
            TcpOptions(w, tcp.Options);
        }
    }

    /// <summary>tshark's <c>tcp.flags.str</c>: twelve positions, reserved bits first, a middle dot for a clear bit.</summary>
    private static ReadOnlySpan<char> FlagString(ushort flags, Span<char> text)
    {
        const string Letters = "RRRACEUAPRSF";
        for (var bit = 0; bit < 12; bit++)
        {
            text[bit] = (flags & (0x800 >> bit)) != 0 ? Letters[bit] : '\u00b7';
        }
        return text;
    }

    /// <summary>
    /// The TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018). Unlike IPv4, Wireshark keeps listing
    /// after an end-of-list option (each padding zero is another EOL), so the walk does too.
    /// </summary>
    private static void TcpOptions(DecodeWriter w, ReadOnlySpan<byte> options)
    {
        for (var i = 0; i < options.Length;)
        {
            var kind = options[i];
            var length = 1;
            if (kind > 1)
            {
                if (i + 1 >= options.Length || options[i + 1] < 2 || i + options[i + 1] > options.Length)
                {
                    return; // TcpHeader.TryRead reported malformed options already; nothing more to show
                }
                length = options[i + 1];
            }
            var raw = options.Slice(i, length);
            i += length;
            var name = kind switch
            {
                0 => "tcp.options.eol",
                1 => "tcp.options.nop",
                2 => "tcp.options.mss",
                3 => "tcp.options.wscale",
                4 => "tcp.options.sack_perm",
                5 => "tcp.options.sack",
                8 => "tcp.options.timestamp",
                // Kinds Wireshark decodes under names of their own (MD5, user timeout, TCP-AO, MPTCP,
                // Fast Open, experimental): only their kind and length are reported here.
                19 or 27 or 28 or 29 or 30 or 34 or 69 or 253 or 254 => null,
                _ => "tcp.options.unknown",
            };
            if (name is not null)
            {
                w.Bytes(name, "Option", raw);
            }
            w.Uint("tcp.option_kind", "Kind", kind);
            if (length == 1)
            {
                continue;
            }
            w.Uint("tcp.option_len", "Length", (ulong)length);
            switch (kind)
            {
                case 2 when length == 4:
                    w.Uint("tcp.options.mss_val", "MSS Value", ReadUInt16(raw.Slice(2)));
                    break;
                case 3 when length == 3:
                    w.Uint("tcp.options.wscale.shift", "Shift count", raw[2]);
                    // RFC 7323 §2.3: a shift above 14 is treated as 14.
                    w.Uint("tcp.options.wscale.multiplier", "Multiplier", 1UL << Math.Min((int)raw[2], 14));
                    break;
                case 5:
                    var blocks = (length - 2) / 8;
                    for (var b = 0; b < blocks; b++)
                    {
                        w.Uint("tcp.options.sack_le", "left edge", ReadUInt32(raw.Slice(2 + (8 * b))));
                        w.Uint("tcp.options.sack_re", "right edge", ReadUInt32(raw.Slice(6 + (8 * b))));
                    }
                    w.Uint("tcp.options.sack.count", "number of SACK blocks", (ulong)blocks);
                    break;
                case 8 when length == 10:
                    w.Uint("tcp.options.timestamp.tsval", "Timestamp value", ReadUInt32(raw.Slice(2)));
                    w.Uint("tcp.options.timestamp.tsecr", "Timestamp echo reply", ReadUInt32(raw.Slice(6)));
                    break;
                default:
                    if (name == "tcp.options.unknown")
                    {
                        w.Bytes("tcp.options.unknown.payload", "Payload", raw.Slice(2));
                    }
                    break;
            }
        }
    }

    private static void Udp(DecodeWriter w, UdpHeader udp)
    {
        w.Uint("udp.srcport", "Source Port", udp.SourcePort);
        w.Uint("udp.dstport", "Destination Port", udp.DestinationPort);
        w.Uint("udp.length", "Length", udp.LengthField);
        w.Hex("udp.checksum", "Checksum", udp.Checksum, 4);
    }
}
