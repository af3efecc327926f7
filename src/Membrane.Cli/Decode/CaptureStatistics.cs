using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Membrane.Cli.Decode;

/// <summary>
/// Totals of a capture and its protocol hierarchy, as <c>membrane pcap stats</c> prints them.
/// It is a <see cref="DecodeWriter"/> that ignores fields: the decoder walks each packet as for
/// <c>pcap decode</c> and this class only sees the chain of layers (<c>eth ip udp vxlan eth ip tcp</c>).
/// <list type="bullet">
/// <item><see cref="Protocols"/>: how many packets contain each protocol at least once, and their bytes.</item>
/// <item><see cref="Hierarchy"/>: the tree of layer chains, counted the way <c>tshark -z io,phs</c>
/// counts (a node is a prefix of the chain; a packet counts once at every node on its chain). Like
/// phs, which walks only the top level of the protocol tree, the chain leaves out headers that
/// Wireshark nests inside another protocol: IPv6 extension headers and the datagram an ICMP error quotes.</item>
/// </list>
/// Bytes are on-the-wire lengths (tshark's <c>frame.len</c>); the elapsed time runs from the first
/// packet's timestamp to the last one's.
/// </summary>
internal sealed class CaptureStatistics : DecodeWriter
{
    private readonly List<string> _layers = [];
    private readonly List<string> _chain = [];
    private long _length;
    private bool _hasError;
    private long _firstTimestamp = long.MaxValue;
    private long _lastTimestamp = long.MinValue;

    public CaptureStatistics()
        : base(Stream.Null)
    {
    }

    /// <summary>One node of the protocol hierarchy.</summary>
    internal sealed class Node(string protocol)
    {
        public string Protocol { get; } = protocol;
        public long Packets { get; set; }
        public long Bytes { get; set; }
        public List<Node> Children { get; } = [];

        public Node Child(string protocol)
        {
            foreach (var child in Children)
            {
                if (child.Protocol == protocol)
                {
                    return child;
                }
            }
            var node = new Node(protocol);
            Children.Add(node);
            return node;
        }
    }

    public long Packets { get; private set; }

    public long TotalBytes { get; private set; }

    /// <summary>Packets in which the decoder reported at least one error.</summary>
    public long PacketsWithErrors { get; private set; }

    /// <summary>Seconds from the first to the last packet (0 with fewer than two packets).</summary>
    public double Seconds => Packets < 2 ? 0 : (_lastTimestamp - _firstTimestamp) / 1e9;

    /// <summary>Packets per second over <see cref="Seconds"/> (0 when no time elapsed).</summary>
    public double PacketsPerSecond => Seconds > 0 ? Packets / Seconds : 0;

    /// <summary>Per protocol: packets containing it at least once, in the order protocols were first seen.</summary>
    public Dictionary<string, (long Packets, long Bytes)> Protocols { get; } = [];

    /// <summary>The roots of the hierarchy (normally one: the link layer).</summary>
    public Node Hierarchy { get; } = new("");

    protected override bool WantsFields => false;

    public override void Flush()
    {
    }

    protected override void BeginPacket(long number, long timestampNanoseconds, int originalLength, int capturedLength, IReadOnlyList<string> comments)
    {
        _layers.Clear();
        _chain.Clear();
        _length = originalLength;
        _hasError = false;
        _firstTimestamp = Math.Min(_firstTimestamp, timestampNanoseconds);
        _lastTimestamp = Math.Max(_lastTimestamp, timestampNanoseconds);
    }

    protected override void EndPacket()
    {
        Packets++;
        TotalBytes += _length;
        if (_hasError)
        {
            PacketsWithErrors++;
        }
        var node = Hierarchy;
        foreach (var protocol in _chain)
        {
            node = node.Child(protocol);
            node.Packets++;
            node.Bytes += _length;
        }
        for (var i = 0; i < _layers.Count; i++)
        {
            if (_layers.IndexOf(_layers[i]) == i)
            {
                Protocols.TryGetValue(_layers[i], out var counts);
                Protocols[_layers[i]] = (counts.Packets + 1, counts.Bytes + _length);
            }
        }
    }

