// Generates the inference.GRPCInferenceService server and messages from Conduit's own protos (proto/inference_server).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let service = root.join("inference_server/protocol/grpc_service.proto");
    println!("cargo:rerun-if-changed={}", service.display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("inference_server/protocol/model_config.proto").display()
    );
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        // Every RPC the spike does not serve answers UNIMPLEMENTED.
        .generate_default_stubs(true)
        // bytes::Bytes for bytes fields: raw tensor contents are sliced from the received buffer, not copied.
        .bytes(["."])
        .compile_protos(&[service], &[root])?;
    Ok(())
}
