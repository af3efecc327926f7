using System.Text.Encodings.Web;
using System.Text.Json;

namespace Membrane.Cli.Decode;

/// <summary>
/// One JSON object per packet, one per line:
/// <c>{"number":1,"timestamp":"…","length":…,"capturedLength":…,["comments":[…],]"layers":[{"protocol":"eth","offset":0,"fields":{…}},…],"errors":[{"reason":"…","offset":…,"message":"…"}]}</c>.
/// A field that occurs several times in one layer (a TCP option kind, a Geneve option class)
/// becomes one value joined by commas, which is what <c>tshark -T fields -e NAME</c> prints
/// for it; a protocol that occurs twice (outer and inner IP) is two layers. A layer quoted
/// inside another (the packet an ICMP error carries) has <c>"depth":1</c>.
/// </summary>
internal sealed class JsonDecodeWriter : DecodeWriter
{
    private readonly Utf8JsonWriter _json;

    // The current layer's fields, buffered so that repeated names can be merged at EndLayer
    // (a JSON object cannot repeat a key). Arrays are reused across packets: no per-packet garbage.
    private string?[] _names = new string?[64];
    private int[] _starts = new int[64];
    private int[] _lengths = new int[64];
    private byte[] _values = new byte[4096];
    private byte[] _joined = new byte[1024];
    private int _fieldCount;
    private int _valuesLength;

    private readonly List<(string Reason, int Offset, string Message)> _errors = [];
    private readonly byte[] _timestamp = new byte[TsharkFormat.MaxScalarLength];

    public JsonDecodeWriter(Stream output)
        : base(output)
    {
        // Relaxed escaping keeps values such as tcp.flags.str's middle dots readable; it is still valid JSON.
        _json = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public override void Flush()
    {
        _json.Flush();
        Output.Flush();
    }

    protected override void BeginPacket(long number, long timestampNanoseconds, int originalLength, int capturedLength, IReadOnlyList<string> comments)
    {
        _errors.Clear();
        _json.WriteStartObject();
        _json.WriteNumber("number"u8, number);
        _json.WriteString("timestamp"u8, _timestamp.AsSpan(0, TsharkFormat.Timestamp(timestampNanoseconds, _timestamp)));
        _json.WriteNumber("length"u8, originalLength);
        _json.WriteNumber("capturedLength"u8, capturedLength);
        if (comments.Count > 0)
        {
            _json.WriteStartArray("comments"u8);
            foreach (var comment in comments)
            {
                _json.WriteStringValue(comment);
            }
            _json.WriteEndArray();
        }
        _json.WriteStartArray("layers"u8);
    }

    protected override void EndPacket()
    {
        _json.WriteEndArray();
        _json.WriteStartArray("errors"u8);
        foreach (var (reason, offset, message) in _errors)
        {
            _json.WriteStartObject();
            _json.WriteString("reason"u8, reason);
            _json.WriteNumber("offset"u8, offset);
            _json.WriteString("message"u8, message);
            _json.WriteEndObject();
        }
        _json.WriteEndArray();
        _json.WriteEndObject();
        // Utf8JsonWriter writes one root value; flushing into the buffered stream and resetting
        // lets the next packet start a new line (JSON Lines).
        _json.Flush();
        _json.Reset();
        Output.WriteByte((byte)'\n');
    }

    internal override void BeginLayer(string protocol, int offset, int depth)
    {
        _json.WriteStartObject();
        _json.WriteString("protocol"u8, protocol);
        _json.WriteNumber("offset"u8, offset);
        if (depth > 0)
        {
            _json.WriteNumber("depth"u8, depth);
        }
        _fieldCount = 0;
        _valuesLength = 0;
    }

    internal override void EndLayer()
    {
        _json.WriteStartObject("fields"u8);
        for (var i = 0; i < _fieldCount; i++)
        {
            var name = _names[i];
            if (name is null)
            {
                continue; // already merged into an earlier occurrence
            }
            var first = _values.AsSpan(_starts[i], _lengths[i]);
            var joinedLength = -1;
            for (var j = i + 1; j < _fieldCount; j++)
            {
                if (!string.Equals(_names[j], name, StringComparison.Ordinal))
                {
                    continue;
                }
                if (joinedLength < 0)
                {
                    joinedLength = Append(0, first);
                }
                joinedLength = Append(joinedLength, ","u8);
                joinedLength = Append(joinedLength, _values.AsSpan(_starts[j], _lengths[j]));
                _names[j] = null;
            }
            _json.WriteString(name, joinedLength < 0 ? first : _joined.AsSpan(0, joinedLength));
        }
        _json.WriteEndObject();
        _json.WriteEndObject();
        Array.Clear(_names, 0, _fieldCount);
        _fieldCount = 0;
    }

    internal override void Error(string reason, int offset, string message) => _errors.Add((reason, offset, message));

    protected override void WriteField(string name, string label, ReadOnlySpan<byte> value)
    {
        if (_fieldCount == _names.Length)
        {
            Array.Resize(ref _names, _names.Length * 2);
            Array.Resize(ref _starts, _starts.Length * 2);
            Array.Resize(ref _lengths, _lengths.Length * 2);
        }
        if (_valuesLength + value.Length > _values.Length)
        {
            Array.Resize(ref _values, Math.Max(_values.Length * 2, _valuesLength + value.Length));
        }
        value.CopyTo(_values.AsSpan(_valuesLength));
        _names[_fieldCount] = name;
        _starts[_fieldCount] = _valuesLength;
        _lengths[_fieldCount] = value.Length;
        _fieldCount++;
        _valuesLength += value.Length;
    }

    private int Append(int at, ReadOnlySpan<byte> part)
    {
        if (at + part.Length > _joined.Length)
        {
            Array.Resize(ref _joined, Math.Max(_joined.Length * 2, at + part.Length));
        }
        part.CopyTo(_joined.AsSpan(at));
        return at + part.Length;
    }
}
