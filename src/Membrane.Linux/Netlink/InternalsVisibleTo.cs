// The netlink message parsers (TryParseLink, ReadError, ...) are internal plumbing with
// their own unit tests over crafted kernel messages.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("Membrane.Linux.Tests")]
