# aegis-agent. Built from the workspace root:
#   docker build -f images/agent.Dockerfile -t aegis-agent:0.1.0 .
FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aegis-agent --bin aegis-agent

# The agent opens pull requests; it needs CA certificates (distroless has them) and
# nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/aegis-agent /usr/local/bin/aegis-agent
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/aegis-agent"]
