using Membrane.Api;

namespace Membrane.Agent.Ipam;

/// <summary>Every address of a family's pod CIDRs is in use (<see cref="ErrorCodes.AddressesExhausted"/>).</summary>
public sealed class IpamExhaustedException(string family, IReadOnlyList<string> cidrs, int inUse, int capacity)
    : AgentException(ErrorCodes.AddressesExhausted,
        $"failed to allocate an {family} address from {string.Join(", ", cidrs)}: the range is exhausted ({inUse} of {capacity} in use)")
{
    /// <summary>"IPv4" or "IPv6".</summary>
    public string Family { get; } = family;

    /// <summary>The CIDRs that were tried.</summary>
    public IReadOnlyList<string> Cidrs { get; } = cidrs;

    /// <summary>Addresses in use.</summary>
    public int InUse { get; } = inUse;

    /// <summary>Addresses the CIDRs offer.</summary>
    public int Capacity { get; } = capacity;
}
