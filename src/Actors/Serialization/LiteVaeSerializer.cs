using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using SerializationException = System.Runtime.Serialization.SerializationException;
using LiteVae.Actors.Protocol;
using LiteVae.Data.Pipeline;

namespace LiteVae.Actors.Serialization;

/// <summary>
/// The serializer for every <see cref="ILiteVaeMessage"/>: frozen short manifests (<see cref="Manifests"/>),
/// compact binary for <see cref="BatchChunk"/> (the bulk pixels, copied once), and JSON for the small control
/// messages, with actor references written as their serialized paths and nested Akka objects (stream refs)
/// through Akka's own serializers.
/// </summary>
public sealed class LiteVaeSerializer : SerializerWithStringManifest
{
    /// <summary>Unique in the system; Akka reserves 0..100.</summary>
    public const int Id = 7717;

    private const byte ChunkFormat = 1;
    private readonly JsonSerializerOptions _json;

    public LiteVaeSerializer(ExtendedActorSystem system) : base(system)
    {
        _json = new JsonSerializerOptions
        {
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            Converters = { new ActorRefConverter(system), new AkkaObjectConverterFactory(system) },
        };
    }

    public override int Identifier => Id;

    public override string Manifest(object o) =>
        Manifests.ByType.TryGetValue(o.GetType(), out var m)
            ? m
            : throw new ArgumentException($"{o.GetType()} has no LiteVae wire manifest; add one to Manifests.");

