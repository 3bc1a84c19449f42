// Sends one batch of FP32 rows to a Conduit inference server and prints the outputs as JSON.
//
//   java -jar target/conduit-example.jar --target 127.0.0.1:8001 --model credit --rows rows.csv
//   java -jar target/conduit-example.jar --target 127.0.0.1:8001 --model credit --rows rows.csv \
//       --control-plane 127.0.0.1:8100 --token "$CONDUIT_TOKEN" --alias production
//   java -jar target/conduit-example.jar --target server.example:8001 --model credit --rows rows.csv \
//       --token "$CONDUIT_TOKEN" --tls-ca ca.pem --tls-cert client.pem --tls-key client-key.pem
//
// Rows are CSV, one row per line (`-` reads stdin). With --alias, the version to call is looked up in the control
// plane first. The token (default $CONDUIT_TOKEN) goes with every call as `authorization: Bearer TOKEN`. With
// --tls-ca the inference connection uses TLS and trusts that CA (the system's roots when only --tls-cert is given);
// --tls-cert and --tls-key present a client certificate to a server that requires mutual TLS. The input travels as
// raw little-endian FP32 bytes (raw_input_contents), which costs the server no per-value decoding; outputs come back
// the same way in raw_output_contents. A failed call prints its gRPC status on stderr and exits 1.
package ai.conduit.example;

import ai.conduit.control.v1.ControlPlaneGrpc;
import ai.conduit.control.v1.GetVersionRequest;
import ai.conduit.control.v1.VersionRef;
import ai.conduit.inference.GRPCInferenceServiceGrpc;
import ai.conduit.inference.ModelInferRequest;
import ai.conduit.inference.ModelInferResponse;
import com.google.protobuf.ByteString;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.MetadataUtils;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.StringJoiner;
import java.util.concurrent.TimeUnit;

public final class Example {
  private Example() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> options = new HashMap<>();
    options.put("--target", "127.0.0.1:8001");
    options.put("--version", "");
    options.put("--input", "input");
    options.put("--rows", "-");
    options.put("--token", System.getenv().getOrDefault("CONDUIT_TOKEN", ""));
    for (int i = 0; i < args.length; i += 2) {
      if (!List.of("--target", "--model", "--version", "--input", "--rows", "--control-plane", "--token", "--alias",
              "--tls-ca", "--tls-cert", "--tls-key").contains(args[i]) || i + 1 >= args.length) {
        fail("error: unknown or incomplete option " + args[i]);
      }
      options.put(args[i], args[i + 1]);
    }
    String model = options.get("--model");
    if (model == null) {
      fail("error: --model is required");
    }
    if (options.containsKey("--tls-cert") != options.containsKey("--tls-key")) {
      fail("error: --tls-cert and --tls-key go together");
    }
    try {
      String version = options.get("--version");
      if (options.containsKey("--alias")) {
        version = Long.toString(resolveAlias(options, model));
        System.err.println(model + "@" + options.get("--alias") + " is version " + version);
      }
      System.out.println(infer(options, model, version, readRows(options.get("--rows"))));
    } catch (StatusRuntimeException e) {
      fail("rpc error: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
    } catch (IOException e) {
      fail("error: " + e.getMessage());
    }
  }

  private static Metadata bearer(String token) {
    Metadata metadata = new Metadata();
    metadata.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
    return metadata;
  }

