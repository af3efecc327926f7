using Membrane.Agent.Endpoints;
using Membrane.Agent.Identities;
using Membrane.Agent.Ipam;
using Membrane.Agent.Store;
using Membrane.Api;
using Membrane.Policy.Identities;

namespace Membrane.Agent.Tests;

public sealed class EndpointManagerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RecordingDatapath _datapath = new();
    private AgentStore _store;
    private IpamAllocator _ipam = null!;
    private IdentityAllocator _identities = null!;
    private EndpointManager _manager = null!;

    public EndpointManagerTests()
    {
        _store = AgentStore.Open(_dir.Path);
        Build();
    }

    private void Build(params string[] cidrs)
    {
        _ipam = new IpamAllocator(_store, (cidrs.Length > 0 ? cidrs : ["198.18.0.0/24", "fd00:198:18::/120"]).Select(IpamAllocator.ParseCidr));
        _identities = new IdentityAllocator(_store, TimeSpan.FromMinutes(5));
        _manager = new EndpointManager(_store, _ipam, _identities, _datapath);
    }

    private void Reopen(params string[] cidrs)
    {
        _store.Dispose();
        _store = AgentStore.Open(_dir.Path);
        Build(cidrs);
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private static CniAddRequest Add(string cid, string ifName = "eth0", params Label[] labels) => new()
    {
        ContainerId = cid,
        IfName = ifName,
        NetNs = $"/var/run/netns/{cid}",
        PodNamespace = "default",
        PodName = "pod-" + cid,
        Labels = labels.Length > 0 ? labels : [new Label("app", "web")],
    };

    private void AssertNothingLeft()
    {
        Assert.Empty(_store.Read(tx => tx.ListEndpoints()));
        Assert.Empty(_store.Read(tx => tx.ListAllocations()));
        Assert.All(_ipam.Pools, p => Assert.Equal(0, p.InUse));
        Assert.All(_identities.List().Where(i => i.ReservedName is null), i => Assert.Equal(0, i.References));
        Assert.Empty(_datapath.Kernel);
    }

    [Fact]
    public async Task AddGivesAddressesGatewayRoutesAndAnIdentity()
    {
        var response = await _manager.AddAsync(Add("c1"), default);
        // The result names the host address the pod holds; the store keeps the CIDR it came from.
        Assert.Equal([new IpConfig("198.18.0.2/32", "198.18.0.1"), new IpConfig("fd00:198:18::2/128", "fd00:198:18::1")], response.Ips);
        Assert.Equal([new RouteConfig("0.0.0.0/0", "198.18.0.1"), new RouteConfig("::/0", "fd00:198:18::1")], response.Routes);
        Assert.Equal(EndpointManager.HostInterfaceName("c1", "eth0"), response.HostInterface);
        Assert.Matches("^lxc[0-9a-f]{11}$", response.HostInterface);
        Assert.Equal(1500, response.Mtu);
        Assert.NotEmpty(response.HostMac);

        var info = Assert.Single(_manager.List());
        Assert.Equal(response.EndpointId, info.Id);
        Assert.Equal(("198.18.0.2", "fd00:198:18::2"), (info.Ipv4, info.Ipv6));
        Assert.Equal(["app=web", "k8s:io.kubernetes.pod.namespace=default"], info.Labels);
        Assert.Equal(ReservedIdentities.FirstAllocated, info.Identity);
        Assert.Equal(EndpointStates.Ready, info.State);
        Assert.Equal("pod-c1", info.PodName);
        Assert.Equivalent(info, _manager.Get(info.Id), strict: true);

        var spec = _datapath.Kernel[response.HostInterface];
        Assert.Equal(("c1", "eth0", "/var/run/netns/c1"), (spec.ContainerId, spec.IfName, spec.NetNs));
        Assert.Equal(info.Identity, spec.Identity);
        Assert.Equal(["198.18.0.2/24", "fd00:198:18::2/120"], spec.Addresses.Select(a => a.AddressWithPrefix));
    }

    [Fact]
    public async Task AddIsIdempotentForTheSameAttachment()
    {
        var first = await _manager.AddAsync(Add("c1"), default);
        var second = await _manager.AddAsync(Add("c1"), default);
        Assert.Equal(first.EndpointId, second.EndpointId);
        Assert.Equal(first.Ips, second.Ips);
        Assert.Equal(first.HostMac, second.HostMac);
        Assert.Equal(1, _datapath.CreateCount);
        Assert.Equal(1, _ipam.Pools[0].InUse);
        Assert.Equal(1, _identities.Lookup(ReservedIdentities.FirstAllocated)!.References);

        // Another interface of the same container is another endpoint.
        var net1 = await _manager.AddAsync(Add("c1", "net1"), default);
        Assert.NotEqual(first.EndpointId, net1.EndpointId);
        Assert.Equal(2, _identities.Lookup(ReservedIdentities.FirstAllocated)!.References);
    }

    [Fact]
    public async Task AddOfTheSameAttachmentInAnotherNamespaceIsRefused()
    {
        await _manager.AddAsync(Add("c1"), default);
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1") with { NetNs = "/var/run/netns/other" }, default));
        Assert.Equal(ErrorCodes.InvalidRequest, error.Code);
        Assert.Contains("already attached", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AddThatFailsInTheDatapathUndoesEverything()
    {
        _datapath.FailCreate = _ => new IOException("RTM_NEWLINK: File exists");
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1"), default));
        Assert.Equal(ErrorCodes.KernelFailure, error.Code);
        Assert.StartsWith("failed to add the endpoint c1/eth0: RTM_NEWLINK: File exists", error.Message, StringComparison.Ordinal);
        // The partial kernel state was removed, and no address, row or reference is left.
        Assert.Equal(["create " + EndpointManager.HostInterfaceName("c1", "eth0"), "delete " + EndpointManager.HostInterfaceName("c1", "eth0")], _datapath.Calls);
        AssertNothingLeft();

        // Nothing leaked: the next ADD works and holds the only address in use.
        _datapath.FailCreate = null;
        var ok = await _manager.AddAsync(Add("c1"), default);
        Assert.Equal("198.18.0.3/32", ok.Ips[0].Address); // next fit moves on; .2 is free again
        Assert.Equal(1, _ipam.Pools[0].InUse);
    }

    [Fact]
    public async Task AnAgentErrorFromTheDatapathKeepsItsCode()
    {
        _datapath.FailCreate = _ => new AgentException(ErrorCodes.InvalidEnvironment, "netns /var/run/netns/c1 does not exist");
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1"), default));
        Assert.Equal(ErrorCodes.InvalidEnvironment, error.Code);
        Assert.Equal("failed to add the endpoint c1/eth0: netns /var/run/netns/c1 does not exist", error.Message);
        AssertNothingLeft();
    }

    [Fact]
    public async Task AFailedAddWhoseUndoAlsoFailsKeepsTheAddressUntilADelSucceeds()
    {
        _datapath.FailCreate = _ => new IOException("veth creation failed");
        _datapath.FailDelete = new IOException("device busy");
        await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1"), default));
        // The kernel may still hold the address: it stays allocated to the (disconnecting) row.
        var row = Assert.Single(_manager.List());
        Assert.Equal(EndpointStates.Disconnecting, row.State);
        Assert.Equal(1, _ipam.Pools[0].InUse);

        _datapath.FailDelete = null;
        await _manager.DeleteAsync(new CniDelRequest { ContainerId = "c1", IfName = "eth0" }, default);
        AssertNothingLeft();
    }

    [Fact]
    public async Task AddAfterAHalfDoneAddStartsAfresh()
    {
        _datapath.FailCreate = _ => new IOException("veth creation failed");
        _datapath.FailDelete = new IOException("device busy");
        await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1"), default));
        Assert.Equal(EndpointStates.Disconnecting, Assert.Single(_manager.List()).State);

        // The runtime retries while the leftover still cannot be removed: a clear error.
        _datapath.FailCreate = null;
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1"), default));
        Assert.Equal(ErrorCodes.KernelFailure, error.Code);
        Assert.StartsWith("failed to add the endpoint c1/eth0: its leftover endpoint", error.Message, StringComparison.Ordinal);

        // Once it can, the retry removes the leftover and builds a fresh endpoint.
        _datapath.FailDelete = null;
        var added = await _manager.AddAsync(Add("c1"), default);
        var info = Assert.Single(_manager.List());
        Assert.Equal((added.EndpointId, EndpointStates.Ready), (info.Id, info.State));
        Assert.Equal(1, _ipam.Pools[0].InUse);
        Assert.Equal(1, _identities.Lookup(ReservedIdentities.FirstAllocated)!.References);
    }

    [Fact]
    public async Task ExhaustionIsReportedAndLeavesNothing()
    {
        Reopen("198.18.0.0/30"); // one usable address
        await _manager.AddAsync(Add("c1"), default);
        var error = await Assert.ThrowsAsync<IpamExhaustedException>(() => _manager.AddAsync(Add("c2"), default));
        Assert.Equal(ErrorCodes.AddressesExhausted, error.Code);
        Assert.Equal("failed to allocate an IPv4 address from 198.18.0.0/30: the range is exhausted (1 of 1 in use)", error.Message);
        Assert.Single(_manager.List());
        Assert.Equal(1, _datapath.CreateCount);
        Assert.Equal(1, _identities.Lookup(ReservedIdentities.FirstAllocated)!.References);
    }

    [Fact]
    public async Task DelRemovesEverythingAndIsIdempotent()
    {
        var added = await _manager.AddAsync(Add("c1"), default);
        var del = new CniDelRequest { ContainerId = "c1", IfName = "eth0", NetNs = "/var/run/netns/c1" };
        await _manager.DeleteAsync(del, default);
        AssertNothingLeft();
        await _manager.DeleteAsync(del, default);
        await _manager.DeleteAsync(new CniDelRequest { ContainerId = "never-seen", IfName = "eth0" }, default);
        Assert.Equal(1, _datapath.DeleteCount);
        Assert.Null(_manager.Get(added.EndpointId));
        // The identity waits out its grace period.
        Assert.NotNull(_identities.Lookup(ReservedIdentities.FirstAllocated)!.UnusedSince);
    }

    [Fact]
    public async Task DelThatTheKernelRefusesKeepsTheEndpointForARetry()
    {
        await _manager.AddAsync(Add("c1"), default);
        _datapath.FailDelete = new IOException("RTM_DELLINK: Operation not permitted");
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.DeleteAsync(new CniDelRequest { ContainerId = "c1", IfName = "eth0" }, default));
        Assert.Equal(ErrorCodes.KernelFailure, error.Code);
        Assert.Contains("Operation not permitted", error.Message, StringComparison.Ordinal);
        Assert.Equal(EndpointStates.Disconnecting, Assert.Single(_manager.List()).State);
        Assert.Equal(1, _ipam.Pools[0].InUse);
        _datapath.FailDelete = null;
        await _manager.DeleteAsync(new CniDelRequest { ContainerId = "c1", IfName = "eth0" }, default);
        AssertNothingLeft();
    }

    [Fact]
    public async Task CheckReportsAMissingEndpointWithCode3()
    {
        var error = await Assert.ThrowsAsync<AgentException>(() =>
            _manager.CheckAsync(new CniCheckRequest { ContainerId = "c1", IfName = "eth0", NetNs = "/var/run/netns/c1" }, default));
        Assert.Equal(ErrorCodes.UnknownContainer, error.Code);
        Assert.Equal("failed to check the endpoint c1/eth0: the agent has no such endpoint", error.Message);
    }

    [Fact]
    public async Task CheckAsksTheDatapathAndMarksABrokenEndpointNotReady()
    {
        var added = await _manager.AddAsync(Add("c1"), default);
        var check = new CniCheckRequest { ContainerId = "c1", IfName = "eth0", NetNs = "/var/run/netns/c1" };
        await _manager.CheckAsync(check, default);

        _datapath.Kernel.TryRemove(added.HostInterface, out var spec); // someone deleted the veth
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.CheckAsync(check, default));
        Assert.Equal(ErrorCodes.KernelFailure, error.Code);
        Assert.Contains($"veth {added.HostInterface} does not exist", error.Message, StringComparison.Ordinal);
        Assert.Equal(EndpointStates.NotReady, _manager.Get(added.EndpointId)!.State);

        _datapath.Kernel[added.HostInterface] = spec!; // repaired
        await _manager.CheckAsync(check, default);
        Assert.Equal(EndpointStates.Ready, _manager.Get(added.EndpointId)!.State);

        var wrongNs = await Assert.ThrowsAsync<AgentException>(() => _manager.CheckAsync(check with { NetNs = "/var/run/netns/other" }, default));
        Assert.Equal(ErrorCodes.InvalidEnvironment, wrongNs.Code);
    }

    [Fact]
    public async Task ACheckThatThrowsIsReportedAsAKernelProblem()
    {
        await _manager.AddAsync(Add("c1"), default);
        _datapath.FailCheck = new IOException("netlink socket closed");
        var error = await Assert.ThrowsAsync<AgentException>(() =>
            _manager.CheckAsync(new CniCheckRequest { ContainerId = "c1", IfName = "eth0", NetNs = "/var/run/netns/c1" }, default));
        Assert.Equal(ErrorCodes.KernelFailure, error.Code);
        Assert.Contains("netlink socket closed", error.Message, StringComparison.Ordinal);

        // At start, a failing check marks the endpoint not-ready instead of stopping the agent.
        Reopen();
        await _manager.RestoreAsync(default);
        Assert.Equal(EndpointStates.NotReady, Assert.Single(_manager.List()).State);
    }

    [Fact]
    public async Task GcReleasesEverythingNotInTheValidList()
    {
        await _manager.AddAsync(Add("keep"), default);
        await _manager.AddAsync(Add("gone1"), default);
        await _manager.AddAsync(Add("gone2", "net1"), default);
        var response = await _manager.GarbageCollectAsync(new CniGcRequest { ValidAttachments = [new Attachment("keep", "eth0"), new Attachment("unknown", "eth0")] }, default);
        Assert.Equal([new Attachment("gone1", "eth0"), new Attachment("gone2", "net1")], response.Released.OrderBy(a => a.ContainerId));
        Assert.Equal("keep", Assert.Single(_manager.List()).ContainerId);
        Assert.Equal(1, _ipam.Pools[0].InUse);
        Assert.Single(_datapath.Kernel);

        // An empty list releases everything.
        var all = await _manager.GarbageCollectAsync(new CniGcRequest(), default);
        Assert.Equal([new Attachment("keep", "eth0")], all.Released);
        AssertNothingLeft();
    }

    [Fact]
    public async Task GcOfOneNetworkLeavesTheOthersAlone()
    {
        await _manager.AddAsync(Add("a1") with { Network = "net-a" }, default);
        await _manager.AddAsync(Add("b1") with { Network = "net-b" }, default);
        var response = await _manager.GarbageCollectAsync(new CniGcRequest { Network = "net-a" }, default);
        Assert.Equal([new Attachment("a1", "eth0")], response.Released);
        Assert.Equal("b1", Assert.Single(_manager.List()).ContainerId);
    }

    [Fact]
    public async Task FiftyConcurrentAddsGetDistinctAddressesAndFiftyDelsLeaveNothing()
    {
        _datapath.CreateDelay = TimeSpan.FromMilliseconds(20);
        var added = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => _manager.AddAsync(Add($"pod{i}"), default))));
        Assert.Equal(50, added.Select(a => a.Ips[0].Address).Distinct().Count());
        Assert.Equal(50, added.Select(a => a.Ips[1].Address).Distinct().Count());
        Assert.Equal(50, added.Select(a => a.EndpointId).Distinct().Count());
        Assert.Equal(50, _manager.Count);
        Assert.Equal(50, _identities.Lookup(ReservedIdentities.FirstAllocated)!.References); // one label set, one identity

        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() =>
            _manager.DeleteAsync(new CniDelRequest { ContainerId = $"pod{i}", IfName = "eth0" }, default))));
        AssertNothingLeft();
    }

    [Fact]
    public async Task ConcurrentAddsOfTheSameAttachmentMakeOneEndpoint()
    {
        _datapath.CreateDelay = TimeSpan.FromMilliseconds(20);
        var added = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Task.Run(() => _manager.AddAsync(Add("c1"), default))));
        Assert.Single(added.Select(a => a.EndpointId).Distinct());
        Assert.Equal(1, _datapath.CreateCount);
    }

    [Fact]
    public async Task RestoreRebuildsABrokenEndpointWhosePodStillLivesWithTheSameAddresses()
    {
        // A file stands for the pod's namespace: it exists, so the pod is alive.
        var netns = Path.GetTempFileName();
        try
        {
            var added = await _manager.AddAsync(Add("live") with { NetNs = netns }, default);
            _datapath.Kernel.TryRemove(added.HostInterface, out _); // the veth vanished while the agent was down

            Reopen();
            await _manager.RestoreAsync(default);
            var endpoint = Assert.Single(_manager.List());
            Assert.Equal(EndpointStates.Ready, endpoint.State);
            Assert.True(_datapath.Kernel.ContainsKey(added.HostInterface), "the endpoint was not built again");
            Assert.Equal(added.Ips, (await _manager.AddAsync(Add("live") with { NetNs = netns }, default)).Ips);
        }
        finally
        {
            File.Delete(netns);
        }
    }

    [Fact]
    public async Task RestoreFinishesHalfDoneEndpointsAndChecksTheRest()
    {
        var ready = await _manager.AddAsync(Add("ready"), default);
        var broken = await _manager.AddAsync(Add("broken"), default);
        _datapath.Kernel.TryRemove(broken.HostInterface, out _);
        // A crash between writing the row and building the kernel half: the row says 'creating'.
        _datapath.FailCreate = _ => new OperationCanceledException("the agent was killed here");
        _datapath.FailDelete = new IOException("killed before the undo");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _manager.AddAsync(Add("crashed"), default));
        _datapath.FailCreate = null;
        _datapath.FailDelete = null;
        var crashedRow = _store.Read(tx => tx.FindEndpoint("crashed", "eth0"))!;
        _store.Write(tx => tx.UpdateEndpoint(crashedRow with { State = EndpointStates.Creating }));

        Reopen();
        await _manager.RestoreAsync(default);
        var list = _manager.List();
        Assert.Equal(["ready", "broken"], list.Select(e => e.ContainerId));
        Assert.Equal(EndpointStates.Ready, list[0].State);
        Assert.Equal(EndpointStates.NotReady, list[1].State);
        Assert.Equal(2, _ipam.Pools[0].InUse);
        Assert.DoesNotContain(_datapath.Kernel.Keys, k => k == EndpointManager.HostInterfaceName("crashed", "eth0"));
        Assert.Equal(ready.Ips, (await _manager.AddAsync(Add("ready"), default)).Ips);
    }

    [Theory]
    [InlineData("", "eth0", ErrorCodes.InvalidEnvironment, "invalid container id")]
    [InlineData("c 1", "eth0", ErrorCodes.InvalidEnvironment, "invalid container id")]
    [InlineData("c1", "", ErrorCodes.InvalidEnvironment, "invalid interface name")]
    [InlineData("c1", "eth0/1", ErrorCodes.InvalidEnvironment, "invalid interface name")]
    [InlineData("c1", "..", ErrorCodes.InvalidEnvironment, "invalid interface name")]
    [InlineData("c1", "a-very-long-name", ErrorCodes.InvalidEnvironment, "invalid interface name")]
    public async Task InvalidAttachmentsAreRefusedBeforeAnythingHappens(string cid, string ifName, int code, string why)
    {
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add(cid, ifName), default));
        Assert.Equal(code, error.Code);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.Empty(_datapath.Calls);
        AssertNothingLeft();
    }

    [Fact]
    public async Task InvalidLabelsNetnsAndMtuAreRefused()
    {
        var labels = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1", "eth0", new Label("app", "-bad")), default));
        Assert.Equal(ErrorCodes.InvalidRequest, labels.Code);
        var netns = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1") with { NetNs = "relative" }, default));
        Assert.Equal(ErrorCodes.InvalidEnvironment, netns.Code);
        var mtu = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1") with { Mtu = 1000 }, default));
        Assert.Equal(ErrorCodes.InvalidNetworkConfig, mtu.Code);
        Assert.Contains("1280", mtu.Message, StringComparison.Ordinal); // IPv6 is configured
        AssertNothingLeft();
    }

    [Fact]
    public void HostInterfaceNamesAreStableAndFitIfnamsiz()
    {
        Assert.Equal(EndpointManager.HostInterfaceName("c1", "eth0"), EndpointManager.HostInterfaceName("c1", "eth0"));
        Assert.NotEqual(EndpointManager.HostInterfaceName("c1", "eth0"), EndpointManager.HostInterfaceName("c1", "eth1"));
        Assert.True(EndpointManager.HostInterfaceName(new string('a', 64), "eth0").Length <= 15);
    }
}