    public override byte[] ToBinary(object obj) => obj switch
    {
        BatchChunk chunk => WriteChunk(chunk),
        TransferProtocol.Chunk chunk => WriteFileChunk(chunk),
        _ => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), _json),
    };

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!Manifests.ByManifest.TryGetValue(manifest, out var type))
            throw new SerializationException($"Unknown LiteVae manifest '{manifest}' (a node of another version?).");
        if (type == typeof(BatchChunk))
            return ReadChunk(bytes);
        if (type == typeof(TransferProtocol.Chunk))
            return ReadFileChunk(bytes);
        return JsonSerializer.Deserialize(bytes, type, _json)
               ?? throw new SerializationException($"LiteVae message '{manifest}' decoded to null.");
    }

    private const byte FileChunkFormat = 1;

    /// <summary>A checkpoint file's chunk: [format][offset i64][checkpoint, file: i32 length + UTF-8][data: i32 length + bytes].</summary>
    private static byte[] WriteFileChunk(TransferProtocol.Chunk c)
    {
        byte[] checkpoint = System.Text.Encoding.UTF8.GetBytes(c.Checkpoint), file = System.Text.Encoding.UTF8.GetBytes(c.File);
        var bytes = new byte[1 + 8 + 4 + checkpoint.Length + 4 + file.Length + 4 + c.Data.Length];
        var s = bytes.AsSpan();
        s[0] = FileChunkFormat;
        int p = 1;
        BinaryPrimitives.WriteInt64LittleEndian(s[p..], c.Offset); p += 8;
        foreach (var part in new[] { checkpoint, file, c.Data })
        {
            BinaryPrimitives.WriteInt32LittleEndian(s[p..], part.Length); p += 4;
            part.CopyTo(s[p..]); p += part.Length;
        }
        return bytes;
    }

    private static TransferProtocol.Chunk ReadFileChunk(byte[] bytes)
    {
        var s = bytes.AsSpan();
        if (s.Length < 9 || s[0] != FileChunkFormat)
            throw new SerializationException($"checkpoint chunk format {(s.Length > 0 ? s[0] : -1)} is not {FileChunkFormat} (a node of another version?).");
        int p = 1;
        long offset = BinaryPrimitives.ReadInt64LittleEndian(s[p..]); p += 8;
        byte[] Next()
        {
            int n = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(p)); p += 4;
            var part = bytes.AsSpan(p, n).ToArray(); p += n;
            return part;
        }
        string checkpoint = System.Text.Encoding.UTF8.GetString(Next()), file = System.Text.Encoding.UTF8.GetString(Next());
        return new TransferProtocol.Chunk(checkpoint, file, offset, Next());
    }

    /// <summary>The samples of a batch travel as JSON inside the binary chunk (only in its first chunk).</summary>
    private sealed record ChunkSamples(IReadOnlyList<SampleInfo> Samples, IReadOnlyList<SkippedSample> Skipped);

    private static byte[] WriteChunk(BatchChunk c)
    {
        byte[] samples = c.ChunkIndex == 0 ? JsonSerializer.SerializeToUtf8Bytes(new ChunkSamples(c.Samples, c.Skipped)) : [];
        int header = 1 + 8 + 4 * 5;
        var bytes = new byte[header + 4 + samples.Length + 4 + c.Pixels.Length];
        var s = bytes.AsSpan();
        s[0] = ChunkFormat;
        int p = 1;
        BinaryPrimitives.WriteInt64LittleEndian(s[p..], c.Start); p += 8;
        foreach (int v in new[] { c.Span, c.ChunkIndex, c.ChunkCount, c.Height, c.Width })
        {
            BinaryPrimitives.WriteInt32LittleEndian(s[p..], v); p += 4;
        }
        BinaryPrimitives.WriteInt32LittleEndian(s[p..], samples.Length); p += 4;
        samples.CopyTo(s[p..]); p += samples.Length;
        BinaryPrimitives.WriteInt32LittleEndian(s[p..], c.Pixels.Length); p += 4;
        c.Pixels.Span.CopyTo(s[p..]);
        return bytes;
    }

    private static BatchChunk ReadChunk(byte[] bytes)
    {
        var s = bytes.AsSpan();
        if (s.Length < 1 + 8 + 20 + 8 || s[0] != ChunkFormat)
            throw new SerializationException($"Batch chunk of {s.Length} bytes has an unknown format.");
        int p = 1;
        long start = BinaryPrimitives.ReadInt64LittleEndian(s[p..]); p += 8;
        var v = new int[5];
        for (int i = 0; i < 5; i++) { v[i] = BinaryPrimitives.ReadInt32LittleEndian(s[p..]); p += 4; }
        int n = BinaryPrimitives.ReadInt32LittleEndian(s[p..]); p += 4;
        if (n < 0 || n > s.Length - p - 4)
            throw new SerializationException($"Batch chunk claims {n} bytes of samples in {s.Length} bytes.");
        var samples = n == 0 ? new ChunkSamples([], []) : JsonSerializer.Deserialize<ChunkSamples>(s.Slice(p, n))
            ?? throw new SerializationException("Batch chunk samples decoded to null.");
        p += n;
        int len = BinaryPrimitives.ReadInt32LittleEndian(s[p..]); p += 4;
        if (len < 0 || len != s.Length - p)
            throw new SerializationException($"Batch chunk pixel length {len} does not match its {s.Length - p} bytes.");
        return new BatchChunk(start, v[0], v[1], v[2], v[3], v[4], samples.Samples, samples.Skipped, new ReadOnlyMemory<byte>(bytes, p, len));
    }

    private sealed class ActorRefConverter(ExtendedActorSystem system) : JsonConverter<IActorRef>
    {
        public override IActorRef? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? null : system.Provider.ResolveActorRef(reader.GetString()!);

        public override void Write(Utf8JsonWriter writer, IActorRef value, JsonSerializerOptions options) =>
            writer.WriteStringValue(Akka.Serialization.Serialization.SerializedActorPath(value));
    }

    /// <summary>Objects that Akka knows how to serialize (stream refs) travel as {serializer, manifest, bytes}.</summary>
    private sealed class AkkaObjectConverterFactory(ExtendedActorSystem system) : JsonConverterFactory
    {
        public override bool CanConvert(Type t) => t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Akka.Streams.ISourceRef<>);

        public override JsonConverter CreateConverter(Type t, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(AkkaObjectConverter<>).MakeGenericType(t), system)!;
    }

    private sealed class AkkaObjectConverter<T>(ExtendedActorSystem system) : JsonConverter<T> where T : class
    {
        private sealed record Wrapped(int Serializer, string Manifest, byte[] Bytes);

        public override T? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var w = JsonSerializer.Deserialize<Wrapped>(ref reader, options);
            return w is null ? null : (T)system.Serialization.Deserialize(w.Bytes, w.Serializer, w.Manifest);
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options)
        {
            var serializer = system.Serialization.FindSerializerFor(value);
            string manifest = Akka.Serialization.Serialization.ManifestFor(serializer, value);
            JsonSerializer.Serialize(writer, new Wrapped(serializer.Identifier, manifest, serializer.ToBinary(value)), options);
        }
    }
}
