using System.Text;
using Membrane.Capture.Internal;

namespace Membrane.Capture;

/// <summary>
/// Assembles one pcapng block in a reused buffer: <see cref="Begin"/> writes the type and a
/// placeholder length, fields and options follow, <see cref="End"/> writes the trailing length
/// and patches the leading one (§3.1).
/// </summary>
internal sealed class PcapNgBlockBuilder
{
    private byte[] _buffer = new byte[4096];
    private int _length;

    public bool BigEndian { get; set; }

    public ReadOnlySpan<byte> Block => _buffer.AsSpan(0, _length);

    public void Begin(uint type)
    {
        _length = 0;
        U32(type);
        U32(0);
    }

    public void U16(ushort value) => Endian.Write16(Grow(2), value, BigEndian);

    public void U32(uint value) => Endian.Write32(Grow(4), value, BigEndian);

    public void I64(long value) => Endian.Write64(Grow(8), value, BigEndian);

    /// <summary>Raw bytes followed by zero padding to a 32-bit boundary.</summary>
    public void Padded(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Grow(bytes.Length));
        Grow(PcapNgFormat.Pad4(bytes.Length) - bytes.Length).Clear();
    }

    public void Option(ushort code, ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue)
        {
            throw new ArgumentException(FormattableString.Invariant(
                $"failed to write pcapng option {code}: its value is {value.Length} bytes, more than an option holds (65,535)"));
        }
        U16(code);
        U16((ushort)value.Length);
        Padded(value);
    }

    public void Option(ushort code, string? value)
    {
        if (value is null)
        {
            return;
        }
        var byteCount = Encoding.UTF8.GetByteCount(value);
        Span<byte> bytes = byteCount <= 512 ? stackalloc byte[byteCount] : new byte[byteCount];
        Encoding.UTF8.GetBytes(value, bytes);
        Option(code, bytes);
    }

    public void Option(ushort code, byte value) => Option(code, [value]);

    public void Option(ushort code, long value)
    {
        Span<byte> bytes = stackalloc byte[8];
        Endian.Write64(bytes, value, BigEndian);
        Option(code, bytes);
    }

    /// <summary>Ends an option list that holds at least one option (opt_endofopt, §3.5).</summary>
    public void EndOfOptions(int optionsStart)
    {
        if (_length > optionsStart)
        {
            U16(PcapNgFormat.OptEndOfOptions);
            U16(0);
        }
    }

    public int Position => _length;

    public void End()
    {
        var total = (uint)(_length + 4);
        U32(total);
        Endian.Write32(_buffer.AsSpan(4), total, BigEndian);
    }

    private Span<byte> Grow(int count)
    {
        if (_length + count > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_length + count, _buffer.Length * 2));
        }
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }
}
