namespace Membrane.Packets;

/// <summary>
/// The kind/length/value option format shared by IPv4 (RFC 791 §3.1) and TCP (RFC 9293 §3.1): kind 0 ends
/// the list, kind 1 is a one-byte pad, every other kind has a length byte that counts kind and length.
/// </summary>
internal static class OptionTlv
{
    /// <summary>Returns the offset of the first malformed option, or -1 when the whole area is well formed.</summary>
    public static int FindMalformed(ReadOnlySpan<byte> options)
    {
        int i = 0;
        while (i < options.Length)
        {
            byte kind = options[i];
            if (kind == 0)
            {
                return -1;
            }
            if (kind == 1)
            {
                i++;
                continue;
            }
            if (i + 1 >= options.Length)
            {
                return i;
            }
            int len = options[i + 1];
            if (len < 2 || i + len > options.Length)
            {
                return i;
            }
            i += len;
        }
        return -1;
    }

    /// <summary>Steps to the next option; false at the end of the list or at a malformed option.</summary>
    public static bool Next(ReadOnlySpan<byte> options, ref int position, out int start, out int length)
    {
        start = position;
        length = 0;
        if ((uint)position >= (uint)options.Length)
        {
            return false;
        }
        byte kind = options[position];
        if (kind == 0)
        {
            // End of option list: report it once, then stop (the rest is padding).
            length = 1;
            position = options.Length;
            return true;
        }
        if (kind == 1)
        {
            length = 1;
            position++;
            return true;
        }
        if (position + 1 >= options.Length)
        {
            position = options.Length;
            return false;
        }
        int len = options[position + 1];
        if (len < 2 || position + len > options.Length)
        {
            position = options.Length;
            return false;
        }
        length = len;
        position += len;
        return true;
    }
}
