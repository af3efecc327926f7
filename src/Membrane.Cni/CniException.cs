using Membrane.Api;

namespace Membrane.Cni;

/// <summary>
/// An error the plugin reports to the runtime as the spec's error object
/// <c>{"cniVersion","code","msg","details"}</c> on stdout with exit code 1.
/// </summary>
internal sealed class CniException(int code, string message, string? details = null, Exception? inner = null)
    : Exception(message, inner)
{
    public int Code { get; } = code;
    public string? Details { get; } = details;

    public static CniException InvalidEnvironment(string message) => new(ErrorCodes.InvalidEnvironment, message);
    public static CniException InvalidConfig(string message, string? details = null) => new(ErrorCodes.InvalidNetworkConfig, message, details);
    public static CniException Decode(string message, string? details = null) => new(ErrorCodes.DecodeFailure, message, details);
}
