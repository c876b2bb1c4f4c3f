# aegis-operator. Built from the workspace root:
#   docker build -f images/operator.Dockerfile -t aegis-operator:0.1.0 .
FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aegis-operator --bin aegis-operator

# The built-in config poller (spec.configSource.git) runs the git command line, so the
# runtime image carries git and CA certificates.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 aegis && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin aegis
COPY --from=build /src/target/release/aegis-operator /usr/local/bin/aegis-operator
COPY chaos-manifests /chaos-manifests
USER 65532:65532
ENV HOME=/tmp
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/aegis-operator"]
CMD ["run"]
