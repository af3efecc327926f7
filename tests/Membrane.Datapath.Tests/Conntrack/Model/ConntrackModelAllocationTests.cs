using Membrane.Datapath.Conntrack;

namespace Membrane.Datapath.Tests.Conntrack.Model;

public sealed class ConntrackModelAllocationTests
{
    [Fact]
    public void Tracking_packets_of_existing_connections_does_not_allocate()
    {
        var model = new ConntrackModel();
        var syn = Ct.Tcp(CtDirection.Original, Ct.Syn);
        var synAck = Ct.Tcp(CtDirection.Reply, Ct.Syn | Ct.Ack);
        var ack = Ct.Tcp(CtDirection.Original, Ct.Ack);
        var data = Ct.Tcp(CtDirection.Reply, Ct.Psh | Ct.Ack, 1500);
        var query = CtPacket.Udp(Ct.A6, Ct.B6, 1, 53, 80);
        var answer = CtPacket.Udp(Ct.B6, Ct.A6, 53, 1, 200);
        var error = CtPacket.IcmpError(Ct.R6, Ct.A6, 1, 3, query.Tuple, 120);
        model.Process(syn, 0);
        model.Process(synAck, 0);
        model.Process(query, 0);
        for (int i = 0; i < 100; i++)
        {
            model.Process(ack, 1);
            model.Process(data, 1);
            model.Process(answer, 1);
            model.Process(error, 1);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong t = 2; t < 10_002; t++)
        {
            model.Process(ack, t);
            model.Process(data, t);
            model.Process(answer, t);
            model.Process(error, t);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(10_100UL + 1, e.Reply.Packets);
    }
}
