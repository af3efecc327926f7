namespace Membrane.Datapath.Conntrack;

/// <summary>What one direction of a connection has carried: packets, bytes, and the TCP flags seen (OR of all).</summary>
/// <param name="Packets">Packets counted in this direction.</param>
/// <param name="Bytes">Bytes counted (the sum of <see cref="CtPacket.Length"/>).</param>
/// <param name="TcpFlags">Every TCP flag seen in this direction, OR-ed together (0 for other protocols).</param>
public readonly record struct CtDirectionStats(ulong Packets, ulong Bytes, byte TcpFlags)
{
    internal CtDirectionStats Add(in CtPacket packet) => new(Packets + 1, Bytes + packet.Length, (byte)(TcpFlags | packet.TcpFlags));
}

/// <summary>
/// One tracked connection as the model holds it (the value of the datapath's conntrack map, conntrack-spec.md):
/// the key in the originator's orientation, the state, per-direction statistics, when it was created and
/// until when it lives. Times are in seconds of the clock given to <see cref="ConntrackModel.Process"/>.
/// </summary>
/// <param name="Key">The tuple of the first packet (original direction).</param>
/// <param name="State">The TCP state, or UNREPLIED/REPLIED for other protocols.</param>
/// <param name="Original">Statistics of the original direction.</param>
/// <param name="Reply">Statistics of the reply direction.</param>
/// <param name="Created">When the entry was created.</param>
/// <param name="Lifetime">The last second at which the entry is alive: expired once <c>Lifetime &lt; now</c>.</param>
/// <param name="LastSeen">The second of the last packet counted (ct_entry.last_seen).</param>
/// <param name="ReplySeen">True once a packet in reply direction updated the entry (CT_F_REPLY_SEEN).</param>
public readonly record struct CtConnection(CtTuple Key, CtState State, CtDirectionStats Original, CtDirectionStats Reply,
    ulong Created, ulong Lifetime, ulong LastSeen, bool ReplySeen)
{
    /// <summary>The statistics of one direction.</summary>
    public CtDirectionStats Stats(CtDirection direction) => direction == CtDirection.Original ? Original : Reply;

    /// <summary>
    /// The model's view of a datapath map entry (struct ct_entry) stored under <paramref name="key"/>, for comparing
    /// a dump of the ct4/ct6 maps with <see cref="ConntrackModel.Entries"/>. The fields the model does not keep
    /// (origin, source identity, reverse-NAT index) are dropped.
    /// </summary>
    public static CtConnection FromEntry(CtTuple key, in CtEntry entry) => new(key, entry.State,
        new CtDirectionStats(entry.PacketsOriginal, entry.BytesOriginal, entry.TcpFlagsOriginal),
        new CtDirectionStats(entry.PacketsReply, entry.BytesReply, entry.TcpFlagsReply),
        entry.Created, entry.Lifetime, entry.LastSeen, (entry.Flags & CtEntryFlags.ReplySeen) != 0);

    /// <summary>True when the entry is past its lifetime at <paramref name="now"/> (conntrack-spec.md step 1: lifetime &lt; now).</summary>
    public bool IsExpired(ulong now) => Lifetime < now;

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Key} {State} orig {Original.Packets}p/{Original.Bytes}B [{CtPacket.TcpFlagNames(Original.TcpFlags)}] reply {Reply.Packets}p/{Reply.Bytes}B [{CtPacket.TcpFlagNames(Reply.TcpFlags)}] created {Created} last seen {LastSeen} lifetime {Lifetime}{(ReplySeen ? " replied" : "")}";
}
