# Test stand-in for the official `jaegertracing/jaeger` image, for `make compose-test` where no
# registry is reachable: the same Jaeger release built from its Go module, the upstream image's
# layout, user and listen address, and wget for the compose healthcheck as the Alpine image has.
# Never for production.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wget \
 && rm -rf /var/lib/apt/lists/*
COPY jaeger /cmd/jaeger/jaeger-linux
ENV JAEGER_LISTEN_HOST=0.0.0.0
EXPOSE 4317 4318 5778 5779 9411 13133 14250 14268 16686
VOLUME ["/tmp"]
USER 10001
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
