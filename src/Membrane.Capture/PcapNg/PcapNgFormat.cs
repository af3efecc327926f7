namespace Membrane.Capture;

/// <summary>Block types and option codes of pcapng (draft-ietf-opsawg-pcapng §4, §11).</summary>
internal static class PcapNgFormat
{
    // Block types (§11.1).
    public const uint SectionHeaderBlock = 0x0A0D0D0A; // a palindrome: reads the same in both orders
    public const uint InterfaceDescriptionBlock = 0x00000001;
    public const uint PacketBlock = 0x00000002;           // obsolete (Appendix A), still read
    public const uint SimplePacketBlock = 0x00000003;
    public const uint NameResolutionBlock = 0x00000004;
    public const uint InterfaceStatisticsBlock = 0x00000005;
    public const uint EnhancedPacketBlock = 0x00000006;

    public const uint ByteOrderMagic = 0x1A2B3C4D;
    public const ushort VersionMajor = 1;
    public const ushort VersionMinor = 0;

    // Fixed lengths, trailer included (§4.1–§4.4, Appendix A).
    public const int BlockHeaderLength = 8;           // type + total length
    public const int MinBlockLength = 12;             // header + trailing total length
    public const int SectionHeaderMinLength = 28;
    public const int InterfaceDescriptionMinLength = 20;
    public const int EnhancedPacketMinLength = 32;
    public const int SimplePacketMinLength = 16;
    public const int PacketBlockMinLength = 32;

    // Options common to all blocks (§3.5).
    public const ushort OptEndOfOptions = 0;
    public const ushort OptComment = 1;
    public const ushort OptCustomString = 2988;
    public const ushort OptCustomBinary = 2989;
    public const ushort OptCustomStringNoCopy = 19372;
    public const ushort OptCustomBinaryNoCopy = 19373;

    // Section header block options (§4.1).
    public const ushort ShbHardware = 2;
    public const ushort ShbOs = 3;
    public const ushort ShbUserApplication = 4;

    // Interface description block options (§4.2).
    public const ushort IfName = 2;
    public const ushort IfDescription = 3;
    public const ushort IfTsResol = 9;
    public const ushort IfFilter = 11;
    public const ushort IfOs = 12;
    public const ushort IfTsOffset = 14;

    // Enhanced packet block options (§4.3).
    public const ushort EpbFlags = 2;

    /// <summary>Rounds up to the 32-bit boundary every pcapng field ends on.</summary>
    public static int Pad4(int length) => (length + 3) & ~3;

    public static string BlockName(uint type) => type switch
    {
        SectionHeaderBlock => "section header block",
        InterfaceDescriptionBlock => "interface description block",
        PacketBlock => "packet block",
        SimplePacketBlock => "simple packet block",
        NameResolutionBlock => "name resolution block",
        InterfaceStatisticsBlock => "interface statistics block",
        EnhancedPacketBlock => "enhanced packet block",
        _ => FormattableString.Invariant($"block of type 0x{type:X8}"),
    };
}
