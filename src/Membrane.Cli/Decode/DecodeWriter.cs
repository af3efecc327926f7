using System.Text;
using Membrane.Capture;

namespace Membrane.Cli.Decode;

/// <summary>The two renderings of a decoded packet.</summary>
internal enum DecodeFormat
{
    /// <summary>An indented tree, one field per line, like <c>tshark -V</c>.</summary>
    Text,

    /// <summary>One JSON object per packet per line (<c>pcap decode --output json</c>).</summary>
    Json,
}

/// <summary>
/// Renders packets as their full field breakdown: layers in wire order (a tunnel's inner
/// headers after its outer ones, an ICMP error's quoted datagram one level deeper after the ICMP layer),
/// each with Wireshark display-filter field names and tshark's value formats
/// (<see cref="TsharkFormat"/>), plus every dissection error with its reason and byte offset.
/// <para>
/// This is the one per-packet output of the CLI: <c>pcap decode</c> feeds it records from a
/// capture file and <c>capture</c> feeds it packets from a live socket, through
/// <see cref="WritePacket"/>. The dissection itself is <see cref="PacketDecoder"/>, which calls
/// back into the typed field methods below; subclasses only decide how a field is laid out.
/// Writers issue many small writes: give them a buffered stream, and call <see cref="Flush"/>
/// (or dispose) before reporting anything on stderr, so that stdout and stderr stay in order.
/// </para>
/// </summary>
internal abstract class DecodeWriter : IDisposable
{
    private byte[] _scratch = new byte[256];

    protected DecodeWriter(Stream output) => Output = output;

    /// <summary>The (buffered) stream the rendering goes to; <see cref="Stream.Null"/> for a consumer that renders nothing per packet.</summary>
    protected Stream Output { get; }

    /// <summary>A writer for <paramref name="format"/> over <paramref name="output"/>; the writer buffers but does not own the stream.</summary>
    public static DecodeWriter Create(Stream output, DecodeFormat format) => format switch
    {
        DecodeFormat.Json => new JsonDecodeWriter(output),
        _ => new TextDecodeWriter(output),
    };

    /// <summary>
    /// Decodes and writes one packet.
    /// </summary>
    /// <param name="number">The packet's 1-based number in its capture.</param>
    /// <param name="timestampNanoseconds">Capture time, nanoseconds since the Unix epoch (UTC).</param>
    /// <param name="originalLength">The packet's length on the wire (may exceed <paramref name="data"/> when the capture was truncated by its snap length).</param>
    /// <param name="linkType">What the first byte of <paramref name="data"/> is: Ethernet, raw IP, …</param>
    /// <param name="data">The captured bytes.</param>
    /// <param name="comments">pcapng packet comments (tshark's <c>frame.comment</c>), if any.</param>
    public void WritePacket(long number, long timestampNanoseconds, int originalLength, LinkType linkType, ReadOnlySpan<byte> data,
        IReadOnlyList<string>? comments = null)
    {
        BeginPacket(number, timestampNanoseconds, originalLength, data.Length, comments ?? []);
        // Both enums carry the pcap LINKTYPE_ numbers.
        PacketDecoder.Decode((Membrane.Packets.LinkType)(ushort)linkType, data, originalLength, this);
        EndPacket();
    }

    /// <summary>Pushes buffered output to the stream.</summary>
    public abstract void Flush();

    public void Dispose()
    {
        Flush();
        GC.SuppressFinalize(this);
    }

    // --- the decoder's side: packet and layer structure ---

    protected abstract void BeginPacket(long number, long timestampNanoseconds, int originalLength, int capturedLength, IReadOnlyList<string> comments);

    protected abstract void EndPacket();

    /// <summary>Starts a layer named by its Wireshark protocol filter name, at a byte offset in the packet; depth &gt; 0 nests it in the previous layer (an ICMP error's quoted packet).</summary>
    internal abstract void BeginLayer(string protocol, int offset, int depth);

    internal abstract void EndLayer();

    /// <summary>Reports a dissection error (a typed reason, the byte offset it was found at, a sentence). Decoding may continue after it.</summary>
    internal abstract void Error(string reason, int offset, string message);

    /// <summary>False for a consumer that only wants the layer structure (statistics): fields are then not formatted at all.</summary>
    protected virtual bool WantsFields => true;

    /// <summary>Writes one field whose value is already formatted as UTF-8. <paramref name="label"/> is the human name the text tree shows.</summary>
    protected abstract void WriteField(string name, string label, ReadOnlySpan<byte> value);

    // --- typed fields: each formats as tshark -T fields does, then hands the text to WriteField ---

    internal void Uint(string name, string label, ulong value)
    {
        if (WantsFields)
        {
            WriteField(name, label, _scratch.AsSpan(0, TsharkFormat.Decimal(value, _scratch)));
        }
    }

    internal void Hex(string name, string label, ulong value, int digits)
    {
        if (WantsFields)
        {
            WriteField(name, label, _scratch.AsSpan(0, TsharkFormat.Hex(value, digits, _scratch)));
        }
    }

    internal void Bool(string name, string label, bool value)
    {
        if (WantsFields)
        {
            WriteField(name, label, _scratch.AsSpan(0, TsharkFormat.Boolean(value, _scratch)));
        }
    }

    internal void Mac(string name, string label, ReadOnlySpan<byte> value)
    {
        if (WantsFields)
        {
            WriteField(name, label, _scratch.AsSpan(0, TsharkFormat.Mac(value, _scratch)));
        }
    }

    internal void Ipv4(string name, string label, ReadOnlySpan<byte> value)
    {
        if (WantsFields)
        {
            WriteField(name, label, _scratch.AsSpan(0, TsharkFormat.Ipv4(value, _scratch)));
        }
    }

    internal void Ipv6(string name, string label, ReadOnlySpan<byte> value)
    {
        if (WantsFields)
        {
            WriteField(name, label, _scratch.AsSpan(0, TsharkFormat.Ipv6(value, _scratch)));
        }
    }

    /// <summary>A byte-string field; tshark prints an empty one as &lt;MISSING&gt;, so an empty value is not written.</summary>
    internal void Bytes(string name, string label, ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || !WantsFields)
        {
            return;
        }
        if (_scratch.Length < value.Length * 2)
        {
            _scratch = new byte[Math.Max(value.Length * 2, _scratch.Length * 2)];
        }
        WriteField(name, label, _scratch.AsSpan(0, TsharkFormat.Bytes(value, _scratch)));
    }

    /// <summary>A field whose value is text (e.g. <c>tcp.flags.str</c>).</summary>
    internal void Text(string name, string label, ReadOnlySpan<char> value)
    {
        if (!WantsFields)
        {
            return;
        }
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (_scratch.Length < max)
        {
            _scratch = new byte[Math.Max(max, _scratch.Length * 2)];
        }
        WriteField(name, label, _scratch.AsSpan(0, Encoding.UTF8.GetBytes(value, _scratch)));
    }
}
