using System.Runtime.InteropServices;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;

namespace Membrane.Datapath;

/// <summary>
/// Which forwarded packets get a trace record, like Cilium's monitor aggregation. C twin:
/// enum monitor_aggregation (bpf/lib/events.h); 0 is the default so that an unwritten map means medium.
/// </summary>
[CTwin("monitor_aggregation")]
public enum MonitorAggregation : uint
{
    /// <summary>A connection's first packet, ICMP errors about it, and TCP packets with SYN, FIN or RST.</summary>
    [CTwin("MONITOR_AGG_MEDIUM")] Medium = 0,
    /// <summary>Every forwarded packet.</summary>
    [CTwin("MONITOR_AGG_NONE")] None = 1,
    /// <summary>A connection's first packet only.</summary>
    [CTwin("MONITOR_AGG_MAXIMUM")] Maximum = 2,
}

/// <summary>The single value of the "monitor_config" array. C twin: struct monitor_config.</summary>
[CTwin("monitor_config")]
[StructLayout(LayoutKind.Explicit, Size = 4)]
public struct MonitorConfig
{
    /// <summary>enum monitor_aggregation.</summary>
    [CTwin("aggregation")][FieldOffset(0)] public MonitorAggregation Aggregation;
}

/// <summary>One CPU's value of the per-CPU "event_state" array. C twin: struct event_state.</summary>
[CTwin("event_state")]
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct EventState
{
    /// <summary>The CPU's record id sequence.</summary>
    [CTwin("seq")][FieldOffset(0)] public uint Sequence;
    [CTwin("pad")][FieldOffset(4)] public uint Pad;
    /// <summary>Records the CPU could not write because the ring buffer was full.</summary>
    [CTwin("lost")][FieldOffset(8)] public ulong Lost;
}

public sealed partial class Datapath
{
    /// <summary>The per-CPU "event_state" array: record ids and records lost to a full ring buffer.</summary>
    public BpfPerCpuMap<uint, EventState> EventState { get; }

    /// <summary>The "monitor_config" array.</summary>
    public BpfMap<uint, MonitorConfig> MonitorConfig { get; }

    /// <summary>Which forwarded packets the datapath traces (read from and written to the kernel).</summary>
    public MonitorAggregation MonitorAggregation
    {
        get => MonitorConfig.TryLookup(0, out var c) ? c.Aggregation : MonitorAggregation.Medium;
        set
        {
            if (!Enum.IsDefined(value))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "failed to set the monitor aggregation: not one of medium, none, maximum");
            }
            MonitorConfig.Update(0, new MonitorConfig { Aggregation = value });
        }
    }

    /// <summary>Records the datapath could not write because the ring buffer was full, summed over the CPUs.</summary>
    public ulong ReadEventsLost()
    {
        Span<EventState> perCpu = EventState.CpuCount <= 256 ? stackalloc EventState[EventState.CpuCount] : new EventState[EventState.CpuCount];
        if (!EventState.TryLookup(0, perCpu))
        {
            return 0;
        }
        ulong lost = 0;
        foreach (var cpu in perCpu)
        {
            lost += cpu.Lost;
        }
        return lost;
    }

    /// <summary>
    /// Starts reading the event ring buffer (drop, trace and policy verdict records; decode
    /// them with <see cref="DatapathEventReader"/>). The caller disposes the reader.
    /// </summary>
    /// <param name="slots">Records that may wait for the consumer before the reader drops them (and counts them lost).</param>
    public BpfRingBufferReader OpenEvents(int slots = 4096)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Slots of 256 bytes: the largest record (trace and policy verdict) is 128.
        return new BpfRingBufferReader(BpfMap.OpenPinned(Path.Combine(PinDirectory, "events")), slots, slotSize: 256);
    }
}
