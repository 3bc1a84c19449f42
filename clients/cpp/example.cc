// Sends one batch of FP32 rows to a Conduit inference server and prints the outputs as JSON.
//
//   build/conduit_example --target 127.0.0.1:8001 --model credit --rows rows.csv
//   build/conduit_example --target 127.0.0.1:8001 --model credit --rows rows.csv \
//       --control-plane 127.0.0.1:8100 --token "$CONDUIT_TOKEN" --alias production
//   build/conduit_example --target server.example:8001 --model credit --rows rows.csv --token "$CONDUIT_TOKEN" \
//       --tls-ca ca.pem --tls-cert client.pem --tls-key client-key.pem
//
// Rows are CSV, one row per line (`-` reads stdin). With --alias, the version to call is looked up in the control plane
// first. The token (default $CONDUIT_TOKEN) goes with every call as `authorization: Bearer TOKEN`. With --tls-ca the
// inference connection uses TLS and trusts that CA (the system's roots when only --tls-cert is given); --tls-cert and
// --tls-key present a client certificate to a server that requires mutual TLS. The input travels as raw little-endian
// FP32 bytes (raw_input_contents), which costs the server no per-value decoding; outputs come back the same way in
// raw_output_contents. A failed call prints its gRPC status on stderr and exits 1.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "control_plane/protocol/control_plane.grpc.pb.h"
#include "inference_server/protocol/grpc_service.grpc.pb.h"

namespace {

struct Options {
  std::string target = "127.0.0.1:8001";
  std::string model, version, input = "input", rows = "-";
  std::string control_plane, token, alias;
  std::string tls_ca, tls_cert, tls_key;
};

const char* kCodeNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                            "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                            "UNAUTHENTICATED"};

[[noreturn]] void Fail(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  std::exit(1);
}

[[noreturn]] void FailRpc(const grpc::Status& status) {
  int code = status.error_code();
  std::cerr << "rpc error: " << (code >= 0 && code <= 16 ? kCodeNames[code] : "UNKNOWN") << ": "
            << status.error_message() << "\n";
  std::exit(1);
}

Options ParseArgs(int argc, char** argv) {
  Options options;
  if (const char* token = std::getenv("CONDUIT_TOKEN")) options.token = token;
  std::map<std::string, std::string*> names = {
      {"--target", &options.target},     {"--model", &options.model},     {"--version", &options.version},
      {"--input", &options.input},       {"--rows", &options.rows},       {"--control-plane", &options.control_plane},
      {"--token", &options.token},       {"--alias", &options.alias},     {"--tls-ca", &options.tls_ca},
      {"--tls-cert", &options.tls_cert}, {"--tls-key", &options.tls_key}};
  for (int i = 1; i < argc; i += 2) {
    auto found = names.find(argv[i]);
    if (found == names.end() || i + 1 >= argc) Fail(std::string("unknown or incomplete option ") + argv[i]);
    *found->second = argv[i + 1];
  }
  if (options.model.empty()) Fail("--model is required");
  if (options.tls_cert.empty() != options.tls_key.empty()) Fail("--tls-cert and --tls-key go together");
  return options;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) Fail("cannot read " + path);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Plaintext, or TLS trusting --tls-ca (the system's roots when empty) with --tls-cert/--tls-key for mutual TLS.
std::shared_ptr<grpc::ChannelCredentials> Transport(const Options& options) {
  if (options.tls_ca.empty() && options.tls_cert.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca.empty()) ssl.pem_root_certs = ReadFile(options.tls_ca);
  if (!options.tls_cert.empty()) {
    ssl.pem_cert_chain = ReadFile(options.tls_cert);
    ssl.pem_private_key = ReadFile(options.tls_key);
  }
  return grpc::SslCredentials(ssl);
}

std::vector<std::vector<float>> ReadRows(const std::string& path) {
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    if (!file) Fail("cannot read " + path);
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::vector<std::vector<float>> rows;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<float> row;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::strtof(cell.c_str(), nullptr));
    rows.push_back(std::move(row));
  }
  return rows;
}

