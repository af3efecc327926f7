using System.Runtime.InteropServices;

namespace Membrane.Cli.Client;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM as the normal end of a stream (<c>observe --follow</c>,
/// <c>monitor</c>): the signal is caught and cancels <see cref="Token"/>, so the command
/// prints what it holds, closes its capture file and exits 0, as <c>hubble observe -f</c> does,
/// instead of the process dying mid-write. Handled here rather than left to the command-line
/// library: as Program.cs invokes System.CommandLine 2.0.0, a SIGINT killed
/// `membrane observe -f` outright (wait status: signal 2) before its action could finish.
/// </summary>
internal sealed class FlowInterrupt : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly PosixSignalRegistration _interrupt, _terminate;

    public FlowInterrupt(CancellationToken outer)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
    }

    /// <summary>Cancelled by the first signal (or by the outer token).</summary>
    public CancellationToken Token => _cts.Token;

    private void Stop(PosixSignalContext context)
    {
        context.Cancel = true; // no default termination: the stream's end is handled by the command
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // A signal that raced the command's own end: nothing left to stop.
        }
    }

    public void Dispose()
    {
        _interrupt.Dispose();
        _terminate.Dispose();
        _cts.Dispose();
    }
}
