using System.Collections.Immutable;
using Membrane.Policy.Model;
using Membrane.Policy.Parsing;

namespace Membrane.Policy.Repository;

/// <summary>A change of the repository: the snapshot before and after, and the policies it touched.</summary>
/// <param name="Previous">The snapshot before.</param>
/// <param name="Current">The snapshot after.</param>
/// <param name="Keys">The namespace/names added, replaced or deleted.</param>
public sealed record PolicyChange(PolicySnapshot Previous, PolicySnapshot Current, IReadOnlyList<PolicyKey> Keys);

/// <summary>
/// The agent's policies: an immutable <see cref="PolicySnapshot"/> swapped atomically on
/// import and delete (<c>membrane policy import|delete NAME|--all</c>). Thread-safe.
/// </summary>
public sealed class PolicyRepository
{
    private readonly Lock _lock = new();
    private PolicySnapshot _current = PolicySnapshot.Empty;

    /// <summary>The current snapshot.</summary>
    public PolicySnapshot Current => Volatile.Read(ref _current);

    /// <summary>
    /// Adds the imported policies, replacing any with the same namespace/name (like
    /// <c>kubectl apply</c>). A failed import is refused whole.
    /// </summary>
    /// <exception cref="ArgumentException">The import has errors.</exception>
    public PolicyChange Apply(PolicyImport import)
    {
        if (!import.Succeeded)
        {
            throw new ArgumentException($"failed to apply policy import: it has {import.Errors.Length} error(s):\n{import.ErrorText}", nameof(import));
        }
        return Apply(import.Policies);
    }

    /// <summary>
    /// <paramref name="import"/> with an error for each policy whose namespace and name a policy
    /// of the other kind holds already. Kubernetes keeps a CiliumNetworkPolicy and a NetworkPolicy
    /// of one name apart; here both answer to namespace/name (policy get, policy delete), so the
    /// second would silently replace the first. The user deletes or renames one instead.
    /// </summary>
    public PolicyImport RefuseKindChanges(PolicyImport import)
    {
        var current = Current.Policies;
        var errors = import.Policies
            .Where(p => current.TryGetValue(p.Key, out var had) && had.Kind != p.Kind)
            .Select(p => new PolicyParseError(p.Location.File, p.Location.Document, p.Location.Line, p.Location.Column, "metadata.name",
                $"a {current[p.Key].Kind} named {p.Key} is imported already; a {p.Kind} of the same namespace and name would replace it " +
                $"(delete it first with `membrane policy delete {p.Key}`, or rename one)"))
            .ToImmutableArray();
        return errors.IsEmpty ? import : new PolicyImport(import.Policies, import.Errors.AddRange(errors), import.ErrorsTruncated);
    }

    /// <summary>Adds or replaces policies by namespace/name.</summary>
    public PolicyChange Apply(IReadOnlyCollection<PolicyResource> policies)
    {
        lock (_lock)
        {
            var previous = _current;
            _current = previous.With(policies);
            return new PolicyChange(previous, _current, [.. policies.Select(p => p.Key).Distinct()]);
        }
    }

    /// <summary>Deletes one policy; false when there is none by that namespace/name.</summary>
    public bool Delete(PolicyKey key, out PolicyChange? change)
    {
        lock (_lock)
        {
            var previous = _current;
            if (!previous.Policies.ContainsKey(key))
            {
                change = null;
                return false;
            }
            _current = previous.Without([key]);
            change = new PolicyChange(previous, _current, [key]);
            return true;
        }
    }

    /// <summary>Deletes every policy (<c>policy delete --all</c>).</summary>
    public PolicyChange DeleteAll()
    {
        lock (_lock)
        {
            var previous = _current;
            _current = previous.Cleared();
            return new PolicyChange(previous, _current, [.. previous.Policies.Keys]);
        }
    }
}