    internal override void BeginLayer(string protocol, int offset, int depth)
    {
        _layers.Add(protocol);
        if (depth == 0 && protocol is not (Decode.Protocols.Ipv6HopByHop or Decode.Protocols.Ipv6Routing
            or Decode.Protocols.Ipv6Fragment or Decode.Protocols.Ipv6DestinationOptions))
        {
            _chain.Add(protocol);
        }
    }

    internal override void EndLayer()
    {
    }

    internal override void Error(string reason, int offset, string message) => _hasError = true;

    protected override void WriteField(string name, string label, ReadOnlySpan<byte> value)
    {
    }

    /// <summary><c>{"packets":…,"bytes":…,"seconds":…,"packetsPerSecond":…,"packetsWithErrors":…,"protocols":{"eth":…},"hierarchy":[…]}</c> and a newline.</summary>
    public void WriteJson(Stream output)
    {
        using (var json = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteNumber("packets"u8, Packets);
            json.WriteNumber("bytes"u8, TotalBytes);
            json.WriteNumber("seconds"u8, Math.Round(Seconds, 9));
            json.WriteNumber("packetsPerSecond"u8, Math.Round(PacketsPerSecond, 3));
            json.WriteNumber("packetsWithErrors"u8, PacketsWithErrors);
            json.WriteStartObject("protocols"u8);
            foreach (var (protocol, counts) in Protocols)
            {
                json.WriteNumber(protocol, counts.Packets);
            }
            json.WriteEndObject();
            json.WriteStartArray("hierarchy"u8);
            foreach (var child in Hierarchy.Children)
            {
                WriteNode(json, child);
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        output.WriteByte((byte)'\n');
    }

    /// <summary>A summary and the hierarchy as an indented table, like <c>tshark -z io,phs</c>.</summary>
    public void WriteText(TextWriter output)
    {
        var c = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(c, $"packets:              {Packets}"));
        output.WriteLine(string.Create(c, $"bytes:                {TotalBytes}"));
        output.WriteLine(string.Create(c, $"seconds:              {Seconds:F6}"));
        output.WriteLine(string.Create(c, $"packets per second:   {PacketsPerSecond:F1}"));
        output.WriteLine(string.Create(c, $"packets with errors:  {PacketsWithErrors}"));
        output.WriteLine();
        output.WriteLine("Packets containing each protocol");
        output.WriteLine(string.Create(c, $"{"protocol",-40}{"packets",10}{"bytes",14}"));
        foreach (var (protocol, counts) in Protocols)
        {
            output.WriteLine(string.Create(c, $"{protocol,-40}{counts.Packets,10}{counts.Bytes,14}"));
        }
        output.WriteLine();
        output.WriteLine("Protocol hierarchy (as tshark -z io,phs)");
        output.WriteLine(string.Create(c, $"{"protocol",-40}{"packets",10}{"bytes",14}"));
        foreach (var child in Hierarchy.Children)
        {
            WriteNode(output, child, 0);
        }
    }

    private static void WriteNode(Utf8JsonWriter json, Node node)
    {
        json.WriteStartObject();
        json.WriteString("protocol"u8, node.Protocol);
        json.WriteNumber("packets"u8, node.Packets);
        json.WriteNumber("bytes"u8, node.Bytes);
        if (node.Children.Count > 0)
        {
            json.WriteStartArray("children"u8);
            foreach (var child in node.Children)
            {
                WriteNode(json, child);
            }
            json.WriteEndArray();
        }
        json.WriteEndObject();
    }

    private static void WriteNode(TextWriter output, Node node, int depth)
    {
        var name = new StringBuilder().Append(' ', depth * 2).Append(node.Protocol).ToString();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-40}{node.Packets,10}{node.Bytes,14}"));
        foreach (var child in node.Children)
        {
            WriteNode(output, child, depth + 1);
        }
    }
}
