# aegis-node: the Raft replica. Built from the workspace root:
#   docker build -f images/node.Dockerfile -t aegis-node:0.1.0 .
FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aegis-node --bin aegis-node

# The StatefulSet starts the node through /bin/sh (the node id comes from the pod's
# ordinal), so the runtime image keeps a shell: debian slim, not distroless.
FROM debian:bookworm-slim
RUN groupadd --gid 65532 aegis && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin aegis \
 && mkdir -p /var/lib/aegis /etc/aegis && chown 65532:65532 /var/lib/aegis
COPY --from=build /src/target/release/aegis-node /usr/local/bin/aegis-node
USER 65532:65532
EXPOSE 7400 7500 7600
ENTRYPOINT ["/usr/local/bin/aegis-node"]
