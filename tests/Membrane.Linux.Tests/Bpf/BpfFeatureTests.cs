using Membrane.Linux.Bpf;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Bpf;

[Collection("kernel")]
public sealed class BpfFeatureTests
{
    [SkippableTheory]
    [InlineData(BpfFeature.Syscall)]
    [InlineData(BpfFeature.KernelBtf)]
    [InlineData(BpfFeature.Tcx)]
    [InlineData(BpfFeature.RingBuffer)]
    [InlineData(BpfFeature.LpmTrie)]
    [InlineData(BpfFeature.RedirectPeer)]
    public void TheLabKernelHasWhatTheDatapathNeeds(BpfFeature feature)
    {
        Requires.Root();
        // This kernel (6.18, KERNEL-NOTES) has all of these; the probe must say so, twice (cached).
        Assert.True(BpfFeatures.Has(feature), $"{BpfFeatures.Describe(feature)} not detected on {BpfFeatures.KernelRelease}");
        Assert.True(BpfFeatures.Has(feature));
        BpfFeatures.Require(feature);
    }

    [Fact]
    public void BpfFsProbeAgreesWithStatfs()
    {
        // /proc/mounts is the independent oracle for "is a bpf filesystem mounted there".
        var mounted = File.ReadAllLines("/proc/mounts").Any(l => l.Split(' ') is [_, "/sys/fs/bpf", "bpf", ..]);
        Assert.Equal(mounted, BpfFeatures.Has(BpfFeature.BpfFsMounted));
    }

    [Fact]
    public void NotSupportedNamesTheFeatureAndTheKernel()
    {
        var e = new BpfNotSupportedException("tcx links", "6.6");
        Assert.StartsWith("failed to use tcx links: not supported by this kernel", e.Message, StringComparison.Ordinal);
        Assert.Contains("Linux 6.6 or later", e.Message, StringComparison.Ordinal);
        Assert.Equal("tcx links", e.Feature);
    }

    [Theory]
    [InlineData("6.18.44-fc-v669", "6.18.44")]
    [InlineData("6.1.0-27-amd64", "6.1.0")]
    [InlineData("5.10", "5.10")]
    public void KernelReleasesParse(string release, string expected)
    {
        Assert.Equal(Version.Parse(expected), BpfFeatures.ParseKernelRelease(release));
    }
}
