/*
 * Produces to (and reads back from) Kafka with the Java client, kafka-clients 4.1.2, as producers
 * in the wild do: compressed batches, many headers, transactions. A single source file, run
 * without a build step against the broker's own jars:
 *
 *   java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp ".stack/kafka/lib/*" \
 *     test/support/java/Produce.java [produce|consume] < spec.json
 *
 * The spec is ONE JSON document on stdin.
 *
 * produce (the default):
 *   { "bootstrapServers": "127.0.0.1:9092", "topic": "t",
 *     "compression": "none|gzip|snappy|lz4|zstd",          (default none)
 *     "lingerMs": 1000, "batchSize": 1048576,               (optional)
 *     "acks": "all|1|0|-1",                                 (optional)
 *     "enableIdempotence": true,                            (optional; the client's default otherwise)
 *     "transactionalId": "tx-1", "abort": false,            (optional: all records in one transaction)
 *     "config": { "max.request.size": "2097152" },          (optional: any other producer setting)
 *     "records": [ { "partition": 0,                        (optional)
 *                    "key": "text" | {"text":..} | {"base64":..} | null,
 *                    "value": {"text": ".."} | {"base64": ".."} | null,
 *                    "timestamp": 1700000000000,            (optional, ms)
 *                    "headers": [ { "name": "any", "value": "<base64>" | null }, ... ] } ] }
 *   Sends the records in order with one producer, flushes (then commits or aborts the transaction)
 *   and prints ONE JSON line: [{"partition":0,"offset":"0"}, ...], one entry per record in input
 *   order (offset -1 with acks=0).
 *
 * consume:
 *   { "bootstrapServers": "...", "topic": "t",
 *     "count": 200,                 (optional: stop after this many records; else at the end offsets
 *                                    the partitions had when the read began)
 *     "timeoutMs": 30000,           (optional, default 30000: stop then with what was read)
 *     "isolationLevel": "read_committed|read_uncommitted",   (default read_committed)
 *     "partitions": [0, 1] }        (optional, default all)
 *   Reads from the beginning (assigned partitions, no consumer group) and prints one JSON line per
 *   record: {"partition":0,"offset":"0","timestamp":"..","key":"<base64>"|null,
 *   "value":"<base64>"|null,"headers":[{"name":"..","value":"<base64>"|null}]}.
 *
 * Output is ASCII JSON (non-ASCII escaped as \\uXXXX); any failure ends with a message on stderr
 * and exit code 1 (2 for a bad spec).
 */

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Produce {
  /** A spec that cannot be used as given (exit code 2). */
  static final class SpecError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    SpecError(String message) {
      super(message);
    }
  }

  static final ObjectMapper JSON =
      JsonMapper.builder().enable(JsonWriteFeature.ESCAPE_NON_ASCII).build();
  static final Set<String> CODECS = Set.of("none", "gzip", "snappy", "lz4", "zstd");

  public static void main(String[] args) {
    // Before any Kafka class asks for a logger: slf4j-simple writes to stderr, warnings only.
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
    String mode = args.length == 0 ? "produce" : args[0];
    int code;
    try {
      if (args.length > 1) throw new SpecError("one argument at most (produce|consume), got " + args.length);
      JsonNode spec = JSON.readTree(System.in.readAllBytes());
      if (spec == null || !spec.isObject()) throw new SpecError("stdin must hold one JSON object");
      switch (mode) {
        case "produce" -> produce(spec);
        case "consume" -> consume(spec);
        default -> throw new SpecError("unknown mode '" + mode + "' (produce|consume)");
      }
      code = 0;
    } catch (SpecError e) {
      System.err.println("Produce.java " + mode + ": bad spec: " + e.getMessage());
      code = 2;
    } catch (Throwable e) {
      Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
      System.err.println("Produce.java " + mode + ": " + cause);
      for (Throwable c = cause.getCause(); c != null; c = c.getCause()) System.err.println("  caused by: " + c);
      code = 1;
    }
    System.out.flush();
    // The client's threads are closed by then; exit does not wait for anything else.
    System.exit(code);
  }

  // ---------------------------------------------------------------- produce

  static void produce(JsonNode spec) throws Exception {
    String topic = text(spec, "topic", true);
    String compression = spec.hasNonNull("compression") ? text(spec, "compression", true) : "none";
    if (!CODECS.contains(compression)) throw new SpecError("compression must be one of " + CODECS + ", got " + compression);
    JsonNode records = spec.get("records");
    if (records == null || !records.isArray()) throw new SpecError("records must be an array");

    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, text(spec, "bootstrapServers", true));
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
    if (spec.hasNonNull("lingerMs")) props.put(ProducerConfig.LINGER_MS_CONFIG, String.valueOf(integer(spec, "lingerMs", "lingerMs")));
    if (spec.hasNonNull("batchSize")) props.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(integer(spec, "batchSize", "batchSize")));
    if (spec.hasNonNull("acks")) props.put(ProducerConfig.ACKS_CONFIG, spec.get("acks").asText());
    // The client's default is an idempotent producer; it turns that off by itself only when acks is not all.
    if (spec.hasNonNull("enableIdempotence")) {
      props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, String.valueOf(bool(spec, "enableIdempotence")));
    }
    String transactionalId = spec.hasNonNull("transactionalId") ? text(spec, "transactionalId", true) : null;
    if (transactionalId != null) props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
    boolean abort = spec.hasNonNull("abort") && bool(spec, "abort");
    if (abort && transactionalId == null) throw new SpecError("abort needs a transactionalId");
    putConfig(props, spec);

    List<ProducerRecord<byte[], byte[]>> toSend = new ArrayList<>();
    for (int i = 0; i < records.size(); i++) toSend.add(record(topic, records.get(i), "records[" + i + "]"));

    List<Future<RecordMetadata>> sent = new ArrayList<>(toSend.size());
    KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props);
    try {
      if (transactionalId != null) {
        producer.initTransactions();
        producer.beginTransaction();
      }
      for (ProducerRecord<byte[], byte[]> r : toSend) sent.add(producer.send(r));
      producer.flush();
      // Every send is acknowledged (or failed) after flush; a failed one ends the run here.
      ArrayNode out = JSON.createArrayNode();
      for (int i = 0; i < sent.size(); i++) {
        RecordMetadata m;
        try {
          m = sent.get(i).get();
        } catch (ExecutionException e) {
          throw new RuntimeException("records[" + i + "] was not written: " + e.getCause(), e.getCause());
        }
        out.addObject().put("partition", m.partition()).put("offset", String.valueOf(m.offset()));
      }
      if (transactionalId != null) {
        if (abort) producer.abortTransaction();
        else producer.commitTransaction();
      }
      println(out);
    } finally {
      producer.close(Duration.ofSeconds(10));
    }
  }

  static ProducerRecord<byte[], byte[]> record(String topic, JsonNode r, String where) {
    if (r == null || !r.isObject()) throw new SpecError(where + " must be an object");
    Integer partition = r.hasNonNull("partition") ? integer(r, "partition", where + ".partition") : null;
    Long timestamp = r.hasNonNull("timestamp") ? r.get("timestamp").asLong() : null;
    byte[] key = bytes(r.get("key"), where + ".key");
    byte[] value = bytes(r.get("value"), where + ".value");
    List<Header> headers = new ArrayList<>();
    JsonNode hs = r.get("headers");
    if (hs != null && !hs.isNull()) {
      if (!hs.isArray()) throw new SpecError(where + ".headers must be an array");
      for (int j = 0; j < hs.size(); j++) {
        JsonNode h = hs.get(j);
        String at = where + ".headers[" + j + "]";
        if (h == null || !h.isObject() || !h.has("name") || !h.get("name").isTextual()) {
          throw new SpecError(at + " must be {name: string, value: base64 | null}");
        }
        JsonNode v = h.get("value");
        byte[] hv;
        if (v == null || v.isNull()) hv = null;
        else if (v.isTextual()) hv = base64(v.asText(), at + ".value");
        else hv = bytes(v, at + ".value");
        headers.add(new RecordHeader(h.get("name").asText(), hv));
      }
    }
    return new ProducerRecord<>(topic, partition, timestamp, key, value, headers);
  }

  // ---------------------------------------------------------------- consume

  static void consume(JsonNode spec) throws Exception {
    String topic = text(spec, "topic", true);
    long count = spec.hasNonNull("count") ? spec.get("count").asLong() : -1;
    long timeoutMs = spec.hasNonNull("timeoutMs") ? spec.get("timeoutMs").asLong() : 30_000;
    String isolation = spec.hasNonNull("isolationLevel") ? text(spec, "isolationLevel", true) : "read_committed";
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, text(spec, "bootstrapServers", true));
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    putConfig(props, spec);

    long deadline = System.currentTimeMillis() + timeoutMs;
    KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props);
    try {
      List<TopicPartition> partitions = new ArrayList<>();
      if (spec.hasNonNull("partitions")) {
        for (JsonNode p : spec.get("partitions")) partitions.add(new TopicPartition(topic, p.asInt()));
      } else {
        List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(Math.max(1, timeoutMs)));
        if (infos == null || infos.isEmpty()) throw new RuntimeException("topic " + topic + " has no partitions");
        for (PartitionInfo info : infos) partitions.add(new TopicPartition(topic, info.partition()));
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      // Without a count: done once every partition's position reaches the end it had now (for
      // read_committed, its last stable offset).
      Map<TopicPartition, Long> ends = count >= 0 ? Map.of() : new HashMap<>(consumer.endOffsets(partitions));
      long read = 0;
      while (System.currentTimeMillis() < deadline) {
        if (count >= 0 ? read >= count : reachedEnds(consumer, ends)) return;
        long left = Math.max(1, Math.min(500, deadline - System.currentTimeMillis()));
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(left))) {
          if (count >= 0 && read >= count) break;
          ObjectNode o = JSON.createObjectNode();
          o.put("partition", r.partition()).put("offset", String.valueOf(r.offset()));
          o.put("timestamp", String.valueOf(r.timestamp()));
          o.put("key", r.key() == null ? null : Base64.getEncoder().encodeToString(r.key()));
          o.put("value", r.value() == null ? null : Base64.getEncoder().encodeToString(r.value()));
          ArrayNode hs = o.putArray("headers");
          for (Header h : r.headers()) {
            hs.addObject()
                .put("name", h.key())
                .put("value", h.value() == null ? null : Base64.getEncoder().encodeToString(h.value()));
          }
          println(o);
          read++;
        }
      }
      String want = count >= 0 ? count + " records" : "the end offsets " + describe(ends);
      System.err.println("Produce.java consume: timed out after " + timeoutMs + " ms with " + read + " records, before " + want);
    } finally {
      consumer.close(CloseOptions.timeout(Duration.ofSeconds(10)));
    }
  }

  static boolean reachedEnds(KafkaConsumer<byte[], byte[]> consumer, Map<TopicPartition, Long> ends) {
    for (Iterator<Map.Entry<TopicPartition, Long>> it = ends.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<TopicPartition, Long> e = it.next();
      if (consumer.position(e.getKey()) >= e.getValue()) it.remove();
    }
    return ends.isEmpty();
  }

  static String describe(Map<TopicPartition, Long> ends) {
    return ends.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", "));
  }

  // ---------------------------------------------------------------- spec and output helpers

  static void println(JsonNode node) throws Exception {
    OutputStream out = System.out;
    out.write(JSON.writeValueAsBytes(node));
    out.write('\n');
    out.flush();
  }

  static void putConfig(Properties props, JsonNode spec) {
    JsonNode config = spec.get("config");
    if (config == null || config.isNull()) return;
    if (!config.isObject()) throw new SpecError("config must be an object of strings");
    for (Map.Entry<String, JsonNode> e : config.properties()) props.put(e.getKey(), e.getValue().asText());
  }

  /** null, a string (UTF-8 text), {"text": ...} or {"base64": ...}. */
  static byte[] bytes(JsonNode v, String where) {
    if (v == null || v.isNull()) return null;
    if (v.isTextual()) return v.asText().getBytes(StandardCharsets.UTF_8);
    if (v.isObject() && v.size() == 1 && v.hasNonNull("text") && v.get("text").isTextual()) {
      return v.get("text").asText().getBytes(StandardCharsets.UTF_8);
    }
    if (v.isObject() && v.size() == 1 && v.hasNonNull("base64") && v.get("base64").isTextual()) {
      return base64(v.get("base64").asText(), where);
    }
    throw new SpecError(where + " must be null, a string, {\"text\": string} or {\"base64\": string}");
  }

  static byte[] base64(String s, String where) {
    try {
      return Base64.getDecoder().decode(s);
    } catch (IllegalArgumentException e) {
      throw new SpecError(where + " is not base64: " + e.getMessage());
    }
  }

  static String text(JsonNode spec, String field, boolean required) {
    JsonNode v = spec.get(field);
    if (v == null || v.isNull()) {
      if (required) throw new SpecError(field + " is required");
      return null;
    }
    if (!v.isTextual()) throw new SpecError(field + " must be a string");
    return v.asText();
  }

  static int integer(JsonNode spec, String field, String where) {
    JsonNode v = spec.get(field);
    if (!v.isIntegralNumber() || !v.canConvertToInt()) throw new SpecError(where + " must be an integer");
    return v.asInt();
  }

  static boolean bool(JsonNode spec, String field) {
    JsonNode v = spec.get(field);
    if (!v.isBoolean()) throw new SpecError(field + " must be true or false");
    return v.asBoolean();
  }
}
