using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Bpf;

/// <summary>Programs attached to real devices in throwaway namespaces, filtering real traffic.</summary>
[Collection("kernel")]
public sealed class BpfLinkTests
{
    private const int Port = 9000;

    [SkippableFact]
    public async Task TcxProgramCountsRealTrafficAndDropsWhatTheVerdictMapSays()
    {
        using var scope = new BpfTestScope(BpfFeature.Tcx, BpfFeature.RingBuffer);
        using var lab = new TwoNamespaceLab();
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.TestFilter));
        using var prog = obj.FindProgram("test_filter_ingress");
        using var verdict = obj.FindMap<VerdictKey, VerdictValue>("verdict");
        using var metrics = obj.FindPerCpuMap<uint, MetricsValue>("metrics");
        await using var events = new BpfRingBufferReader(obj.FindMap("events"));

        using var link = lab.B.Run(() => BpfLink.AttachTcx(prog, lab.IfindexB, TcDirection.Ingress));
        Assert.Equal(BpfLinkType.Tcx, link.Type);
        Assert.Equal(prog.Id, link.ProgramId);
        var (attached, revision) = lab.B.Run(() => BpfAttachments.QueryTcx(lab.IfindexB, TcDirection.Ingress));
        Assert.Equal([new BpfAttachment(BpfHook.TcxIngress, prog.Id, link.Id)], attached);
        Assert.True(revision > 0);
        Assert.Empty(lab.A.Run(() => BpfAttachments.List(lab.IfindexA)));

        // Allowed: everything arrives and is counted as forwarded IPv4/UDP on ingress.
        Assert.Equal(5, lab.SendUdpAToB(Port, 5));
        Assert.True(Sum(metrics, DropReason.Forwarded, 4, TestPackets.Udp) >= 5);

        // Dropped: nothing arrives; each drop is counted and reported through the ring buffer.
        verdict.Update(VerdictKey.For(TestPackets.Udp, Port), new VerdictValue { Action = VerdictAction.Drop });
        Assert.Equal(0, lab.SendUdpAToB(Port, 4));
        Assert.Equal(4ul, Sum(metrics, DropReason.Policy, 4, TestPackets.Udp));

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var records = 0;
        await foreach (var record in events.ReadAllAsync(timeout.Token))
        {
            Assert.True(DatapathEventReader.TryCreate(record.Span, out var ev, out _, out _));
            Assert.True(ev.TryReadCommon(out var drop, out _));
            Assert.Equal((int)DropReason.Policy, drop.Reason);
            Assert.Equal(lab.IfindexB, drop.Ifindex);
            // The captured bytes are the real frame: IPv4 from A to B, UDP to our port.
            Assert.Equal(TwoNamespaceLab.AddressA.GetAddressBytes(), drop.Packet.Slice(14 + 12, 4).ToArray());
            Assert.Equal(Port, drop.Packet[14 + 20 + 2] << 8 | drop.Packet[14 + 20 + 3]);
            if (++records == 4)
            {
                break;
            }
        }

        // Allowed again once the entry is gone.
        Assert.True(verdict.Delete(VerdictKey.For(TestPackets.Udp, Port)));
        Assert.Equal(3, lab.SendUdpAToB(Port, 3));

        link.Dispose();
        Assert.Empty(lab.B.Run(() => BpfAttachments.QueryTcx(lab.IfindexB, TcDirection.Ingress).Programs));
    }

    [SkippableFact]
    public void TcxEgressFiltersWhatADeviceSends()
    {
        using var scope = new BpfTestScope(BpfFeature.Tcx);
        using var lab = new TwoNamespaceLab();
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.TestFilter));
        using var prog = obj.FindProgram("test_filter_egress");
        using var verdict = obj.FindMap<VerdictKey, VerdictValue>("verdict");
        using var metrics = obj.FindPerCpuMap<uint, MetricsValue>("metrics");
        verdict.Update(VerdictKey.For(TestPackets.Udp, Port), new VerdictValue { Action = VerdictAction.Drop });

        using var link = lab.A.Run(() => BpfLink.AttachTcx(prog, lab.IfindexA, TcDirection.Egress));
        var attached = lab.A.Run(() => BpfAttachments.List(lab.IfindexA));
        Assert.Equal([new BpfAttachment(BpfHook.TcxEgress, prog.Id, link.Id)], attached);

        Assert.Equal(0, lab.SendUdpAToB(Port, 3));
        var perCpu = new MetricsValue[metrics.CpuCount];
        var key = new MetricsKey { Reason = (byte)DropReason.Policy, Direction = Direction.Egress, L3 = 4, L4Protocol = TestPackets.Udp };
        Assert.True(metrics.TryLookup(key.ToSlot(), perCpu));
        Assert.Equal(3ul, perCpu.Aggregate(0ul, (s, v) => s + v.Packets));
        Assert.Equal(2, lab.SendUdpAToB(Port + 1, 2));

        // A pinned link can still be detached on purpose (agent cleanup), pin or not.
        var pin = Path.Combine(scope.PinDir, "egress");
        link.Pin(pin);
        link.Detach();
        Assert.Empty(lab.A.Run(() => BpfAttachments.List(lab.IfindexA)));
        Assert.Equal(3, lab.SendUdpAToB(Port, 3));
        BpfFs.Unpin(pin);
    }

    [SkippableFact]
    public void ATcxLinkPinnedByAnExitedProcessKeepsFilteringUntilThePinIsRemoved()
    {
        using var scope = new BpfTestScope(BpfFeature.Tcx);
        using var lab = new TwoNamespaceLab();
        var dotnet = Requires.Tool("dotnet");
        var child = Path.Combine(AppContext.BaseDirectory, "Membrane.Linux.TestChild.dll");
        Assert.True(File.Exists(child), child + " is built with the tests");

        var (code, stdout, stderr) = Tools.Run(dotnet, [child, "attach-tcx-pin", lab.B.Name, lab.IfB,
            BpfObjects.PathOf(BpfObjects.TestFilter), "test_filter_ingress", "ingress", scope.PinDir], timeout: TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"child failed ({code}): {stderr}");
        Assert.StartsWith("link ", stdout, StringComparison.Ordinal);
        var linkPin = Path.Combine(scope.PinDir, "link");
        try
        {
            // The child has exited; its link is still attached, held by the pin alone.
            var attached = lab.B.Run(() => BpfAttachments.QueryTcx(lab.IfindexB, TcDirection.Ingress).Programs);
            var one = Assert.Single(attached);
            using (var pinned = BpfLink.OpenPinned(linkPin))
            {
                Assert.Equal(one.LinkId, pinned.Id);
                Assert.Equal(one.ProgramId, pinned.ProgramId);
            }

            // And it still filters: drive it through the child's pinned verdict map.
            using (var verdict = BpfMap<VerdictKey, VerdictValue>.OpenPinned(Path.Combine(scope.PinDir, "verdict")))
            {
                Assert.Equal(2, lab.SendUdpAToB(Port, 2));
                verdict.Update(VerdictKey.For(TestPackets.Udp, Port), new VerdictValue { Action = VerdictAction.Drop });
                Assert.Equal(0, lab.SendUdpAToB(Port, 3));
                Assert.Equal(3u, verdict[VerdictKey.For(TestPackets.Udp, Port)].Hits);
            }

            // Removing the pin detaches the program: the drop entry no longer matters. The pin
            // held the last reference, and the kernel frees a link in a deferred work item
            // (kernel/bpf/syscall.c bpf_link_put → schedule_work), so the detach follows the
            // unlink by a moment rather than within it.
            BpfFs.Unpin(linkPin);
            Assert.True(SpinWait.SpinUntil(() => lab.B.Run(() => BpfAttachments.QueryTcx(lab.IfindexB, TcDirection.Ingress).Programs.Count == 0), TimeSpan.FromSeconds(5)),
                "the program was still attached 5 s after its link's last pin went");
            Assert.Equal(3, lab.SendUdpAToB(Port, 3));
        }
        finally
        {
            foreach (var name in new[] { "link", "verdict", "metrics", "events" })
            {
                var pin = Path.Combine(scope.PinDir, name);
                if (File.Exists(pin))
                {
                    BpfFs.Unpin(pin);
                }
            }
        }
    }

    [SkippableFact]
    public void XdpLinkAttachesAndDetachesWithItsFd()
    {
        using var scope = new BpfTestScope();
        using var lab = new TwoNamespaceLab();
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.Noop));
        using var prog = obj.FindProgram("xdp_noop");
        Assert.Equal(BpfProgramType.Xdp, prog.Type);

        var link = lab.A.Run(() => BpfLink.AttachXdp(prog, lab.IfindexA));
        try
        {
            Assert.Equal(BpfLinkType.Xdp, link.Type);
            Assert.Equal(prog.Id, lab.A.Run(() => BpfAttachments.QueryXdp(lab.IfindexA)));
            Assert.Contains(new BpfAttachment(BpfHook.Xdp, prog.Id, 0), lab.A.Run(() => BpfAttachments.List(lab.IfindexA)));
            Assert.Equal(2, lab.SendUdpAToB(Port, 2)); // XDP_PASS on A's receive side leaves B's traffic alone
        }
        finally
        {
            link.Dispose();
        }
        Assert.Null(lab.A.Run(() => BpfAttachments.QueryXdp(lab.IfindexA)));
    }

    [SkippableFact]
    public void LegacyClsactFilterFiltersAndDetachesOnlyItself()
    {
        using var scope = new BpfTestScope();
        using var lab = new TwoNamespaceLab();
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.TestFilter));
        using var prog = obj.FindProgram("test_filter_ingress");
        using var verdict = obj.FindMap<VerdictKey, VerdictValue>("verdict");
        using var noopObj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.Noop));
        using var noop = noopObj.FindProgram("tc_noop");

        var filter = lab.B.Run(() => TcClsactFilter.Attach(prog, lab.IfindexB, TcDirection.Ingress, handle: 1, priority: 1));
        // Someone else's filter on the same qdisc must survive our detach.
        var other = lab.B.Run(() => TcClsactFilter.Attach(noop, lab.IfindexB, TcDirection.Ingress, handle: 2, priority: 2));
        try
        {
            Assert.Equal(prog.Id, filter.ProgramId);
            Assert.Equal(prog.Id, lab.B.Run(() => TcClsactFilter.Query(lab.IfindexB, TcDirection.Ingress, 1, 1)));
            verdict.Update(VerdictKey.For(TestPackets.Udp, Port), new VerdictValue { Action = VerdictAction.Drop });
            Assert.Equal(0, lab.SendUdpAToB(Port, 2));

            lab.B.Run(filter.Detach);
            Assert.Null(lab.B.Run(() => TcClsactFilter.Query(lab.IfindexB, TcDirection.Ingress, 1, 1)));
            Assert.Equal(noop.Id, lab.B.Run(() => TcClsactFilter.Query(lab.IfindexB, TcDirection.Ingress, 2, 2)));
            Assert.Equal(2, lab.SendUdpAToB(Port, 2));
        }
        finally
        {
            lab.B.Run(filter.Dispose);
            lab.B.Run(other.Dispose);
        }
    }

    private static ulong Sum(BpfPerCpuMap<uint, MetricsValue> metrics, DropReason reason, byte l3, byte proto)
    {
        var perCpu = new MetricsValue[metrics.CpuCount];
        var key = new MetricsKey { Reason = (byte)reason, Direction = Direction.Ingress, L3 = l3, L4Protocol = proto };
        return metrics.TryLookup(key.ToSlot(), perCpu) ? perCpu.Aggregate(0ul, (s, v) => s + v.Packets) : 0;
    }
}
