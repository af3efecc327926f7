namespace Membrane.Capture.Internal;

/// <summary>
/// A forward-only window over a stream that knows the file offset of every byte. Readers ask
/// for "at least n bytes" and get a span of the internal buffer; spans and memories handed out
/// stay valid until the next <see cref="Fill"/> (which may compact the buffer). The stream need
/// not be seekable, so pipes and sockets work.
/// </summary>
internal sealed class ByteSource : IDisposable
{
    private const int InitialSize = 64 * 1024;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private byte[] _buffer = new byte[InitialSize];
    private int _start;        // first unread byte in _buffer
    private int _end;          // one past the last valid byte in _buffer
    private long _bufferOffset; // file offset of _buffer[0]
    private bool _endOfStream;

    public ByteSource(Stream stream, bool leaveOpen)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead)
        {
            throw new ArgumentException("failed to open capture: the stream is not readable", nameof(stream));
        }
        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <summary>The file offset of the next unread byte.</summary>
    public long Position => _bufferOffset + _start;

    /// <summary>How many unread bytes are buffered.</summary>
    public int Available => _end - _start;

    /// <summary>
    /// Buffers at least <paramref name="count"/> unread bytes unless the stream ends first, and
    /// returns how many are buffered (less than <paramref name="count"/> only at the end).
    /// </summary>
    public int Fill(int count)
    {
        if (_end - _start >= count || _endOfStream)
        {
            return _end - _start;
        }
        var unread = _end - _start;
        if (_buffer.Length < count)
        {
            var bigger = new byte[Math.Max(count, (int)Math.Min(Array.MaxLength, 2L * _buffer.Length))];
            Buffer.BlockCopy(_buffer, _start, bigger, 0, unread);
            _buffer = bigger;
            Rebase(unread);
        }
        else if (_buffer.Length - _start < count)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, unread);
            Rebase(unread);
        }
        while (_end - _start < count)
        {
            var read = _stream.Read(_buffer, _end, _buffer.Length - _end);
            if (read == 0)
            {
                _endOfStream = true;
                break;
            }
            _end += read;
        }
        return _end - _start;
    }

    /// <summary>The next <paramref name="count"/> buffered bytes (after a successful <see cref="Fill"/>).</summary>
    public ReadOnlySpan<byte> Peek(int count) => _buffer.AsSpan(_start, count);

    /// <summary>Buffered bytes as memory, <paramref name="offset"/> bytes past the next unread one.</summary>
    public ReadOnlyMemory<byte> PeekMemory(int offset, int count) => _buffer.AsMemory(_start + offset, count);

    /// <summary>Consumes <paramref name="count"/> buffered bytes.</summary>
    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _end - _start);
        _start += count;
    }

    /// <summary>
    /// Consumes up to <paramref name="count"/> bytes without buffering them all (for blocks the
    /// reader does not interpret) and returns how many were consumed before the stream ended.
    /// </summary>
    public long Skip(long count)
    {
        long skipped = 0;
        while (skipped < count)
        {
            if (_start == _end)
            {
                _bufferOffset += _end;
                _start = _end = 0;
                if (Fill(1) == 0)
                {
                    break;
                }
            }
            var step = (int)Math.Min(count - skipped, _end - _start);
            _start += step;
            skipped += step;
        }
        return skipped;
    }

    public void Dispose()
    {
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }

    private void Rebase(int unread)
    {
        _bufferOffset += _start;
        _start = 0;
        _end = unread;
    }
}
