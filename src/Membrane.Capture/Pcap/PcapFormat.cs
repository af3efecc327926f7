namespace Membrane.Capture;

/// <summary>Wire constants of the pcap format (draft-ietf-opsawg-pcap §3–§5).</summary>
internal static class PcapFormat
{
    /// <summary>Magic of a file with microsecond timestamps, as read in the file's own byte order.</summary>
    public const uint MagicMicroseconds = 0xA1B2C3D4;

    /// <summary>Magic of a file with nanosecond timestamps, as read in the file's own byte order.</summary>
    public const uint MagicNanoseconds = 0xA1B23C4D;

    public const ushort VersionMajor = 2;
    public const ushort VersionMinor = 4;

    /// <summary>magic, major, minor, reserved1 (thiszone), reserved2 (sigfigs), snaplen, linktype.</summary>
    public const int FileHeaderLength = 24;

    /// <summary>seconds, fraction, captured length, original length.</summary>
    public const int RecordHeaderLength = 16;
}
