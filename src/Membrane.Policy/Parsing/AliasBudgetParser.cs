using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Membrane.Policy.Parsing;

/// <summary>
/// Passes YAML events through and stops the stream when the aliases of a document would add
/// more nodes than a budget ("billion laughs": ten nested lists of ten aliases each are 10^10
/// nodes in a few hundred bytes). Nodes written out in the text do not count: their number is
/// bounded by the text's size, and a large policy without aliases is no attack. It has to sit under the loader: YamlDotNet's
/// representation model shares aliased nodes but hashes mapping keys deeply while loading,
/// and the policy parser walks every reference, so without a budget either is exponential.
/// go-yaml, which Kubernetes uses, refuses such documents for the same reason.
/// </summary>
internal sealed class AliasBudgetParser(IParser inner, long budget) : IParser
{
    /// <summary>Thrown when the budget is exceeded; <see cref="YamlException.Start"/> is the event that crossed it.</summary>
    internal sealed class BudgetExceededException(Mark start, Mark end)
        : YamlException(start, end, "the document expands to too many nodes through aliases");

    private readonly Dictionary<string, long> _anchors = new(StringComparer.Ordinal);
    private readonly Stack<(AnchorName Anchor, long Size, long StartIndex)> _open = new();
    private long _aliased; // nodes that aliases add: what the budget limits

    /// <summary>
    /// Where each mapping or sequence ends, by the character index where it starts. The
    /// representation model keeps only a node's start, and the policy's own text
    /// (<c>PolicyResource.SourceText</c>) needs both.
    /// </summary>
    public Dictionary<long, long> CollectionEnds { get; } = [];

    /// <summary>The current document, 1-based.</summary>
    public int Document { get; private set; }

    public ParsingEvent? Current => inner.Current;

    public bool MoveNext()
    {
        if (!inner.MoveNext())
        {
            return false;
        }
        var current = inner.Current!;
        switch (current)
        {
            case DocumentStart:
                Document++;
                _aliased = 0;
                _anchors.Clear(); // anchors are local to a document (YAML 1.2 §3.2.2.2)
                break;
            case Scalar scalar:
                if (!scalar.Anchor.IsEmpty)
                {
                    _anchors[scalar.Anchor.Value] = 1;
                }
                AddToParent(1);
                break;
            case AnchorAlias alias:
                // Unknown anchors are the loader's error to report; count them as one node.
                var aliased = _anchors.GetValueOrDefault(alias.Value.Value, 1);
                _aliased += aliased;
                AddToParent(aliased);
                break;
            case SequenceStart or MappingStart:
                _open.Push((((NodeEvent)current).Anchor, 1, current.Start.Index));
                break;
            case SequenceEnd or MappingEnd when _open.Count > 0:
                var (anchor, size, startIndex) = _open.Pop();
                CollectionEnds[startIndex] = current.End.Index;
                if (!anchor.IsEmpty)
                {
                    _anchors[anchor.Value] = size;
                }
                AddToParent(size);
                break;
        }
        if (_aliased > budget)
        {
            throw new BudgetExceededException(current.Start, current.End);
        }
        return true;
    }

    // Each open collection keeps its expanded size, so an anchor on it knows what an alias adds.
    private void AddToParent(long nodes)
    {
        if (_open.TryPop(out var parent))
        {
            _open.Push((parent.Anchor, Math.Min(parent.Size + nodes, budget + 1), parent.StartIndex));
        }
    }
}
