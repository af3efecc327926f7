namespace Membrane.Api;

/// <summary>
/// Error codes shared by the agent's API and the CNI plugin. 1–99 are the CNI spec's
/// (SPEC.md "Error" section, v1.1.0); 100+ are Membrane's own.
/// </summary>
public static class ErrorCodes
{
    public const int IncompatibleVersion = 1;
    public const int UnsupportedField = 2;
    public const int UnknownContainer = 3;
    public const int InvalidEnvironment = 4;
    public const int IoFailure = 5;
    public const int DecodeFailure = 6;
    public const int InvalidNetworkConfig = 7;
    public const int TryAgainLater = 11;
    public const int PluginNotAvailable = 50;
    public const int PluginLimitedConnectivity = 51;

    /// <summary>The pod CIDR has no free address.</summary>
    public const int AddressesExhausted = 100;
    /// <summary>The kernel refused an operation (netlink, BPF).</summary>
    public const int KernelFailure = 101;
    /// <summary>The request was well-formed JSON but names something invalid.</summary>
    public const int InvalidRequest = 102;
    /// <summary>The request names something the agent does not have (an identity number), as HTTP 404.</summary>
    public const int NotFound = 103;
    /// <summary>An internal error of the agent.</summary>
    public const int Internal = 999;
}
