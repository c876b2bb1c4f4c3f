// Compiles the protos with protox (pure Rust), so a fresh machine needs no
// system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["aegis/v1/aegis.proto", "aegis/raft/v1/raft.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::SmallBufferCodec")
        .compile_fds(fds)?;
    Ok(())
}
