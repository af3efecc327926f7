namespace Membrane.Packets;
