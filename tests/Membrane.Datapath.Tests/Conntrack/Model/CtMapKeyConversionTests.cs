using System.Runtime.InteropServices;
using Membrane.Datapath.Conntrack;

namespace Membrane.Datapath.Tests.Conntrack.Model;

/// <summary>The tuple ↔ ct_key4/ct_key6 and ct_entry → CtConnection conversions the differential test relies on.</summary>
public sealed class CtMapKeyConversionTests
{
    [Fact]
    public void An_ipv4_key_holds_the_tuple_in_network_order_and_converts_back()
    {
        var key = Ct.TcpKey.ToKey4();
        byte[] expected = [198, 18, 0, 1, 198, 18, 0, 2, 0x9C, 0x40, 0x00, 0x50, 6, 0, 0, 0]; // 40000 = 0x9C40, 80 = 0x50
        Assert.Equal(expected, MemoryMarshal.AsBytes(new ReadOnlySpan<CtKey4>(in key)).ToArray());
        Assert.Equal((Ct.ClientPort, Ct.ServerPort), (key.SourcePort, key.DestinationPort));
        Assert.Equal(Ct.TcpKey, CtTuple.FromKey(key));
    }

    [Fact]
    public void An_ipv6_key_holds_the_tuple_in_network_order_and_converts_back()
    {
        var tuple = new CtTuple(Ct.A6, Ct.B6, 0, 0x0102, 58);
        var key = tuple.ToKey6();
        var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<CtKey6>(in key)).ToArray();
        Assert.Equal(new byte[] { 0xfd, 0x00, 0x01, 0x98, 0x00, 0x18 }, bytes[..6]);
        Assert.Equal(1, bytes[15]);
        Assert.Equal(2, bytes[31]);
        Assert.Equal(new byte[] { 0, 0, 1, 2, 58, 0, 0, 0 }, bytes[32..]);
        Assert.Equal(tuple, CtTuple.FromKey(key));
    }

    [Fact]
    public void Keys_of_the_wrong_family_are_refused()
    {
        Assert.Throws<InvalidOperationException>(() => Ct.TcpKey.ToKey6());
        Assert.Throws<InvalidOperationException>(() => new CtTuple(Ct.A6, Ct.B6, 1, 2, 17).ToKey4());
    }

    [Fact]
    public void A_map_entry_becomes_the_models_connection()
    {
        var entry = new CtEntry
        {
            PacketsOriginal = 3, BytesOriginal = 300, PacketsReply = 2, BytesReply = 2000,
            Lifetime = 21700, Created = 100, LastSeen = 100, State = CtState.Established,
            TcpFlagsOriginal = 0x12, TcpFlagsReply = 0x18, Flags = CtEntryFlags.ReplySeen,
            SourceIdentity = 77, Origin = CtOrigin.FromPod,
        };
        var c = CtConnection.FromEntry(Ct.TcpKey, entry);
        Assert.Equal(new CtConnection(Ct.TcpKey, CtState.Established, new CtDirectionStats(3, 300, 0x12), new CtDirectionStats(2, 2000, 0x18), 100, 21700, 100, true), c);
        Assert.False(CtConnection.FromEntry(Ct.TcpKey, entry with { Flags = CtEntryFlags.None }).ReplySeen);
    }
}
