# A minimal image: the static mesh-gitops binary and nothing else.
#
#   docker build -t mesh-gitops .
#   docker run --rm -v "$PWD:/repo" mesh-gitops check /repo
#
# The build stage compiles for musl (Alpine's native target, static by default), then runs the
# binary as the final image will: `--version` and `validate` of an example. .ci/static-binary
# does the same with the toolchain of a machine without Docker.

FROM rust:1.88-alpine AS build
RUN apk add --no-cache musl-dev gcc file
WORKDIR /src
COPY . .
# The source has no .git here (.dockerignore); the release workflow passes the commit.
ARG MESH_GITOPS_REVISION=unknown
ENV MESH_GITOPS_REVISION=${MESH_GITOPS_REVISION}
RUN cargo build --release --locked --bin mesh-gitops \
 && file target/release/mesh-gitops | grep -E 'statically linked|static-pie linked' \
 && mkdir -p /out && cp target/release/mesh-gitops /out/mesh-gitops
RUN /out/mesh-gitops --version && /out/mesh-gitops validate examples/countdash

FROM scratch
COPY --from=build /out/mesh-gitops /mesh-gitops
# The repository is mounted here; `.mesh-gitops` (the embedded control plane's state) is
# written below it.
WORKDIR /repo
USER 65532:65532
ENTRYPOINT ["/mesh-gitops"]
CMD ["--help"]
