using Membrane.Linux;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;

namespace Membrane.Testing;

/// <summary>
/// A uniquely named network namespace for one test (RunPrefix + tag + counter), with
/// loopback up, an rtnetlink handle inside it, and helpers to run code inside and to join
/// two fixtures with a veth. Dispose always deletes the namespace, which also destroys
/// every link inside it (veth peers in other namespaces go with their pair). Like CNI's
/// pkg/ns testutils and cilium/ebpf's testutils.NewNetNS.
/// </summary>
public sealed class NetNsFixture : IDisposable
{
    private bool _disposed;

    /// <summary>Creates the namespace <c>RunPrefix.Next(tag)</c> and brings its loopback up.</summary>
    public NetNsFixture(string tag = "ns")
    {
        Name = RunPrefix.Next(tag);
        Namespace = NetNs.Create(Name);
        try
        {
            Netlink = Rtnetlink.Open(Namespace);
            Netlink.SetUp(Netlink.GetLink("lo").Index);
        }
        catch
        {
            Netlink?.Dispose();
            Namespace.Dispose();
            NetNs.Delete(Name);
            throw;
        }
    }

    /// <summary>The namespace's name under /run/netns.</summary>
    public string Name { get; }

    /// <summary>The open namespace.</summary>
    public NetNs Namespace { get; }

    /// <summary>rtnetlink inside the namespace.</summary>
    public Rtnetlink Netlink { get; }

    /// <summary>Runs <paramref name="func"/> inside the namespace on a dedicated thread.</summary>
    public T Run<T>(Func<T> func) => Namespace.Run(func);

    /// <summary>Runs <paramref name="action"/> inside the namespace on a dedicated thread.</summary>
    public void Run(Action action) => Namespace.Run(action);

    /// <summary>
    /// Creates a veth with <paramref name="name"/> in this namespace and
    /// <paramref name="peerName"/> in <paramref name="peer"/>, both up. Returns both ends,
    /// each read in its own namespace.
    /// </summary>
    public (LinkInfo Local, LinkInfo Peer) CreateVethTo(NetNsFixture peer, string name, string peerName)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var local = Netlink.CreateVeth(name, peerName, peer.Namespace);
        Netlink.SetUp(local.Index);
        var remote = peer.Netlink.GetLink(peerName);
        peer.Netlink.SetUp(remote.Index);
        return (Netlink.GetLink(local.Index), peer.Netlink.GetLink(remote.Index));
    }

    /// <summary>Names under /run/netns that start with this run's prefix (leftovers when nothing is open).</summary>
    public static IReadOnlyList<string> Leftovers() =>
        NetNs.List().Where(n => n.StartsWith(RunPrefix.Value, StringComparison.Ordinal)).ToArray();

    /// <summary>Deletes the namespace (idempotent).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Netlink.Dispose();
        Namespace.Dispose();
        if (NetNs.Exists(Name))
        {
            NetNs.Delete(Name);
        }
    }
}
