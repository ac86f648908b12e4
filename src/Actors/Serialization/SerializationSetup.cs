using Akka.Hosting;
using LiteVae.Actors.Protocol;

namespace LiteVae.Actors.Serialization;

public static class SerializationSetup
{
    /// <summary>Classic HOCON binding (for ActorSystems built without Akka.Hosting, e.g. the CLI client).</summary>
    public const string Hocon = """
        akka.actor {
          serializers.litevae = "LiteVae.Actors.Serialization.LiteVaeSerializer, LiteVae.Actors"
          serialization-bindings { "LiteVae.Actors.Protocol.ILiteVaeMessage, LiteVae.Actors" = litevae }
          serialization-identifiers { "LiteVae.Actors.Serialization.LiteVaeSerializer, LiteVae.Actors" = 7717 }
        }
        """;

    public static AkkaConfigurationBuilder WithLiteVaeSerialization(this AkkaConfigurationBuilder builder) =>
        builder.WithCustomSerializer("litevae", [typeof(ILiteVaeMessage)], system => new LiteVaeSerializer(system));
}
