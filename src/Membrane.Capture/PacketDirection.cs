namespace Membrane.Capture;

/// <summary>
/// Which way a packet went, from the two low bits of pcapng's <c>epb_flags</c>
/// (draft-ietf-opsawg-pcapng §4.3.1).
/// </summary>
public enum PacketDirection : byte
{
    /// <summary>Not recorded (no <c>epb_flags</c>, or a pcap file).</summary>
    Unknown = 0,

    /// <summary>Received by the interface.</summary>
    Inbound = 1,

    /// <summary>Sent by the interface.</summary>
    Outbound = 2,
}
