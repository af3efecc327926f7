using System.Text;

namespace Membrane.Cli.Decode;

/// <summary>
/// The human rendering, shaped like <c>tshark -V</c>: a line per packet, a heading per layer
/// (its protocol's full name, filter name and byte offset), then one indented
/// <c>Label: value [field.name]</c> line per field; a field that refines the one above it
/// (<c>ip.flags.df</c> under <c>ip.flags</c>, <c>tcp.options.mss</c> under <c>tcp.options</c>) is
/// indented under it, as tshark's subtrees are; a quoted packet (inside an ICMP error) is indented
/// one step further; errors close the packet, each with its byte offset.
/// </summary>
internal sealed class TextDecodeWriter : DecodeWriter
{
    private const int Indent = 4;
    private readonly byte[] _line = new byte[4096];
    private readonly byte[] _number = new byte[TsharkFormat.MaxScalarLength];
    private readonly List<(string Reason, int Offset, string Message)> _errors = [];
    private int _depth;

    // The last field written at the layer's top level: a field whose name extends it is its child.
    private string? _parent;
    private bool _firstPacket = true;

    public TextDecodeWriter(Stream output)
        : base(output)
    {
    }

    public override void Flush() => Output.Flush();

    protected override void BeginPacket(long number, long timestampNanoseconds, int originalLength, int capturedLength, IReadOnlyList<string> comments)
    {
        _errors.Clear();
        if (!_firstPacket)
        {
            Output.WriteByte((byte)'\n');
        }
        _firstPacket = false;
        Write("Frame "u8);
        WriteNumber(number);
        Write(": "u8);
        WriteNumber(originalLength);
        Write(" bytes on wire, "u8);
        WriteNumber(capturedLength);
        Write(" bytes captured, "u8);
        Write(_number.AsSpan(0, TsharkFormat.Timestamp(timestampNanoseconds, _number)));
        Output.WriteByte((byte)'\n');
        foreach (var comment in comments)
        {
            WriteIndent(1);
            Write("Comment: "u8);
            WriteString(comment);
            Output.WriteByte((byte)'\n');
        }
    }

    protected override void EndPacket()
    {
        foreach (var (reason, offset, message) in _errors)
        {
            WriteIndent(1);
            Write("[Error "u8);
            WriteString(reason);
            Write(" at byte "u8);
            WriteNumber(offset);
            Write(": "u8);
            WriteString(message);
            Write("]\n"u8);
        }
    }

    internal override void BeginLayer(string protocol, int offset, int depth)
    {
        _depth = depth;
        _parent = null;
        WriteIndent(depth);
        WriteString(Protocols.Title(protocol));
        Write(" ["u8);
        WriteString(protocol);
        Write("] at byte "u8);
        WriteNumber(offset);
        Output.WriteByte((byte)'\n');
    }

    internal override void EndLayer()
    {
    }

    internal override void Error(string reason, int offset, string message) => _errors.Add((reason, offset, message));

    protected override void WriteField(string name, string label, ReadOnlySpan<byte> value)
    {
        var child = _parent is not null && name.Length > _parent.Length && name[_parent.Length] == '.' &&
            name.StartsWith(_parent, StringComparison.Ordinal);
        if (!child)
        {
            _parent = name;
        }
        WriteIndent(_depth + (child ? 2 : 1));
        WriteString(label);
        Write(": "u8);
        Write(value);
        Write(" ["u8);
        WriteString(name);
        Write("]\n"u8);
    }

    private void WriteIndent(int depth)
    {
        var spaces = _line.AsSpan(0, Math.Min(depth * Indent, _line.Length));
        spaces.Fill((byte)' ');
        Output.Write(spaces);
    }

    private void WriteNumber(long value) => Write(_number.AsSpan(0, TsharkFormat.SignedDecimal(value, _number)));

    private void Write(ReadOnlySpan<byte> utf8) => Output.Write(utf8);

    private void WriteString(string text)
    {
        if (Encoding.UTF8.GetMaxByteCount(text.Length) <= _line.Length)
        {
            Output.Write(_line.AsSpan(0, Encoding.UTF8.GetBytes(text, _line)));
            return;
        }
        Output.Write(Encoding.UTF8.GetBytes(text));
    }
}
