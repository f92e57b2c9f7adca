# Test stand-in for the official `caddy` image, for `make compose-test` where no registry is
# reachable: the same Caddy release built with `go install`, the upstream image's layout and
# settings (XDG directories in /config and /data, the Caddyfile in /etc/caddy), and wget for the
# compose healthcheck as the Alpine image has. Never for production.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wget \
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /config/caddy /data/caddy /etc/caddy /srv
COPY caddy /usr/bin/caddy
ENV XDG_CONFIG_HOME=/config \
    XDG_DATA_HOME=/data
EXPOSE 80 443 443/udp 2019
WORKDIR /srv
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
