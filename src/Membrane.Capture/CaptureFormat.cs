namespace Membrane.Capture;

/// <summary>The container format of a capture file.</summary>
public enum CaptureFormat
{
    /// <summary>The classic libpcap format (pcap-savefile(5), draft-ietf-opsawg-pcap).</summary>
    Pcap = 1,

    /// <summary>pcap Next Generation (draft-ietf-opsawg-pcapng).</summary>
    PcapNg = 2,
}
