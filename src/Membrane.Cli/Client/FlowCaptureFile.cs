using System.Text;
using Membrane.Api;
using Membrane.Capture;

namespace Membrane.Cli.Client;

/// <summary>
/// <c>membrane observe --write FILE</c>: the captured bytes of each flow as a pcapng enhanced
/// packet block (draft-ietf-opsawg-pcapng §4.3) stamped with the flow's time, its original
/// length the packet's whole length, and one <c>opt_comment</c> that Wireshark shows as the
/// packet comment (tshark's <c>frame.comment</c>): verdict, drop reason, record kind,
/// direction, observation point, and each end's pod or address and identity. One interface
/// (link type Ethernet: the datapath captures from the MAC header on) per device the flows
/// were seen on.
/// </summary>
internal sealed class FlowCaptureFile : IDisposable
{
    private readonly PcapNgWriter _writer;
    private readonly Dictionary<(int Index, string? Name), int> _interfaces = [];

    /// <summary>Creates (or truncates) <paramref name="path"/> and writes its section header.</summary>
    /// <exception cref="IOException">The file cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to create it.</exception>
    public FlowCaptureFile(string path)
    {
        Path = path;
        _writer = new PcapNgWriter(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16),
            new PcapNgWriterOptions { Comments = ["flows observed by membrane"] });
    }

    /// <summary>The file written.</summary>
    public string Path { get; }

    /// <summary>Packets written.</summary>
    public long Written => _writer.PacketCount;

    /// <summary>Flows that came without packet bytes (nothing to write).</summary>
    public long WithoutPacket { get; private set; }

    /// <summary>Writes <paramref name="flow"/>'s packet; false when it carries none.</summary>
    public bool Write(Flow flow)
    {
        if (flow.PacketData is not { Length: > 0 } data)
        {
            WithoutPacket++;
            return false;
        }
        var id = Interface(flow.Interface);
        // The datapath captures a prefix of the packet; the original length is the whole one.
        var original = Math.Max(flow.PacketLength ?? data.Length, data.Length);
        _writer.WritePacket(id, CaptureTime.ToUnixNanoseconds(flow.Time), data, original, [Comment(flow)]);
        return true;
    }

    /// <summary>The packet comment of <paramref name="flow"/>: space-separated key=value facts.</summary>
    public static string Comment(Flow flow)
    {
        var text = new StringBuilder();
        void Add(string key, string? value)
        {
            if (value is { Length: > 0 })
            {
                text.Append(text.Length == 0 ? "" : " ").Append(key).Append('=').Append(value.Contains(' ', StringComparison.Ordinal) ? $"\"{value}\"" : value);
            }
        }
        Add("verdict", flow.Verdict);
        Add("drop_reason", FlowFormat.Reason(flow));
        Add("type", FlowFormat.Kind(flow));
        Add("direction", FlowFormat.Direction(flow));
        Add("observation_point", flow.TraceObservationPoint);
        Add("src", FlowFormat.Name(flow.Source, flow.IP?.Source));
        Add("src_identity", flow.Source?.Identity.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add("dst", FlowFormat.Name(flow.Destination, flow.IP?.Destination));
        Add("dst_identity", flow.Destination?.Identity.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add("node", flow.NodeName);
        return text.ToString();
    }

    private int Interface(FlowInterface? device)
    {
        var key = (device?.Index ?? 0, device?.Name);
        if (!_interfaces.TryGetValue(key, out var id))
        {
            id = _writer.AddInterface(new CaptureInterface
            {
                LinkType = LinkType.Ethernet,
                Name = device?.Name ?? (device is null ? "membrane" : $"ifindex {device.Index}"),
                Description = device is null ? "flows without a device" : $"ifindex {device.Index} on the membrane node",
                TimestampResolution = TimestampResolution.Nanoseconds,
            });
            _interfaces.Add(key, id);
        }
        return id;
    }

    /// <summary>Flushes and closes the file.</summary>
    public void Dispose() => _writer.Dispose();
}
