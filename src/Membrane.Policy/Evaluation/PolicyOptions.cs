namespace Membrane.Policy.Evaluation;

/// <summary>Agent-wide policy settings that the evaluator and the resolver both honour.</summary>
/// <param name="AllowLocalhost">
/// Always allow ingress from the local host (identity 1) into endpoints, even when their ingress
/// is default-deny — Cilium's <c>--allow-localhost=always</c>, which exists so that the
/// kubelet's health probes keep working under a default-deny policy. A deny rule naming the
/// host still wins. Off by default: issue 6 specifies plain default-deny.
/// </param>
public sealed record PolicyOptions(bool AllowLocalhost = false)
{
    /// <summary>The defaults.</summary>
    public static PolicyOptions Default { get; } = new();
}