  // Plaintext, or TLS trusting --tls-ca (the system's roots when absent) with --tls-cert/--tls-key for mutual TLS.
  private static ChannelCredentials transport(Map<String, String> options) throws IOException {
    if (!options.containsKey("--tls-ca") && !options.containsKey("--tls-cert")) {
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
    if (options.containsKey("--tls-ca")) {
      tls.trustManager(new File(options.get("--tls-ca")));
    }
    if (options.containsKey("--tls-cert")) {
      tls.keyManager(new File(options.get("--tls-cert")), new File(options.get("--tls-key")));
    }
    return tls.build();
  }

  private static void fail(String message) {
    System.err.println(message);
    System.exit(1);
  }

  private static long resolveAlias(Map<String, String> options, String model) throws InterruptedException {
    ManagedChannel channel = ManagedChannelBuilder.forTarget(options.get("--control-plane")).usePlaintext().build();
    try {
      VersionRef ref = VersionRef.newBuilder().setModel(model).setAlias(options.get("--alias")).build();
      return ControlPlaneGrpc.newBlockingStub(channel)
          .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(bearer(options.get("--token"))))
          .withDeadlineAfter(10, TimeUnit.SECONDS)
          .getVersion(GetVersionRequest.newBuilder().setRef(ref).build())
          .getVersion();
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static List<float[]> readRows(String path) throws IOException {
    BufferedReader reader = path.equals("-")
        ? new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))
        : Files.newBufferedReader(Paths.get(path));
    List<float[]> rows = new ArrayList<>();
    for (String line = reader.readLine(); line != null; line = reader.readLine()) {
      if (line.isBlank()) {
        continue;
      }
      String[] cells = line.split(",");
      float[] row = new float[cells.length];
      for (int i = 0; i < cells.length; i++) {
        row[i] = Float.parseFloat(cells[i].trim());
      }
      rows.add(row);
    }
    return rows;
  }

  private static String infer(Map<String, String> options, String model, String version, List<float[]> rows)
      throws InterruptedException, IOException {
    int features = rows.isEmpty() ? 0 : rows.get(0).length;
    // Little-endian FP32, the byte order the protocol prescribes for raw contents.
    ByteBuffer raw = ByteBuffer.allocate(rows.size() * features * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float[] row : rows) {
      for (float value : row) {
        raw.putFloat(value);
      }
    }
    raw.flip();
    ModelInferRequest request = ModelInferRequest.newBuilder()
        .setModelName(model)
        .setModelVersion(version)
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder()
            .setName(options.get("--input")).setDatatype("FP32").addShape(rows.size()).addShape(features))
        .addRawInputContents(ByteString.copyFrom(raw))
        .build();
    ManagedChannel channel = Grpc.newChannelBuilder(options.get("--target"), transport(options)).build();
    try {
      GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub =
          GRPCInferenceServiceGrpc.newBlockingStub(channel);
      if (!options.get("--token").isEmpty()) {
        stub = stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(bearer(options.get("--token"))));
      }
      ModelInferResponse response = stub.withDeadlineAfter(10, TimeUnit.SECONDS).modelInfer(request);
      StringJoiner outputs = new StringJoiner(",", "[", "]");
      for (int i = 0; i < response.getOutputsCount(); i++) {
        ModelInferResponse.InferOutputTensor output = response.getOutputs(i);
        StringJoiner shape = new StringJoiner(",", "[", "]");
        output.getShapeList().forEach(d -> shape.add(Long.toString(d)));
        outputs.add("{\"name\":\"" + output.getName() + "\",\"datatype\":\"" + output.getDatatype()
            + "\",\"shape\":" + shape + ",\"data\":"
            + decode(output.getDatatype(), response.getRawOutputContents(i)) + "}");
      }
      return "{\"model_name\":\"" + response.getModelName() + "\",\"model_version\":\""
          + response.getModelVersion() + "\",\"outputs\":" + outputs + "}";
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static String decode(String datatype, ByteString raw) {
    ByteBuffer buffer = raw.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    StringJoiner values = new StringJoiner(",", "[", "]");
    while (buffer.hasRemaining()) {
      switch (datatype) {
        case "FP32": values.add(Float.toString(buffer.getFloat())); break;
        case "FP64": values.add(Double.toString(buffer.getDouble())); break;
        case "INT32": values.add(Integer.toString(buffer.getInt())); break;
        case "INT64": values.add(Long.toString(buffer.getLong())); break;
        default: throw new IllegalArgumentException("this example does not decode " + datatype);
      }
    }
    return values.toString();
  }
}
