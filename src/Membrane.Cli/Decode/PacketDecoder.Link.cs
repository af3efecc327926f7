using Membrane.Packets;

namespace Membrane.Cli.Decode;

// Link layer: Ethernet II (IEEE 802.3 §3.2), 802.1Q / 802.1ad tags (IEEE 802.1Q §9.6), ARP (RFC 826).
internal static partial class PacketDecoder
{
    private static void Ethernet(ref State state, EthernetHeader eth)
    {
        var w = state.Output;
        var bytes = eth.Bytes;
        w.Mac("eth.dst", "Destination", bytes);
        // The U/L and I/G bits are the two low bits of the first octet (IEEE 802 §8.2).
        w.Bool("eth.dst.lg", "LG bit (locally administered)", (bytes[0] & 0x02) != 0);
        w.Bool("eth.dst.ig", "IG bit (group address)", (bytes[0] & 0x01) != 0);
        w.Mac("eth.src", "Source", bytes.Slice(6));
        w.Bool("eth.src.lg", "LG bit (locally administered)", (bytes[6] & 0x02) != 0);
        w.Bool("eth.src.ig", "IG bit (group address)", (bytes[6] & 0x01) != 0);
        w.Hex("eth.type", "Type", eth.EtherType, 4);
        state.TagProtocol = eth.EtherType;
    }

    private static void Vlan(ref State state, VlanHeader tag)
    {
        var w = state.Output;
        if (state.TagProtocol == EtherTypes.QinQ)
        {
            // Wireshark's IEEE 802.1ad dissector: DEI is a number, not a boolean, and the inner
            // type is the field it shares with 802.1ah (ieee8021ah.etype).
            w.Uint("ieee8021ad.priority", "Priority", tag.Priority);
            w.Uint("ieee8021ad.dei", "DEI", tag.DropEligible ? 1u : 0u);
            w.Uint("ieee8021ad.id", "ID", tag.VlanId);
            w.Hex("ieee8021ah.etype", "Type", tag.EtherType, 4);
        }
        else
        {
            w.Uint("vlan.priority", "Priority", tag.Priority);
            w.Bool("vlan.dei", "DEI", tag.DropEligible);
            w.Uint("vlan.id", "ID", tag.VlanId);
            w.Hex("vlan.etype", "Type", tag.EtherType, 4);
        }
        state.TagProtocol = tag.EtherType;
    }

    private static void Arp(DecodeWriter w, ArpHeader arp)
    {
        w.Uint("arp.hw.type", "Hardware type", arp.HardwareType);
        w.Hex("arp.proto.type", "Protocol type", arp.ProtocolType, 4);
        w.Uint("arp.hw.size", "Hardware size", arp.HardwareLength);
        w.Uint("arp.proto.size", "Protocol size", arp.ProtocolLength);
        w.Uint("arp.opcode", "Opcode", arp.Operation);
        // Wireshark names the addresses by their type; Ethernet/IPv4 is what a container network carries.
        if (arp.IsEthernetIpv4 && arp.ProtocolType == EtherTypes.IPv4)
        {
            w.Mac("arp.src.hw_mac", "Sender MAC address", arp.SenderHardwareAddress);
            w.Ipv4("arp.src.proto_ipv4", "Sender IP address", arp.SenderProtocolAddress);
            w.Mac("arp.dst.hw_mac", "Target MAC address", arp.TargetHardwareAddress);
            w.Ipv4("arp.dst.proto_ipv4", "Target IP address", arp.TargetProtocolAddress);
        }
        else
        {
            w.Bytes("arp.src.hw", "Sender hardware address", arp.SenderHardwareAddress);
            w.Bytes("arp.src.proto", "Sender protocol address", arp.SenderProtocolAddress);
            w.Bytes("arp.dst.hw", "Target hardware address", arp.TargetHardwareAddress);
            w.Bytes("arp.dst.proto", "Target protocol address", arp.TargetProtocolAddress);
        }
    }
}
