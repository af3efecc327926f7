using System.Text.Json;
using Membrane.Cli.Decode;

namespace Membrane.Cli.Tests.Oracle;

/// <summary>One packet of <c>pcap decode --output json</c>, parsed back.</summary>
internal sealed record DecodedPacket(long Number, string Timestamp, int Length, int CapturedLength,
    List<DecodedLayer> Layers, List<(string Reason, int Offset, string Message)> Errors)
{
    /// <summary>Every field as tshark's -E occurrence=a lists it: occurrences in layer order, a layer's comma-joined repeats split.</summary>
    public Dictionary<string, List<string>> Occurrences()
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var layer in Layers)
        {
            foreach (var (name, value) in layer.Fields)
            {
                if (!result.TryGetValue(name, out var list))
                {
                    result[name] = list = [];
                }
                list.AddRange(value.Split(','));
            }
        }
        return result;
    }

    /// <summary>Decodes a capture in-process with the JSON writer and parses every line back.</summary>
    public static List<DecodedPacket> DecodeFile(string path)
    {
        using var output = new MemoryStream();
        var exit = PcapCommands.Decode(path, DecodeFormat.Json, count: null, output, TextWriter.Null);
        Assert.Equal(0, exit);
        return Parse(output.ToArray());
    }

    public static List<DecodedPacket> Parse(byte[] jsonLines)
    {
        var packets = new List<DecodedPacket>();
        var text = System.Text.Encoding.UTF8.GetString(jsonLines);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0)
            {
                continue;
            }
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var layers = new List<DecodedLayer>();
            foreach (var layer in root.GetProperty("layers").EnumerateArray())
            {
                var fields = new List<(string, string)>();
                foreach (var field in layer.GetProperty("fields").EnumerateObject())
                {
                    fields.Add((field.Name, field.Value.GetString()!));
                }
                layers.Add(new DecodedLayer(layer.GetProperty("protocol").GetString()!, layer.GetProperty("offset").GetInt32(),
                    layer.TryGetProperty("depth", out var depth) ? depth.GetInt32() : 0, fields));
            }
            var errors = root.GetProperty("errors").EnumerateArray()
                .Select(e => (e.GetProperty("reason").GetString()!, e.GetProperty("offset").GetInt32(), e.GetProperty("message").GetString()!))
                .ToList();
            packets.Add(new DecodedPacket(root.GetProperty("number").GetInt64(), root.GetProperty("timestamp").GetString()!,
                root.GetProperty("length").GetInt32(), root.GetProperty("capturedLength").GetInt32(), layers, errors));
        }
        return packets;
    }
}

internal sealed record DecodedLayer(string Protocol, int Offset, int Depth, List<(string Name, string Value)> Fields);
