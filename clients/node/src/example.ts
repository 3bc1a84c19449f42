// Sends one batch of FP32 rows to a Conduit inference server and prints the outputs as JSON.
//
//   node dist/example.js --target 127.0.0.1:8001 --model credit --rows rows.csv
//   node dist/example.js --target 127.0.0.1:8001 --model credit --rows rows.csv \
//       --control-plane 127.0.0.1:8100 --token "$CONDUIT_TOKEN" --alias production
//   node dist/example.js --target server.example:8001 --model credit --rows rows.csv --token "$CONDUIT_TOKEN" \
//       --tls-ca ca.pem --tls-cert client.pem --tls-key client-key.pem
//
// Rows are CSV, one row per line (`-` reads stdin). With --alias, the version to call is looked up in the control plane
// first. The token (default $CONDUIT_TOKEN) goes with every call as `authorization: Bearer TOKEN`. With --tls-ca the
// inference connection uses TLS and trusts that CA (the system's roots when only --tls-cert is given); --tls-cert and
// --tls-key present a client certificate to a server that requires mutual TLS. The input travels as raw little-endian
// FP32 bytes (`raw_input_contents`), which costs the server no per-value decoding; outputs come back the same way in
// `raw_output_contents`. A failed call prints its gRPC status on stderr and exits 1.
import { readFileSync } from "node:fs";
import { ChannelCredentials, credentials, Metadata, ServiceError, status } from "@grpc/grpc-js";
import { ControlPlaneClient, ModelVersion } from "./generated/control_plane/protocol/control_plane";
import {
  GRPCInferenceServiceClient,
  ModelInferRequest,
  ModelInferResponse,
} from "./generated/inference_server/protocol/grpc_service";

interface Options {
  target: string;
  model: string;
  version: string;
  input: string;
  rows: string;
  controlPlane: string;
  token: string;
  alias: string;
  tlsCa: string;
  tlsCert: string;
  tlsKey: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    target: "127.0.0.1:8001", model: "", version: "", input: "input", rows: "-",
    controlPlane: "", token: process.env.CONDUIT_TOKEN ?? "", alias: "", tlsCa: "", tlsCert: "", tlsKey: "",
  };
  const names: Record<string, keyof Options> = {
    "--target": "target", "--model": "model", "--version": "version", "--input": "input", "--rows": "rows",
    "--control-plane": "controlPlane", "--token": "token", "--alias": "alias",
    "--tls-ca": "tlsCa", "--tls-cert": "tlsCert", "--tls-key": "tlsKey",
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (key === undefined || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
    options[key] = argv[i + 1];
  }
  if (!options.model) throw new Error("--model is required");
  if (!options.tlsCert !== !options.tlsKey) throw new Error("--tls-cert and --tls-key go together");
  return options;
}

function readRows(path: string): number[][] {
  const text = readFileSync(path === "-" ? 0 : path, "utf8");
  return text.split("\n").filter((line) => line.trim()).map((line) => line.split(",").map(Number));
}

// Little-endian FP32, the byte order the protocol prescribes for raw contents.
function encodeFp32(rows: number[][]): Buffer {
  const buffer = Buffer.alloc(rows.length * (rows[0]?.length ?? 0) * 4);
  let offset = 0;
  for (const row of rows) for (const value of row) offset = buffer.writeFloatLE(value, offset);
  return buffer;
}

function decode(datatype: string, raw: Buffer): number[] {
  const read: Record<string, [number, (offset: number) => number]> = {
    FP32: [4, (o) => raw.readFloatLE(o)],
    FP64: [8, (o) => raw.readDoubleLE(o)],
    INT32: [4, (o) => raw.readInt32LE(o)],
    INT64: [8, (o) => Number(raw.readBigInt64LE(o))],
  };
  const reader = read[datatype];
  if (reader === undefined) throw new Error(`this example does not decode ${datatype}`);
  const [size, at] = reader;
  return Array.from({ length: raw.length / size }, (_, i) => at(i * size));
}

function resolveAlias(options: Options): Promise<ModelVersion> {
  const client = new ControlPlaneClient(options.controlPlane, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${options.token}`);
  const request = { ref: { model: options.model, alias: options.alias } };
  return new Promise((resolve, reject) => {
    client.getVersion(request, metadata, { deadline: Date.now() + 10_000 }, (error, version) => {
      client.close();
      if (error) reject(error);
      else resolve(version);
    });
  });
}

// grpc-js sends the target's host as the TLS server name even when it is an IP address (grpc/grpc-node#1919), and
// Node warns about that on stderr (DEP0123) although the certificate is still verified against the address. Only
// that warning is dropped, so that a failed call stays one line.
function dropIpServerNameWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (warning: string | Error, ...rest: unknown[]) => void;
  const replacement = (warning: string | Error, ...rest: unknown[]): void => {
    if (rest[1] !== "DEP0123") emitWarning(warning, ...rest);
  };
  process.emitWarning = replacement as typeof process.emitWarning;
}

// Plaintext, or TLS trusting --tls-ca (the system's roots when absent) with --tls-cert/--tls-key for mutual TLS.
function transport(options: Options): ChannelCredentials {
  if (!options.tlsCa && !options.tlsCert) return credentials.createInsecure();
  dropIpServerNameWarning();
  const read = (path: string): Buffer | null => (path ? readFileSync(path) : null);
  return credentials.createSsl(read(options.tlsCa), read(options.tlsKey), read(options.tlsCert));
}

function infer(options: Options, rows: number[][]): Promise<ModelInferResponse> {
  const client = new GRPCInferenceServiceClient(options.target, transport(options));
  const request = ModelInferRequest.fromPartial({
    modelName: options.model,
    modelVersion: options.version,
    inputs: [{ name: options.input, datatype: "FP32", shape: [rows.length, rows[0]?.length ?? 0] }],
    rawInputContents: [encodeFp32(rows)],
  });
  const metadata = new Metadata();
  if (options.token) metadata.set("authorization", `Bearer ${options.token}`);
  return new Promise((resolve, reject) => {
    client.modelInfer(request, metadata, { deadline: Date.now() + 10_000 }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response);
    });
  });
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.alias) {
    const version = await resolveAlias(options);
    options.version = String(version.version);
    console.error(`${options.model}@${options.alias} is version ${options.version}`);
  }
  const response = await infer(options, readRows(options.rows));
  const outputs = response.outputs.map((output, i) => ({
    name: output.name,
    datatype: output.datatype,
    shape: output.shape,
    data: decode(output.datatype, response.rawOutputContents[i]),
  }));
  const result = { model_name: response.modelName, model_version: response.modelVersion, outputs };
  console.log(JSON.stringify(result));
}

main().catch((error: Error) => {
  // Node's own errors (a file that cannot be read) carry a string code; a gRPC status is a number.
  const code: unknown = (error as { code?: unknown }).code;
  if (typeof code === "number") {
    console.error(`rpc error: ${status[code]}: ${(error as ServiceError).details}`);
  } else {
    console.error(`error: ${error.message}`);
  }
  process.exit(1);
});