// Little-endian FP32, the byte order the protocol prescribes for raw contents, whatever this machine's order.
std::string EncodeFp32(const std::vector<std::vector<float>>& rows) {
  std::string raw;
  for (const auto& row : rows) {
    for (float value : row) {
      uint32_t bits;
      std::memcpy(&bits, &value, sizeof bits);
      for (int shift = 0; shift < 32; shift += 8) raw.push_back(static_cast<char>((bits >> shift) & 0xff));
    }
  }
  return raw;
}

uint64_t ReadLittleEndian(const std::string& raw, size_t offset, size_t size) {
  uint64_t bits = 0;
  for (size_t i = 0; i < size; ++i) bits |= static_cast<uint64_t>(static_cast<uint8_t>(raw[offset + i])) << (8 * i);
  return bits;
}

// One output's values as JSON numbers; floats printed with enough digits to read back the same value.
std::string DecodeJson(const std::string& datatype, const std::string& raw) {
  std::ostringstream json;
  json.precision(datatype == "FP64" ? 17 : 9);
  size_t size = (datatype == "FP64" || datatype == "INT64") ? 8 : 4;
  if (datatype != "FP32" && datatype != "FP64" && datatype != "INT32" && datatype != "INT64") {
    Fail("this example does not decode " + datatype);
  }
  json << "[";
  for (size_t offset = 0; offset + size <= raw.size(); offset += size) {
    if (offset > 0) json << ",";
    uint64_t bits = ReadLittleEndian(raw, offset, size);
    if (datatype == "FP32") {
      uint32_t narrow = static_cast<uint32_t>(bits);
      float value;
      std::memcpy(&value, &narrow, sizeof value);
      json << value;
    } else if (datatype == "FP64") {
      double value;
      std::memcpy(&value, &bits, sizeof value);
      json << value;
    } else if (datatype == "INT32") {
      json << static_cast<int32_t>(bits);
    } else {
      json << static_cast<int64_t>(bits);
    }
  }
  json << "]";
  return json.str();
}

std::string Quote(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}

int64_t ResolveAlias(const Options& options) {
  auto channel = grpc::CreateChannel(options.control_plane, grpc::InsecureChannelCredentials());
  auto stub = conduit::control::v1::ControlPlane::NewStub(channel);
  conduit::control::v1::GetVersionRequest request;
  request.mutable_ref()->set_model(options.model);
  request.mutable_ref()->set_alias(options.alias);
  conduit::control::v1::ModelVersion version;
  grpc::ClientContext context;
  SetDeadline(&context);
  context.AddMetadata("authorization", "Bearer " + options.token);
  grpc::Status status = stub->GetVersion(&context, request, &version);
  if (!status.ok()) FailRpc(status);
  return version.version();
}

}  // namespace

int main(int argc, char** argv) {
  Options options = ParseArgs(argc, argv);
  if (!options.alias.empty()) {
    options.version = std::to_string(ResolveAlias(options));
    std::cerr << options.model << "@" << options.alias << " is version " << options.version << "\n";
  }
  auto rows = ReadRows(options.rows);

  inference::ModelInferRequest request;
  request.set_model_name(options.model);
  request.set_model_version(options.version);
  auto* input = request.add_inputs();
  input->set_name(options.input);
  input->set_datatype("FP32");
  input->add_shape(static_cast<int64_t>(rows.size()));
  input->add_shape(rows.empty() ? 0 : static_cast<int64_t>(rows[0].size()));
  request.add_raw_input_contents(EncodeFp32(rows));

  auto channel = grpc::CreateChannel(options.target, Transport(options));
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelInferResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  if (!options.token.empty()) context.AddMetadata("authorization", "Bearer " + options.token);
  grpc::Status status = stub->ModelInfer(&context, request, &response);
  if (!status.ok()) FailRpc(status);

  std::cout << "{\"model_name\":" << Quote(response.model_name())
            << ",\"model_version\":" << Quote(response.model_version()) << ",\"outputs\":[";
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& output = response.outputs(i);
    std::cout << (i > 0 ? "," : "") << "{\"name\":" << Quote(output.name())
              << ",\"datatype\":" << Quote(output.datatype()) << ",\"shape\":[";
    for (int d = 0; d < output.shape_size(); ++d) std::cout << (d > 0 ? "," : "") << output.shape(d);
    std::cout << "],\"data\":" << DecodeJson(output.datatype(), response.raw_output_contents(i)) << "}";
  }
  std::cout << "]}" << std::endl;
  return 0;
}
