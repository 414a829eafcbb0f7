# The AgentFlow image (deploy/kubernetes names it `agentflow`): the release binary and what an
# attempt's sandbox needs (bubblewrap, Python, a shell), running as a non-root user.
#   docker build -t agentflow --build-arg AGENTFLOW_VERSION=$(git describe --tags --always) .
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
ARG AGENTFLOW_VERSION=unknown
# The image tags pin the Debian release; its security updates replace exact package versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libzmq3-dev libsqlite3-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# No .git in the build context: the version stamp reads VERSION instead.
RUN printf '%s\n' "$AGENTFLOW_VERSION" > VERSION \
    && swift build -c release --static-swift-stdlib \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/agentflow" /out/agentflow

FROM ${RUNTIME_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libzmq5 libsqlite3-0 libcurl4 ca-certificates bubblewrap python3 tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 agentflow \
    && useradd --system --uid 10001 --gid agentflow --home-dir /var/lib/agentflow --create-home --shell /usr/sbin/nologin agentflow
COPY --from=build /out/agentflow /usr/local/bin/agentflow
USER 10001:10001
WORKDIR /var/lib/agentflow
EXPOSE 5555 5556 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/agentflow"]
CMD ["--help"]
