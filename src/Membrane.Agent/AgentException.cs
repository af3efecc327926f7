using Membrane.Api;

namespace Membrane.Agent;

/// <summary>
/// An operation of the agent failed for a reason the caller should see. <see cref="Code"/> is an
/// <see cref="ErrorCodes"/> value (the CNI spec's codes where one fits, 100+ for Membrane's own),
/// so the API server and the CNI plugin can pass it through unchanged.
/// </summary>
public class AgentException : Exception
{
    /// <summary>Creates an error with a code from <see cref="ErrorCodes"/>.</summary>
    public AgentException(int code, string message, string? details = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Details = details;
    }

    /// <summary>The error code (<see cref="ErrorCodes"/>).</summary>
    public int Code { get; }

    /// <summary>Extra, more technical detail for the CNI error's <c>details</c> field.</summary>
    public string? Details { get; }

    /// <summary>The API's error body for this exception.</summary>
    public virtual ApiError ToApiError() => new(Code, Message, Details);
}
