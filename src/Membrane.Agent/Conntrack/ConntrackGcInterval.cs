using Membrane.Datapath;

namespace Membrane.Agent.Conntrack;

/// <summary>
/// How long the agent waits between two conntrack garbage collections, adapted after each
/// scheduled run to what it found (after Cilium's pkg/maps/ctmap/gc calculateInterval, plus a
/// ceiling from table fill):
/// <list type="number">
/// <item>the delete ratio, deleted / table size of the table that freed most: above 0.25 the
/// next run comes sooner, previous × (1 − min(ratio, 0.9)) (1.33× to 10× sooner); below 0.05
/// the table is quiet and the interval grows by half; in between it stays;</item>
/// <item>the fill, live entries / table size of the fuller table: an LRU table that runs full
/// evicts its least recently used entries, live connections among them, rather than the expired
/// ones GC would have freed, so the fuller the table the lower the ceiling: up to half full the
/// ceiling is <see cref="Max"/>, from <see cref="PressureFill"/> on it is <see cref="Min"/>,
/// linear in between;</item>
/// <item>the result is rounded to whole seconds and kept within [<see cref="Min"/>, <see cref="Max"/>].</item>
/// </list>
/// </summary>
public static class ConntrackGcInterval
{
    /// <summary>The shortest interval (Cilium's ConntrackGCMinInterval).</summary>
    public static readonly TimeSpan Min = TimeSpan.FromSeconds(10);

    /// <summary>The longest interval: a quiet node still sweeps every five minutes.</summary>
    public static readonly TimeSpan Max = TimeSpan.FromMinutes(5);

    /// <summary>The interval after the first run, before any adaptation: the non-TCP lifetime's default.</summary>
    public static readonly TimeSpan Initial = TimeSpan.FromMinutes(1);

    /// <summary>A table fuller than this is under pressure: a warning is logged and GC runs at <see cref="Min"/>.</summary>
    public const double PressureFill = 0.9;

    /// <summary>Up to this fill the ceiling stays at <see cref="Max"/>.</summary>
    public const double RelaxedFill = 0.5;

    /// <summary>Above this delete ratio the interval shrinks.</summary>
    public const double BusyDeleteRatio = 0.25;

    /// <summary>Below this delete ratio the interval grows.</summary>
    public const double QuietDeleteRatio = 0.05;

    /// <summary>The interval after a run that found <paramref name="result"/>.</summary>
    public static TimeSpan Next(TimeSpan previous, ConntrackGcResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var deleteRatio = result.Tables.Count == 0 ? 0 : result.Tables.Max(t => t.DeleteRatio);
        var fill = result.Tables.Count == 0 ? 0 : result.Tables.Max(t => t.Fill);
        return Next(previous, deleteRatio, fill);
    }

    /// <summary>The interval after a run with <paramref name="deleteRatio"/> (0 … 1) that left the fullest table at <paramref name="fill"/> (0 … 1).</summary>
    public static TimeSpan Next(TimeSpan previous, double deleteRatio, double fill)
    {
        var seconds = previous.TotalSeconds;
        if (deleteRatio > BusyDeleteRatio)
        {
            seconds *= 1 - Math.Min(deleteRatio, 0.9);
        }
        else if (deleteRatio < QuietDeleteRatio)
        {
            seconds *= 1.5;
        }
        seconds = Math.Min(seconds, Ceiling(fill).TotalSeconds);
        return TimeSpan.FromSeconds(Math.Clamp(Math.Round(seconds, MidpointRounding.AwayFromZero), Min.TotalSeconds, Max.TotalSeconds));
    }

    /// <summary>The longest interval a table at <paramref name="fill"/> allows.</summary>
    public static TimeSpan Ceiling(double fill)
    {
        if (fill <= RelaxedFill)
        {
            return Max;
        }
        if (fill >= PressureFill)
        {
            return Min;
        }
        var share = (fill - RelaxedFill) / (PressureFill - RelaxedFill);
        return TimeSpan.FromSeconds(Math.Round(Max.TotalSeconds - ((Max.TotalSeconds - Min.TotalSeconds) * share), MidpointRounding.AwayFromZero));
    }
}
