# Test stand-in for the official `axllent/mailpit` image, for `make compose-test` where no registry
# is reachable: the same Mailpit release built with `go install`, at /mailpit with the upstream
# image's entrypoint, ports and healthcheck. Never for production.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY mailpit /mailpit
EXPOSE 1025/tcp 1110/tcp 8025/tcp
HEALTHCHECK --interval=15s CMD ["/mailpit", "readyz"]
ENTRYPOINT ["/mailpit"]
